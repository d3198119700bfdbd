//! The endpoint over an in-memory network whose sending side refuses
//! packets now and then (a full socket buffer): what a handle could not
//! transmit waits, the endpoint's task sends it once the socket is
//! writable again, and nothing is lost or reordered.

use crate::{Endpoint, Timer, Transport, public_key};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tern::Config;
use tern::endpoint::EndpointConfig;

type Packet = (SocketAddr, Vec<u8>);

#[derive(Default)]
struct Net {
    queues: HashMap<SocketAddr, VecDeque<Packet>>,
    readers: HashMap<SocketAddr, Waker>,
}

/// The sending side's buffer: refuses packets while `full`.
#[derive(Default)]
struct Buffer {
    full: bool,
    /// Calls that went through since the buffer was last full.
    calls: u32,
    refused: u64,
    writer: Option<Waker>,
    /// Packets that went.
    sent_packets: u64,
}

struct Mem {
    net: Arc<Mutex<Net>>,
    buffer: Arc<Mutex<Buffer>>,
    addr: SocketAddr,
    /// The buffer fills after this many calls (0: never).
    fill_every: u32,
    batch: Vec<Packet>,
    /// The peers the endpoint said no connection uses any more.
    gone: Arc<Mutex<Vec<SocketAddr>>>,
    /// The last `poll_recv` emptied the queue and left its waker.
    waits: bool,
    /// Receive calls (`poll_recv` and `try_recv`), and those that got
    /// packets.
    recvs: Arc<Mutex<(u64, u64)>>,
}

