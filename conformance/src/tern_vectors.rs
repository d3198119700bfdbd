//! Tern's own test vectors: handshake transcripts for every handshake
//! profile, the traffic keys they derive, every frame type's encoding, and
//! whole data packets. Generated from fixed keys and seeds by [`generate`];
//! [`check`] regenerates them and compares them byte for byte with the
//! checked-in files in `spec/vectors/`, so a protocol change that does not
//! also change the vectors cannot land.
//!
//! Generation drives real [`tern::Connection`]s with seeded RNGs, fixed
//! session ids and a fixed clock, and independently replays each handshake
//! on the bare Noise engine with the same ephemeral keys: the Noise message
//! inside every handshake datagram must match, and that replay gives the
//! traffic keys.
//!
//! The stream vectors (`stream.json`, the TCP framing of `spec/tcp.md`) are
//! also decoded by [`tern::stream::StreamDecoder`] when checked, one byte at
//! a time and whole, and must give exactly the packets and error listed.

use crate::noise_vectors::Tally;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use tern::config::{Config, HandshakePattern, Suite};
use tern::connection::Credentials;
use tern::connection::params::Params;
use tern::crypto::{CipherKind, CryptoProvider, RustCrypto};
use tern::frame::{CloseFrame, Frame, encode_ack};
use tern::noise::{Builder, CipherState, NoiseParams};
use tern::packet::{LONG_HEADER_LEN, ShortHeader};
use tern::stream::{StreamDecoder, StreamError, encode_frame};
use tern::{Instant, ServiceConnection};

const CLIENT_STATIC: [u8; 32] = [0x11; 32];
const SERVER_STATIC: [u8; 32] = [0x22; 32];
const PSK: [u8; 32] = [0x33; 32];
const CLIENT_ID: u32 = 0x0c11_0001;
const SERVER_ID: u32 = 0x05e2_0001;

/// One datagram of a transcript.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// `client` or `server`.
    pub from: String,
    /// The whole UDP payload, hex.
    pub hex: String,
}

/// A complete handshake, as seen on the wire.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HandshakeVector {
    /// Pattern and suite, e.g. `IK ChaChaPoly BLAKE2s`.
    pub name: String,
    /// The Noise protocol name.
    pub noise_protocol: String,
    /// Wire ids.
    pub pattern_id: u8,
    /// Wire ids.
    pub suite_id: u8,
    /// Noise prologue, hex.
    pub prologue: String,
    /// Private keys and PSK, hex (empty when the pattern does not use them).
    pub client_static: String,
    /// The server's static private key.
    pub server_static: String,
    /// The server's static public key.
    pub server_public: String,
    /// Ephemeral private keys.
    pub client_ephemeral: String,
    /// Ephemeral private keys.
    pub server_ephemeral: String,
    /// Pre-shared key.
    pub psk: String,
    /// Session ids.
    pub client_id: u32,
    /// Session ids.
    pub server_id: u32,
    /// Each side's handshake parameters (CBOR), hex.
    pub client_params: String,
    /// The server's.
    pub server_params: String,
    /// Every datagram until both sides are connected, in order.
    pub datagrams: Vec<Datagram>,
    /// The final handshake hash.
    pub handshake_hash: String,
    /// Transport key, initiator (client) to responder.
    pub key_client_to_server: String,
    /// Transport key, responder to initiator.
    pub key_server_to_client: String,
}

/// One frame's encoding.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FrameVector {
    /// What the frame is.
    pub name: String,
    /// Its CBOR encoding, hex.
    pub hex: String,
}

/// One data packet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PacketVector {
    /// What it shows.
    pub name: String,
    /// `ChaChaPoly` or `AESGCM`.
    pub cipher: String,
    /// Traffic key, hex.
    pub key: String,
    /// Full packet number.
    pub packet_number: u64,
    /// Receiver session id.
    pub receiver: u32,
    /// Bytes of truncated packet number.
    pub pn_len: u8,
    /// The short header, which is the associated data, hex.
    pub header: String,
    /// The AEAD nonce, hex.
    pub nonce: String,
    /// The frames, hex.
    pub plaintext: String,
    /// The whole packet: header, ciphertext, tag; hex.
    pub packet: String,
}

