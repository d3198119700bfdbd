//! Version and parameter mismatches end in typed errors on both sides.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tern::config::{Config, HandshakePattern, Suite};
use tern::connection::params::Params;
use tern::connection::{Credentials, code};
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::EndpointConfig;
use tern::frame::{Frame, FrameDecoder};
use tern::noise::{Builder, NoiseParams};
use tern::packet::{HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, ShortHeader};
use tern::{ConnectionError, Event, Instant, ServiceConnection, ServiceEndpoint};
use tern_conformance::sim::addr;

const SERVER_KEY: [u8; 32] = [5; 32];

#[test]
fn version_mismatch_is_answered_and_typed() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let now = Instant::from_millis(1);
    let creds = Credentials {
        private_key: Some([6; 32]),
        remote_public_key: Some(RustCrypto.x25519_base(&SERVER_KEY)),
        psk: None,
    };
    let mut client =
        ServiceConnection::connect(Config::service(), &creds, now, 0x0101, addr(4433), &mut rng)
            .unwrap();
    let mut server = ServiceEndpoint::new(EndpointConfig::server(Config::service(), SERVER_KEY));
    let mut buf = [0u8; 1500];
    let t = client.poll_transmit(now, &mut buf).unwrap().unwrap();
    buf[1] = 2; // a version this server does not speak
    assert!(
        server
            .handle(now, addr(5000), &mut buf[..t.len], &mut rng)
            .is_err()
    );
    assert_eq!(server.stats().version_mismatches, 1);
    assert!(server.is_empty(), "no state kept for a refused version");
    let (h, reply) = server.poll_transmit(now, &mut buf).unwrap().unwrap();
    assert!(h.is_none());
    assert!(reply.len <= t.len, "no amplification");
    client
        .handle(now, addr(4433), &mut buf[..reply.len])
        .unwrap();
    assert_eq!(
        client.poll_event(),
        Some(Event::Closed(ConnectionError::VersionMismatch {
            ours: 1,
            theirs: 1
        }))
    );
    assert!(client.is_closed());
}

#[test]
fn bad_parameters_are_refused_with_an_authenticated_close() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let now = Instant::from_millis(1);
    let mut server = ServiceEndpoint::new(EndpointConfig::server(Config::service(), SERVER_KEY));
    // A hand-made client: a correct IK handshake whose parameters say the
    // client accepts 100-byte packets (below Tern's minimum of 256).
    let suite = Suite::CHACHA_BLAKE2S;
    let params = NoiseParams::parse("Noise_IK_25519_ChaChaPoly_BLAKE2s").unwrap();
    let server_pub = RustCrypto.x25519_base(&SERVER_KEY);
    let client_key = [7u8; 32];
    let mut hs = Builder::new(params)
        .prologue(b"tern\x01")
        .local_private_key(&client_key)
        .remote_public_key(&server_pub)
        .build_initiator(&mut rng)
        .unwrap();
    let bad = Params {
        max_packet_size: 100,
        ..Params::from_config(&Config::service())
    };
    let mut p = [0u8; 64];
    let plen = bad.encode(&mut p);
    let mut pkt = [0u8; 512];
    HandshakeHeader {
        kind: HandshakeKind::Handshake,
        version: 1,
        pattern: HandshakePattern::IK.id(),
        suite: suite.id(),
        msg_index: 0,
        receiver: 0,
        sender: 0x4242,
    }
    .encode(&mut pkt);
    let n = hs
        .write_message(&p[..plen], &mut pkt[LONG_HEADER_LEN..])
        .unwrap();
    let handle = server
        .handle(now, addr(5000), &mut pkt[..LONG_HEADER_LEN + n], &mut rng)
        .unwrap();

    // The server answers the handshake (so its refusal can be authenticated).
    let mut buf = [0u8; 1500];
    let (_, t) = server.poll_transmit(now, &mut buf).unwrap().unwrap();
    let (h, body) = HandshakeHeader::decode(&buf[..t.len]).unwrap();
    assert_eq!(h.receiver, 0x4242);
    let server_id = h.sender;
    let mut payload = [0u8; 128];
    hs.read_message(body, &mut payload).unwrap();
    let (mut tx, mut rx) = hs.into_transport().unwrap().into_cipher_states();

    // Confirm the handshake with a PING in packet 0.
    let mut d = [0u8; 64];
    let hdr = ShortHeader {
        key_phase: false,
        receiver: server_id,
        pn_truncated: 0,
        pn_len: 1,
    };
    let hl = hdr.encode(&mut d);
    let fl = Frame::Ping.encode(&mut d[hl..]).unwrap();
    let (head, rest) = d.split_at_mut(hl);
    let cl = tx.encrypt_with_nonce(0, head, rest, fl).unwrap();
    server
        .handle(now, addr(5000), &mut d[..hl + cl], &mut rng)
        .unwrap();

    // The server reports the mismatch and sends CLOSE with PARAMETER.
    let mut events = Vec::new();
    while let Some((_, e)) = server.poll_event() {
        events.push(e);
    }
    assert!(
        events.contains(&Event::Closed(ConnectionError::ParameterMismatch)),
        "{events:?}"
    );
    let mut close = None;
    while let Some((Some(h), t)) = server.poll_transmit(now, &mut buf).unwrap() {
        assert_eq!(h, handle);
        let sh = ShortHeader::decode(&buf[..t.len]).unwrap();
        let (head, body) = buf[..t.len].split_at_mut(sh.len());
        let n = rx
            .decrypt_with_nonce(u64::from(sh.pn_truncated), head, body)
            .unwrap();
        for f in FrameDecoder::new(&body[..n]).flatten() {
            if let Frame::Close(c) = f {
                close = Some(c.code);
            }
        }
    }
    assert_eq!(close, Some(code::PARAMETER));
}