impl Transport for Mem {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn max_segments(&self) -> usize {
        1
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self.try_recv() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut net = self.net.lock().unwrap();
                net.readers.insert(self.addr, cx.waker().clone());
                // A packet may have come in meanwhile.
                if net.queues.get(&self.addr).is_some_and(|q| !q.is_empty()) {
                    drop(net);
                    return Poll::Ready(self.try_recv());
                }
                Poll::Pending
            }
            Ok(n) => {
                // The batch emptied the queue: wait for the next packet
                // now, as the UDP transport does.
                let mut net = self.net.lock().unwrap();
                if net.queues.get(&self.addr).is_none_or(|q| q.is_empty()) {
                    net.readers.insert(self.addr, cx.waker().clone());
                    self.waits = true;
                }
                Poll::Ready(Ok(n))
            }
            r => Poll::Ready(r),
        }
    }

    fn recv_waits(&self) -> bool {
        self.waits
    }

    fn try_recv(&mut self) -> io::Result<usize> {
        self.waits = false;
        self.recvs.lock().unwrap().0 += 1;
        self.batch.clear();
        let mut net = self.net.lock().unwrap();
        let q = net.queues.entry(self.addr).or_default();
        while self.batch.len() < 4 {
            match q.pop_front() {
                Some(p) => self.batch.push(p),
                None => break,
            }
        }
        if self.batch.is_empty() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            self.recvs.lock().unwrap().1 += 1;
            Ok(self.batch.len())
        }
    }

    fn meta(&self, i: usize) -> (SocketAddr, usize, usize) {
        let (from, p) = &self.batch[i];
        (*from, p.len(), p.len().max(1))
    }

    fn packet(&mut self, i: usize, start: usize, len: usize) -> &mut [u8] {
        &mut self.batch[i].1[start..start + len]
    }

    fn sends_anywhere(&self) -> bool {
        true
    }

    fn try_send(
        &mut self,
        to: SocketAddr,
        buf: &[u8],
        segment: usize,
        count: usize,
    ) -> io::Result<usize> {
        let mut b = self.buffer.lock().unwrap();
        if b.full {
            b.refused += 1;
            return Ok(0);
        }
        let mut net = self.net.lock().unwrap();
        for p in buf.chunks(segment.max(1)).take(count) {
            net.queues
                .entry(to)
                .or_default()
                .push_back((self.addr, p.to_vec()));
            b.sent_packets += 1;
        }
        if let Some(w) = net.readers.remove(&to) {
            w.wake();
        }
        b.calls += 1;
        if self.fill_every > 0 && b.calls >= self.fill_every {
            b.calls = 0;
            b.full = true;
        }
        Ok(count)
    }

    fn peer_gone(&mut self, peer: SocketAddr) {
        self.gone.lock().unwrap().push(peer);
    }

    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut b = self.buffer.lock().unwrap();
        if b.full {
            b.writer = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn reset(&mut self, at: Instant) {
        self.0.as_mut().reset(tokio::time::Instant::from_std(at));
    }
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

fn timer() -> TokioTimer {
    TokioTimer(Box::pin(tokio::time::sleep(Duration::ZERO)))
}

/// An endpoint on `io` with the service preset, its task spawned: a
/// server with `key`, or a client.
fn start(io: Mem, key: Option<[u8; 32]>) -> Endpoint {
    let config = match key {
        Some(k) => EndpointConfig::server(Config::service(), k),
        None => EndpointConfig::client(Config::service()),
    };
    let (ep, task) = Endpoint::start(io, timer(), config).unwrap();
    tokio::spawn(task);
    ep
}

fn mem(net: &Arc<Mutex<Net>>, port: u16, fill_every: u32) -> (Mem, Arc<Mutex<Buffer>>) {
    let buffer = Arc::new(Mutex::new(Buffer::default()));
    let m = Mem {
        net: net.clone(),
        buffer: buffer.clone(),
        addr: SocketAddr::from(([10, 0, 0, 1], port)),
        fill_every,
        batch: Vec::new(),
        gone: Arc::default(),
        waits: false,
        recvs: Arc::default(),
    };
    (m, buffer)
}

#[tokio::test]
async fn packets_a_full_socket_refused_are_sent_by_the_task_once_writable() {
    let key = [9u8; 32];
    let net = Arc::new(Mutex::new(Net::default()));
    let (server_io, _) = mem(&net, 1, 0);
    let server_addr = server_io.addr;
    // The client's buffer fills after every third send call.
    let (client_io, buffer) = mem(&net, 2, 3);
    let server = start(server_io, Some(key));
    let client = start(client_io, None);
    // Something that drains the buffer a while after it filled, and
    // wakes whoever waits to write.
    let drain = buffer.clone();
    let drainer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let mut b = drain.lock().unwrap();
            if b.full {
                b.full = false;
                if let Some(w) = b.writer.take() {
                    w.wake();
                }
            }
        }
    });

    let result = tokio::time::timeout(Duration::from_secs(20), async {
        let conn = client.connect(server_addr, public_key(&key)).await.unwrap();
        let sc = server.accept().await.unwrap();
        const N: u32 = 300;
        let c2 = conn.clone();
        let sender = tokio::spawn(async move {
            for i in 0..N {
                let m = i.to_be_bytes().repeat(400);
                c2.send(0, m).await.unwrap();
            }
        });
        for i in 0..N {
            let m = sc.recv_on(0).await.unwrap();
            assert_eq!(&m[..], &i.to_be_bytes().repeat(400)[..], "message {i}");
        }
        sender.await.unwrap();
        conn.close(0, "").await.unwrap();
    })
    .await;
    drainer.abort();
    result.expect("test took too long");
    let b = buffer.lock().unwrap();
    assert!(
        b.refused > 0,
        "the socket never refused a packet: the test proves nothing"
    );
    assert!(b.sent_packets > 300, "{} packets", b.sent_packets);
}

