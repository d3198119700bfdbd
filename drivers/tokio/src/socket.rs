//! The endpoint's UDP socket, with batched system calls where the OS offers
//! them: `quinn-udp` receives many datagrams per call (`recvmmsg`, and GRO
//! coalescing on Linux) and sends runs of equal-size packets to one
//! destination as one segmented write (GSO). Where they are missing,
//! `quinn-udp` reports one segment and one datagram per call, and this
//! module sends packets one by one.

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSocketState};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Bytes per receive buffer: a whole datagram, or a GRO run of them.
const RECV_CHUNK: usize = 64 * 1024;
/// Receive buffers per system call.
const RECV_BUFS: usize = if BATCH_SIZE < 4 { BATCH_SIZE } else { 4 };
/// Most bytes in one segmented send (the UDP length limit).
const MAX_GSO_BYTES: usize = 65_000;

pub(crate) struct Socket {
    io: UdpSocket,
    state: UdpSocketState,
    recv_buf: Vec<u8>,
    meta: [RecvMeta; RECV_BUFS],
}

impl Socket {
    pub(crate) fn new(io: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&io).into())?;
        Ok(Socket {
            io,
            state,
            recv_buf: vec![0; RECV_CHUNK * RECV_BUFS],
            meta: [RecvMeta::default(); RECV_BUFS],
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Most packets one send may carry.
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    /// Waits for datagrams and receives a batch; returns how many buffers
    /// were filled (see [`datagram`](Self::datagram)). Cancel-safe.
    pub(crate) async fn recv(&mut self) -> io::Result<usize> {
        loop {
            self.io.readable().await?;
            match self.try_recv() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// Receives a batch if one is waiting (`WouldBlock` otherwise).
    pub(crate) fn try_recv(&mut self) -> io::Result<usize> {
        let mut chunks = self.recv_buf.chunks_mut(RECV_CHUNK);
        let mut bufs: [IoSliceMut<'_>; RECV_BUFS] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let (state, io, meta) = (&self.state, &self.io, &mut self.meta);
        io.try_io(Interest::READABLE, || {
            state.recv(io.into(), &mut bufs, meta)
        })
    }

    /// Where buffer `i` of the last batch came from, its length, and the
    /// size of each datagram in it (GRO puts several in one buffer).
    pub(crate) fn meta(&self, i: usize) -> (SocketAddr, usize, usize) {
        let m = &self.meta[i];
        (m.addr, m.len.min(RECV_CHUNK), m.stride.max(1))
    }

    /// The bytes of buffer `i`, from `start` for `len` bytes.
    pub(crate) fn datagram(&mut self, i: usize, start: usize, len: usize) -> &mut [u8] {
        &mut self.recv_buf[i * RECV_CHUNK..][start..start + len]
    }

    /// Sends `count` packets of `segment` bytes each (the last may be
    /// shorter) held back to back in `buf`, to `to`. Falls back to one
    /// packet per call if the segmented send fails. Errors other than a
    /// full socket buffer lose the packets (the protocol recovers) and are
    /// returned for logging only after every packet was tried.
    pub(crate) async fn send(
        &self,
        to: SocketAddr,
        buf: &[u8],
        segment: usize,
        count: usize,
    ) -> io::Result<()> {
        if count > 1 {
            let t = Transmit {
                destination: to,
                ecn: None,
                contents: buf,
                segment_size: Some(segment),
                src_ip: None,
            };
            if self.send_one(&t).await.is_ok() {
                return Ok(());
            }
        }
        let mut last = Ok(());
        for pkt in buf.chunks(segment.max(1)) {
            let t = Transmit {
                destination: to,
                ecn: None,
                contents: pkt,
                segment_size: None,
                src_ip: None,
            };
            if let Err(e) = self.send_one(&t).await {
                last = Err(e);
            }
        }
        last
    }

    async fn send_one(&self, t: &Transmit<'_>) -> io::Result<()> {
        loop {
            self.io.writable().await?;
            match self.io.try_io(Interest::WRITABLE, || {
                self.state.try_send((&self.io).into(), t)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

/// How many packets of `segment` bytes one segmented send may carry.
pub(crate) fn batch_limit(max_segments: usize, segment: usize) -> usize {
    max_segments.min(MAX_GSO_BYTES / segment.max(1)).max(1)
}
