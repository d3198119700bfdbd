//! Connection configuration and its two presets.

use crate::crypto::{CipherKind, HashKind};
use core::time::Duration;

/// The handshake patterns Tern offers, with their wire ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakePattern {
    /// `IK` (id 0): one round trip, mutual authentication; the client knows
    /// the server's key. The default for devices.
    IK,
    /// `NN` (id 1): anonymous on both sides.
    NN,
    /// `NK` (id 2): the client authenticates the server only.
    NK,
    /// `XX` (id 3): both send their static keys; neither knows the other's.
    XX,
    /// `IKpsk2` (id 4): IK plus a pre-shared key.
    IKpsk2,
    /// `NNpsk0` (id 5): anonymous keys, authenticated by a pre-shared key.
    NNpsk0,
    /// `NKpsk0` (id 6).
    NKpsk0,
    /// `NKpsk2` (id 7).
    NKpsk2,
    /// `XXpsk3` (id 8).
    XXpsk3,
    /// `IKpsk1` (id 9).
    IKpsk1,
}

impl HandshakePattern {
    /// Every pattern, in id order.
    pub const ALL: [HandshakePattern; 10] = [
        HandshakePattern::IK,
        HandshakePattern::NN,
        HandshakePattern::NK,
        HandshakePattern::XX,
        HandshakePattern::IKpsk2,
        HandshakePattern::NNpsk0,
        HandshakePattern::NKpsk0,
        HandshakePattern::NKpsk2,
        HandshakePattern::XXpsk3,
        HandshakePattern::IKpsk1,
    ];

    /// Wire id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The pattern for a wire id.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }

    /// The Noise pattern name.
    pub fn noise_name(self) -> &'static str {
        match self {
            HandshakePattern::IK => "IK",
            HandshakePattern::NN => "NN",
            HandshakePattern::NK => "NK",
            HandshakePattern::XX => "XX",
            HandshakePattern::IKpsk2 => "IKpsk2",
            HandshakePattern::NNpsk0 => "NNpsk0",
            HandshakePattern::NKpsk0 => "NKpsk0",
            HandshakePattern::NKpsk2 => "NKpsk2",
            HandshakePattern::XXpsk3 => "XXpsk3",
            HandshakePattern::IKpsk1 => "IKpsk1",
        }
    }

    /// Whether the pattern mixes in a pre-shared key.
    pub fn uses_psk(self) -> bool {
        self.noise_name().contains("psk")
    }
}

/// Cipher and hash, with the wire id `cipher << 4 | hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    /// AEAD.
    pub cipher: CipherKind,
    /// Hash.
    pub hash: HashKind,
}

impl Suite {
    /// ChaChaPoly with BLAKE2s: fast without AES hardware (the default).
    pub const CHACHA_BLAKE2S: Suite = Suite {
        cipher: CipherKind::ChaChaPoly,
        hash: HashKind::Blake2s,
    };
    /// ChaChaPoly with SHA-256.
    pub const CHACHA_SHA256: Suite = Suite {
        cipher: CipherKind::ChaChaPoly,
        hash: HashKind::Sha256,
    };
    /// AES-256-GCM with SHA-256: fastest with AES hardware.
    pub const AESGCM_SHA256: Suite = Suite {
        cipher: CipherKind::AesGcm,
        hash: HashKind::Sha256,
    };

    /// Wire id.
    pub fn id(self) -> u8 {
        let c = match self.cipher {
            CipherKind::ChaChaPoly => 0,
            CipherKind::AesGcm => 1,
        };
        let h = match self.hash {
            HashKind::Sha256 => 0,
            HashKind::Sha512 => 1,
            HashKind::Blake2s => 2,
            HashKind::Blake2b => 3,
        };
        (c << 4) | h
    }

    /// The suite for a wire id.
    pub fn from_id(id: u8) -> Option<Suite> {
        let cipher = match id >> 4 {
            0 => CipherKind::ChaChaPoly,
            1 => CipherKind::AesGcm,
            _ => return None,
        };
        let hash = match id & 0x0f {
            0 => HashKind::Sha256,
            1 => HashKind::Sha512,
            2 => HashKind::Blake2s,
            3 => HashKind::Blake2b,
            _ => return None,
        };
        Some(Suite { cipher, hash })
    }
}