/// The endpoint tells its transport that a peer is gone once the last
/// open connection with that address ended, and only then (a TCP
/// transport closes the peer's stream on it).
#[tokio::test]
async fn a_peer_is_gone_once_its_last_connection_ended() {
    let key = [7u8; 32];
    let net = Arc::new(Mutex::new(Net::default()));
    let (server_io, _) = mem(&net, 1, 0);
    let server_addr = server_io.addr;
    let gone = server_io.gone.clone();
    let (a_io, _) = mem(&net, 2, 0);
    let (b_io, _) = mem(&net, 3, 0);
    let (a_addr, b_addr) = (a_io.addr, b_io.addr);
    let server = start(server_io, Some(key));
    let clients: Vec<Endpoint> = [a_io, b_io].into_iter().map(|io| start(io, None)).collect();
    let gone_now = || gone.lock().unwrap().clone();
    tokio::time::timeout(Duration::from_secs(20), async {
        // Two connections from A's address, one from B's.
        let a1 = clients[0]
            .connect(server_addr, public_key(&key))
            .await
            .unwrap();
        let s_a1 = server.accept().await.unwrap();
        let a2 = clients[0]
            .connect(server_addr, public_key(&key))
            .await
            .unwrap();
        let s_a2 = server.accept().await.unwrap();
        let b = clients[1]
            .connect(server_addr, public_key(&key))
            .await
            .unwrap();
        let s_b = server.accept().await.unwrap();
        for (c, s) in [(&a1, &s_a1), (&a2, &s_a2), (&b, &s_b)] {
            c.send(0, b"ping").await.unwrap();
            assert_eq!(&s.recv_on(0).await.unwrap()[..], b"ping");
        }
        // A still has a connection: its address is not gone.
        a1.close(0, "").await.unwrap();
        let _ = s_a1.recv().await; // its end has reached the server
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!gone_now().contains(&a_addr), "{:?}", gone_now());
        // A's last connection ends: A is gone, B is not.
        a2.close(0, "").await.unwrap();
        let _ = s_a2.recv().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !gone_now().contains(&a_addr) {
            assert!(tokio::time::Instant::now() < deadline, "A never gone");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!gone_now().contains(&b_addr), "{:?}", gone_now());
        b.close(0, "").await.unwrap();
        let _ = s_b.recv().await;
        while !gone_now().contains(&b_addr) {
            assert!(tokio::time::Instant::now() < deadline, "B never gone");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("test took too long");
    assert_eq!(
        gone_now().iter().filter(|p| **p == a_addr).count(),
        1,
        "{:?}",
        gone_now()
    );
}

/// A receive batch that empties the socket (and leaves the task's waker,
/// as the UDP transport does) ends the task's work: the task does not
/// call the socket again until a packet wakes it. One message at a time
/// each way, every packet is one batch, and each batch one receive call
/// (two if the task looked again only to find the socket empty).
#[tokio::test]
async fn the_task_receives_once_per_batch_that_empties_the_socket() {
    let key = [5u8; 32];
    let net = Arc::new(Mutex::new(Net::default()));
    let (server_io, _) = mem(&net, 1, 0);
    let server_addr = server_io.addr;
    let (client_io, _) = mem(&net, 2, 0);
    let recvs = client_io.recvs.clone();
    let server = start(server_io, Some(key));
    let client = start(client_io, None);
    tokio::time::timeout(Duration::from_secs(20), async {
        let conn = client.connect(server_addr, public_key(&key)).await.unwrap();
        let sc = server.accept().await.unwrap();
        let echo = tokio::spawn(async move {
            while let Ok((ch, m)) = sc.recv().await {
                if sc.send(ch, m).await.is_err() {
                    break;
                }
            }
        });
        let before = *recvs.lock().unwrap();
        for i in 0..200u32 {
            conn.send(0, i.to_be_bytes()).await.unwrap();
            let (_, m) = conn.recv().await.unwrap();
            assert_eq!(&m[..], &i.to_be_bytes()[..]);
        }
        let after = *recvs.lock().unwrap();
        let (calls, batches) = (after.0 - before.0, after.1 - before.1);
        assert!(batches >= 200, "{batches} batches");
        // A few more calls for wake-ups by the timer or a handle.
        assert!(
            calls <= batches + batches / 10,
            "{calls} receive calls for {batches} batches"
        );
        conn.close(0, "").await.unwrap();
        echo.abort();
    })
    .await
    .expect("test took too long");
}

/// Connections that ended leave the endpoint (their slots are freed) on
/// both sides, whichever side closed, though the task takes each
/// connection's events as they come rather than in rounds over every
/// connection.
#[tokio::test]
async fn ended_connections_leave_both_endpoints() {
    let key = [3u8; 32];
    let net = Arc::new(Mutex::new(Net::default()));
    let (server_io, _) = mem(&net, 1, 0);
    let server_addr = server_io.addr;
    let (client_io, _) = mem(&net, 2, 0);
    let server = start(server_io, Some(key));
    let client = start(client_io, None);
    let held = |ep: &Endpoint| {
        let ep = ep.clone();
        async move { ep.stats().await.unwrap().connections }
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        for round in 0..3 {
            let conn = client.connect(server_addr, public_key(&key)).await.unwrap();
            let sc = server.accept().await.unwrap();
            conn.send(0, b"ping").await.unwrap();
            assert_eq!(&sc.recv_on(0).await.unwrap()[..], b"ping");
            assert_eq!(held(&server).await, 1, "round {round}");
            assert_eq!(held(&client).await, 1, "round {round}");
            // The client closes in even rounds, the server in odd ones.
            if round % 2 == 0 {
                conn.close(0, "").await.unwrap();
            } else {
                sc.close(0, "").await.unwrap();
            }
            drop((conn, sc));
            loop {
                if held(&server).await == 0 && held(&client).await == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    })
    .await
    .expect("ended connections were never freed");
}