/// Tern packets framed on a byte stream (TCP), valid or not.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StreamVector {
    /// What it shows.
    pub name: String,
    /// The receiver's maximum packet size (the largest length it accepts).
    pub max_packet_size: u16,
    /// The packets a receiver gets from the stream, hex, in order: all of
    /// them for a valid stream, those before the error otherwise.
    pub packets: Vec<String>,
    /// The byte stream, hex.
    pub stream: String,
    /// `null` for a valid stream, else the error that ends it:
    /// `zero_length`, `too_long len=L max=M` or `truncated buffered=B` (the
    /// stream ends inside a frame).
    pub error: Option<String>,
}

/// All of Tern's vectors.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VectorSet {
    /// Handshake transcripts.
    pub handshakes: Vec<HandshakeVector>,
    /// Frame encodings.
    pub frames: Vec<FrameVector>,
    /// Data packets.
    pub packets: Vec<PacketVector>,
    /// Framed byte streams.
    pub streams: Vec<StreamVector>,
}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn ephemeral(seed: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut k);
    k
}

fn handshake(pattern: HandshakePattern, suite: Suite, seed: u64) -> HandshakeVector {
    let config = Config {
        pattern,
        suite,
        ..Config::service()
    };
    let server_pub = RustCrypto.x25519_base(&SERVER_STATIC);
    let client_addr: SocketAddr = "192.0.2.1:5000".parse().expect("addr");
    let server_addr: SocketAddr = "192.0.2.2:4433".parse().expect("addr");
    let creds = Credentials {
        private_key: Some(CLIENT_STATIC),
        remote_public_key: Some(server_pub),
        psk: Some(PSK),
    };
    let screds = Credentials {
        private_key: Some(SERVER_STATIC),
        remote_public_key: None,
        psk: Some(PSK),
    };
    let now = Instant::from_millis(1000);
    let (cseed, sseed) = (seed, seed + 1);
    let mut crng = ChaCha20Rng::seed_from_u64(cseed);
    let mut srng = ChaCha20Rng::seed_from_u64(sseed);
    let mut client = ServiceConnection::connect(
        config.clone(),
        &creds,
        now,
        CLIENT_ID,
        server_addr,
        &mut crng,
    )
    .expect("connect");
    let mut buf = vec![0u8; 1500];
    let mut datagrams = Vec::new();
    let t = client
        .poll_transmit(now, &mut buf)
        .expect("buf")
        .expect("first message");
    let first = buf[..t.len].to_vec();
    datagrams.push(Datagram {
        from: "client".into(),
        hex: h(&first),
    });
    let mut server = ServiceConnection::accept(
        config.clone(),
        &screds,
        now,
        SERVER_ID,
        client_addr,
        &first,
        &mut srng,
    )
    .expect("accept");
    // Exchange until both are connected and quiet.
    for _ in 0..8 {
        let mut moved = false;
        while let Some(t) = server.poll_transmit(now, &mut buf).expect("buf") {
            datagrams.push(Datagram {
                from: "server".into(),
                hex: h(&buf[..t.len]),
            });
            let _ = client.handle(now, server_addr, &mut buf[..t.len]);
            moved = true;
        }
        while let Some(t) = client.poll_transmit(now, &mut buf).expect("buf") {
            datagrams.push(Datagram {
                from: "client".into(),
                hex: h(&buf[..t.len]),
            });
            let _ = server.handle(now, client_addr, &mut buf[..t.len]);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert!(
        client.is_established() && server.is_established(),
        "{pattern:?} handshake did not complete"
    );

    // The same handshake on the bare Noise engine.
    let name = format!(
        "Noise_{}_25519_{}_{}",
        pattern.noise_name(),
        suite.cipher.name(),
        suite.hash.name()
    );
    let params = NoiseParams::parse(&name).expect("name");
    let (ce, se) = (ephemeral(cseed), ephemeral(sseed));
    let p = params.pattern();
    let mut ib = Builder::new(params)
        .prologue(b"tern\x01")
        .fixed_ephemeral_for_testing_only(&ce);
    let mut rb = Builder::new(params)
        .prologue(b"tern\x01")
        .fixed_ephemeral_for_testing_only(&se);
    if p.initiator_needs_static() {
        ib = ib.local_private_key(&CLIENT_STATIC);
    }
    if p.initiator_knows_remote() {
        ib = ib.remote_public_key(&server_pub);
    }
    if p.responder_needs_static() {
        rb = rb.local_private_key(&SERVER_STATIC);
    }
    if p.has_psk() {
        ib = ib.psk(&PSK);
        rb = rb.psk(&PSK);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let mut i = ib.build_initiator(&mut rng).expect("initiator");
    let mut r = rb.build_responder(&mut rng).expect("responder");
    let mut cp = [0u8; 64];
    let cpl = Params::from_config(&config).encode(&mut cp);
    let sp = cp;
    let spl = cpl;
    let mut out = [0u8; 512];
    let mut pay = [0u8; 512];
    let handshake_datagrams: Vec<&Datagram> = datagrams
        .iter()
        .filter(|d| d.hex.starts_with("80"))
        .collect();
    for (k, d) in handshake_datagrams.iter().enumerate() {
        let (w, rd, payload) = if k % 2 == 0 {
            (&mut i, &mut r, &cp[..cpl])
        } else {
            (&mut r, &mut i, &sp[..spl])
        };
        let payload: &[u8] = if k < 2 { payload } else { &[] };
        let n = w.write_message(payload, &mut out).expect("write");
        let wire = hex::decode(&d.hex).expect("hex");
        assert_eq!(
            &wire[LONG_HEADER_LEN..],
            &out[..n],
            "{name}: message {k} differs from the Noise engine's"
        );
        rd.read_message(&out[..n], &mut pay).expect("read");
    }
    let hash = h(i.handshake_hash());
    let (k1, k2) = i.split_keys_for_test_vectors().expect("finished");
    let uses = |b: bool, k: &[u8]| if b { h(k) } else { String::new() };
    HandshakeVector {
        name: format!(
            "{} {} {}",
            pattern.noise_name(),
            suite.cipher.name(),
            suite.hash.name()
        ),
        noise_protocol: name,
        pattern_id: pattern.id(),
        suite_id: suite.id(),
        prologue: h(b"tern\x01"),
        client_static: uses(p.initiator_needs_static(), &CLIENT_STATIC),
        server_static: uses(p.responder_needs_static(), &SERVER_STATIC),
        server_public: uses(p.responder_needs_static(), &server_pub),
        client_ephemeral: h(&ce),
        server_ephemeral: h(&se),
        psk: uses(p.has_psk(), &PSK),
        client_id: CLIENT_ID,
        server_id: SERVER_ID,
        client_params: h(&cp[..cpl]),
        server_params: h(&sp[..spl]),
        datagrams,
        handshake_hash: hash,
        key_client_to_server: h(&k1),
        key_server_to_client: h(&k2),
    }
}

fn frames() -> Vec<FrameVector> {
    let mut v = Vec::new();
    let mut add = |name: &str, f: Frame<'_>| {
        let mut out = [0u8; 256];
        let n = f.encode(&mut out).expect("frame fits");
        v.push(FrameVector {
            name: name.into(),
            hex: h(&out[..n]),
        });
    };
    add("PADDING", Frame::Padding);
    add("PING", Frame::Ping);
    add(
        "MESSAGE channel 2, offset 300, fin, 5 bytes",
        Frame::Message(tern::frame::MessageFrame {
            channel: 2,
            offset: 300,
            fin: true,
            data: b"hello",
        }),
    );
    add(
        "MESSAGE channel 0, offset 0, not fin, 24 bytes",
        Frame::Message(tern::frame::MessageFrame {
            channel: 0,
            offset: 0,
            fin: false,
            data: &[0xab; 24],
        }),
    );
    add("DATAGRAM 3 bytes", Frame::Datagram(b"dgm"));
    add(
        "CLOSE code 0 reason done",
        Frame::Close(CloseFrame {
            code: 0,
            reason: "done",
        }),
    );
    add(
        "CLOSE code 4 (PARAMETER)",
        Frame::Close(CloseFrame {
            code: 4,
            reason: "handshake parameters refused",
        }),
    );
    add("MAX_DATA 1048576", Frame::MaxData(1 << 20));
    add(
        "MAX_CHANNEL_DATA channel 3 max 262144",
        Frame::MaxChannelData {
            channel: 3,
            max: 256 * 1024,
        },
    );
    add("DATA_BLOCKED 65536", Frame::DataBlocked(65536));
    add(
        "CHANNEL_BLOCKED channel 1 limit 1024",
        Frame::ChannelBlocked {
            channel: 1,
            limit: 1024,
        },
    );
    let mut out = [0u8; 64];
    let n = encode_ack(25_000, [(95u64, 100u64), (80, 90), (10, 10)], 16, &mut out).expect("ack");
    v.push(FrameVector {
        name: "ACK delay 25000, ranges 95-100, 80-90, 10".into(),
        hex: h(&out[..n]),
    });
    v
}

fn packets() -> Vec<PacketVector> {
    let mut v = Vec::new();
    let key = [0x5a; 32];
    for (cipher, name) in [
        (CipherKind::ChaChaPoly, "ChaChaPoly"),
        (CipherKind::AesGcm, "AESGCM"),
    ] {
        for (pn, pn_len, frames) in [
            (0u64, 1u8, vec![Frame::Ping]),
            (
                300,
                2,
                vec![Frame::Message(tern::frame::MessageFrame {
                    channel: 0,
                    offset: 0,
                    fin: true,
                    data: b"hello",
                })],
            ),
            (70_000, 3, vec![Frame::MaxData(1 << 20), Frame::Ping]),
        ] {
            let mut pkt = [0u8; 256];
            let hdr = ShortHeader {
                key_phase: false,
                receiver: SERVER_ID,
                pn_truncated: (pn & ((1 << (8 * u32::from(pn_len))) - 1)) as u32,
                pn_len,
            };
            let hl = hdr.encode(&mut pkt);
            let mut pl = hl;
            for f in &frames {
                pl += f.encode(&mut pkt[pl..]).expect("fits");
            }
            let plaintext = h(&pkt[hl..pl]);
            let header = h(&pkt[..hl]);
            let mut cs = CipherState::new(RustCrypto, cipher, &key);
            let (head, body) = pkt.split_at_mut(hl);
            let n = cs
                .encrypt_with_nonce(pn, head, body, pl - hl)
                .expect("encrypt");
            v.push(PacketVector {
                name: format!("{name} packet {pn}"),
                cipher: name.into(),
                key: h(&key),
                packet_number: pn,
                receiver: SERVER_ID,
                pn_len,
                header,
                nonce: h(&cipher.nonce(pn)),
                plaintext,
                packet: h(&pkt[..hl + n]),
            });
        }
    }
    v
}

/// The vector form of a stream error.
fn stream_error_name(e: StreamError) -> String {
    match e {
        StreamError::ZeroLength => "zero_length".into(),
        StreamError::TooLong { len, max } => format!("too_long len={len} max={max}"),
        StreamError::Truncated { buffered } => format!("truncated buffered={buffered}"),
        e => format!("{e:?}"),
    }
}

/// Decodes `stream` with a [`StreamDecoder`] fed `chunk` bytes at a time:
/// the packets, then the error (including a frame cut off at the end).
fn decode_stream(max: u16, stream: &[u8], chunk: usize) -> (Vec<String>, Option<String>) {
    let mut dec = Box::new(StreamDecoder::<65537>::with_max_packet_size(max).expect("fits"));
    let mut got = Vec::new();
    for mut input in stream.chunks(chunk.max(1)) {
        while !input.is_empty() {
            let n = dec.feed(input);
            input = &input[n..];
            loop {
                match dec.next_packet() {
                    Ok(Some(p)) => got.push(h(p)),
                    Ok(None) => break,
                    Err(e) => return (got, Some(stream_error_name(e))),
                }
            }
        }
    }
    (got, dec.finish().err().map(stream_error_name))
}

/// Streams of framed packets: the client's and the server's side of a
/// handshake, data packets up to exactly the maximum size, and invalid
/// streams with the error they end with. The expected errors are written
/// here from the framing rules, and the decoder must agree.
fn streams(hs: &HandshakeVector, packets: &[PacketVector]) -> Vec<StreamVector> {
    let unhex = |s: &str| hex::decode(s).expect("hex");
    let frame = |p: &[u8]| {
        let mut out = vec![0u8; p.len() + 2];
        let n = encode_frame(p, &mut out).expect("frame");
        out.truncate(n);
        out
    };
    let join = |ps: &[Vec<u8>]| ps.iter().flat_map(|p| frame(p)).collect::<Vec<u8>>();
    let side = |from: &str| {
        hs.datagrams
            .iter()
            .filter(|d| d.from == from)
            .map(|d| unhex(&d.hex))
            .collect::<Vec<_>>()
    };
    let data: Vec<Vec<u8>> = packets
        .iter()
        .filter(|p| p.cipher == "ChaChaPoly")
        .map(|p| unhex(&p.packet))
        .collect();

    // A data packet of exactly 256 bytes: PING, then PADDING.
    let mut full = [0u8; 256];
    let hdr = ShortHeader {
        key_phase: false,
        receiver: SERVER_ID,
        pn_truncated: 1,
        pn_len: 1,
    };
    let hl = hdr.encode(&mut full);
    let pl = 256 - 16;
    let ping = Frame::Ping.encode(&mut full[hl..]).expect("fits");
    for b in &mut full[hl + ping..pl] {
        *b = 0; // PADDING
    }
    let mut cs = CipherState::new(RustCrypto, CipherKind::ChaChaPoly, &[0x5a; 32]);
    let (head, body) = full.split_at_mut(hl);
    let n = cs
        .encrypt_with_nonce(1, head, body, pl - hl)
        .expect("encrypt");
    assert_eq!(hl + n, 256);
    let full = full.to_vec();

    let valid = |name: &str, max: u16, ps: Vec<Vec<u8>>| StreamVector {
        name: name.into(),
        max_packet_size: max,
        packets: ps.iter().map(|p| h(p)).collect(),
        stream: h(&join(&ps)),
        error: None,
    };
    let invalid = |name: &str, max: u16, ps: Vec<Vec<u8>>, tail: &[u8], error: StreamError| {
        let mut stream = join(&ps);
        stream.extend_from_slice(tail);
        StreamVector {
            name: name.into(),
            max_packet_size: max,
            packets: ps.iter().map(|p| h(p)).collect(),
            stream: h(&stream),
            error: Some(stream_error_name(error)),
        }
    };
    let cut = frame(&data[1]);
    let v = vec![
        valid(
            &format!("client to server: {} handshake", hs.name),
            1452,
            side("client"),
        ),
        valid(
            &format!("server to client: {} handshake", hs.name),
            1452,
            side("server"),
        ),
        valid(
            "ChaChaPoly data packets, then one of exactly max_packet_size",
            256,
            vec![
                data[0].clone(),
                data[1].clone(),
                data[2].clone(),
                full.clone(),
            ],
        ),
        invalid(
            "length 0 first",
            1452,
            vec![],
            &[0x00, 0x00],
            StreamError::ZeroLength,
        ),
        invalid(
            "length 0 after a packet (the valid frame after it is not read)",
            1452,
            vec![data[0].clone()],
            &[&[0x00, 0x00][..], &frame(&data[1])].concat(),
            StreamError::ZeroLength,
        ),
        invalid(
            "length one above max_packet_size (refused on the prefix alone)",
            256,
            vec![data[0].clone()],
            &[0x01, 0x01, 0x00],
            StreamError::TooLong { len: 257, max: 256 },
        ),
        invalid(
            "length 65535 above max_packet_size 1452",
            1452,
            vec![],
            &[0xff, 0xff],
            StreamError::TooLong {
                len: 65535,
                max: 1452,
            },
        ),
        invalid(
            "stream ends inside a length prefix",
            1452,
            vec![data[0].clone()],
            &[0x00],
            StreamError::Truncated { buffered: 1 },
        ),
        invalid(
            "stream ends inside a packet",
            1452,
            vec![data[0].clone()],
            &cut[..cut.len() - 1],
            StreamError::Truncated {
                buffered: cut.len() - 1,
            },
        ),
    ];
    for s in &v {
        let stream = unhex(&s.stream);
        for chunk in [1, 3, stream.len()] {
            assert_eq!(
                decode_stream(s.max_packet_size, &stream, chunk),
                (s.packets.clone(), s.error.clone()),
                "{}: the decoder disagrees (chunks of {chunk})",
                s.name
            );
        }
    }
    v
}

/// Generates every vector.
pub fn generate() -> VectorSet {
    let mut handshakes = Vec::new();
    let suites = [Suite::CHACHA_BLAKE2S, Suite::AESGCM_SHA256];
    for (k, p) in HandshakePattern::ALL.into_iter().enumerate() {
        for (j, s) in suites.into_iter().enumerate() {
            handshakes.push(handshake(p, s, 1000 + (k * 10 + j) as u64 * 2));
        }
    }
    let packets = packets();
    let streams = streams(&handshakes[0], &packets);
    VectorSet {
        handshakes,
        frames: frames(),
        packets,
        streams,
    }
}

/// File names in the vector directory.
pub const FILES: [&str; 4] = [
    "handshakes.json",
    "frames.json",
    "packets.json",
    "stream.json",
];

/// Writes the vectors into `dir` as four JSON files.
pub fn write(dir: &Path, set: &VectorSet) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pretty = |v: &dyn erased::Ser| v.json();
    std::fs::write(dir.join(FILES[0]), pretty(&set.handshakes))?;
    std::fs::write(dir.join(FILES[1]), pretty(&set.frames))?;
    std::fs::write(dir.join(FILES[2]), pretty(&set.packets))?;
    std::fs::write(dir.join(FILES[3]), pretty(&set.streams))?;
    Ok(())
}

mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).expect("serializable") + "\n"
        }
    }
}