/// Everything a connection needs to know, with presets for services and
/// constrained devices. Values the peer must respect travel in the
/// handshake parameters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest UDP payload this side sends and accepts (at least 256).
    pub max_packet_size: u16,
    /// The connection ends after this long without hearing from the peer.
    pub idle_timeout: Duration,
    /// Send a PING after this long without sending anything the peer must
    /// acknowledge; `None` disables keepalives.
    pub keepalive: Option<Duration>,
    /// Give up a handshake that has not finished after this long.
    pub handshake_timeout: Duration,
    /// End the connection if sent data stays unacknowledged this long.
    pub delivery_timeout: Option<Duration>,
    /// Channels this side accepts (ids 0 to `max_channels - 1`).
    pub max_channels: u32,
    /// Per-channel buffer, each way: the receive window and the most
    /// unacknowledged data a channel keeps.
    pub channel_window: u32,
    /// Total receive credit over all channels.
    pub connection_window: u64,
    /// Largest message accepted (at most `channel_window`).
    pub max_message_size: u32,
    /// Largest unreliable datagram accepted; 0 refuses datagrams.
    pub max_datagram_size: u16,
    /// Datagrams buffered each way before the oldest is dropped.
    pub datagram_queue: usize,
    /// Packets remembered by the replay window (64 to 1024).
    pub replay_window: u16,
    /// Longest this side delays an acknowledgement.
    pub max_ack_delay: Duration,
    /// RTT assumed before the first sample; sets the first retransmission
    /// timeouts (CoAP's ACK_TIMEOUT is 2 s).
    pub initial_rtt: Duration,
    /// NewReno congestion control; when off, at most `max_in_flight`
    /// packets are outstanding (CoAP's NSTART).
    pub congestion_control: bool,
    /// Packets in flight at most, whatever the congestion window says.
    pub max_in_flight: u32,
    /// Handshake pattern (the client chooses; a server accepts any in
    /// `accept_patterns`).
    pub pattern: HandshakePattern,
    /// Cipher and hash.
    pub suite: Suite,
}

impl Config {
    /// QUIC-like timers and windows for services: 1452-byte packets,
    /// 1024-packet replay window, 256 KiB channel windows, NewReno.
    pub fn service() -> Config {
        Config {
            max_packet_size: 1452,
            idle_timeout: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(10)),
            handshake_timeout: Duration::from_secs(10),
            delivery_timeout: Some(Duration::from_secs(30)),
            max_channels: 64,
            channel_window: 256 * 1024,
            connection_window: 1024 * 1024,
            max_message_size: 64 * 1024,
            max_datagram_size: 1200,
            datagram_queue: 64,
            replay_window: 1024,
            max_ack_delay: Duration::from_millis(25),
            initial_rtt: Duration::from_millis(100),
            congestion_control: true,
            max_in_flight: 256,
            pattern: HandshakePattern::IK,
            suite: Suite::CHACHA_BLAKE2S,
        }
    }

    /// CoAP-like timers and small windows for microcontrollers on lossy
    /// links: about 3 s initial timeout with exponential backoff, two packets in
    /// flight, 64-packet replay window, 1 KiB channel buffers.
    pub fn constrained() -> Config {
        Config {
            max_packet_size: 512,
            idle_timeout: Duration::from_secs(120),
            keepalive: Some(Duration::from_secs(30)),
            handshake_timeout: Duration::from_secs(60),
            delivery_timeout: Some(Duration::from_secs(120)),
            max_channels: 2,
            channel_window: 1024,
            connection_window: 2048,
            max_message_size: 1024,
            max_datagram_size: 256,
            datagram_queue: 2,
            replay_window: 64,
            max_ack_delay: Duration::from_millis(100),
            initial_rtt: Duration::from_secs(1),
            congestion_control: false,
            max_in_flight: 2,
            pattern: HandshakePattern::IK,
            suite: Suite::CHACHA_BLAKE2S,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::service()
    }
}