/// Compares the vectors in `dir` with freshly generated ones, item by item.
pub fn check(dir: &Path) -> Result<(Tally, Vec<String>), String> {
    let set = generate();
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()))
    };
    let hs: Vec<HandshakeVector> =
        serde_json::from_str(&read(FILES[0])?).map_err(|e| e.to_string())?;
    let fr: Vec<FrameVector> = serde_json::from_str(&read(FILES[1])?).map_err(|e| e.to_string())?;
    let pk: Vec<PacketVector> =
        serde_json::from_str(&read(FILES[2])?).map_err(|e| e.to_string())?;
    let st: Vec<StreamVector> =
        serde_json::from_str(&read(FILES[3])?).map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    fn cmp<T: PartialEq>(
        got: &[T],
        want: &[T],
        name: impl Fn(&T) -> String,
        tally: &mut Tally,
        failures: &mut Vec<String>,
    ) {
        for (k, w) in want.iter().enumerate() {
            if got.get(k) == Some(w) {
                tally.passed += 1;
            } else {
                tally.failed += 1;
                failures.push(format!("{} differs", name(w)));
            }
        }
        if got.len() != want.len() {
            tally.failed += 1;
            failures.push(format!(
                "{} generated, {} in the files",
                got.len(),
                want.len()
            ));
        }
    }
    cmp(
        &set.handshakes,
        &hs,
        |v| format!("handshake {}", v.name),
        &mut tally,
        &mut failures,
    );
    cmp(
        &set.frames,
        &fr,
        |v| format!("frame {}", v.name),
        &mut tally,
        &mut failures,
    );
    cmp(
        &set.packets,
        &pk,
        |v| format!("packet {}", v.name),
        &mut tally,
        &mut failures,
    );
    cmp(
        &set.streams,
        &st,
        |v| format!("stream {}", v.name),
        &mut tally,
        &mut failures,
    );
    // The files' streams through the decoder, whatever the generator says.
    for v in &st {
        let Ok(stream) = hex::decode(&v.stream) else {
            tally.failed += 1;
            failures.push(format!("stream {}: not hex", v.name));
            continue;
        };
        for chunk in [1, stream.len()] {
            if decode_stream(v.max_packet_size, &stream, chunk)
                != (v.packets.clone(), v.error.clone())
            {
                tally.failed += 1;
                failures.push(format!("stream {}: decodes differently", v.name));
                break;
            }
        }
    }
    Ok((tally, failures))
}
