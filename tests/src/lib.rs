//! Helpers for Tern's cross-crate and interoperability tests.
//!
//! Everything here is plain `std`: hex encoding, a description of Noise
//! pattern names that does not come from Tern (so the tests do not take
//! Tern's word for what a pattern needs), the Python virtual environment
//! the Python tests share (`python_env`: `noiseprotocol`, `cbor2`), and a
//! driver for the Python peer process (`tests/python/noise_peer.py`).

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Bytes of a hex string; panics on malformed input (test code).
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex: {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

/// Hex for the line protocol of the Python peer: `-` stands for no bytes,
/// so that every field is a non-empty word.
pub fn wire_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "-".to_owned()
    } else {
        hex(bytes)
    }
}

/// Inverse of [`wire_hex`].
pub fn wire_unhex(s: &str) -> Vec<u8> {
    if s == "-" { Vec::new() } else { unhex(s) }
}

/// What a handshake pattern asks of each side, worked out from the letters
/// of its name as the Noise specification (§7.3) defines them, independently
/// of Tern's own pattern tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatternShape {
    /// One-way pattern (`N`, `K`, `X`): a single message.
    pub one_way: bool,
    /// The initiator has a static key (first letter K, X or I).
    pub initiator_static: bool,
    /// The responder has a static key (second letter K or X; always for
    /// one-way patterns).
    pub responder_static: bool,
    /// The initiator knows the responder's static key before the handshake.
    pub initiator_knows_responder: bool,
    /// The responder knows the initiator's static key before the handshake.
    pub responder_knows_initiator: bool,
}

/// Splits `Noise_XXpsk0+psk3_25519_ChaChaPoly_SHA256` (or just
/// `XXpsk0+psk3`) into the base pattern (`XX`) and the psk positions
/// (`[0, 3]`, in the order written).
pub fn split_pattern(name: &str) -> (&str, Vec<u8>) {
    let pattern = name
        .strip_prefix("Noise_")
        .map(|rest| rest.split('_').next().unwrap_or(""))
        .unwrap_or(name);
    let cut = pattern
        .find(|c: char| c.is_ascii_lowercase())
        .unwrap_or(pattern.len());
    let (base, mods) = pattern.split_at(cut);
    let psks = if mods.is_empty() {
        Vec::new()
    } else {
        mods.split('+')
            .map(|m| {
                m.strip_prefix("psk")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected modifier {m:?} in {name}"))
            })
            .collect()
    };
    (base, psks)
}

/// The [`PatternShape`] of a base pattern name such as `XK1` or `I1X`.
pub fn pattern_shape(base: &str) -> PatternShape {
    match base {
        // One-way patterns: the responder's static key is a pre-message.
        "N" | "K" | "X" => PatternShape {
            one_way: true,
            initiator_static: base != "N",
            responder_static: true,
            initiator_knows_responder: true,
            responder_knows_initiator: base == "K",
        },
        _ => {
            let bytes = base.as_bytes();
            let init = bytes[0];
            // Skip the deferral marker `1` after the initiator's letter.
            let rest = if bytes.get(1) == Some(&b'1') { 2 } else { 1 };
            let resp = bytes[rest];
            assert!(
                matches!(init, b'N' | b'K' | b'X' | b'I') && matches!(resp, b'N' | b'K' | b'X'),
                "not a Curve25519 base pattern: {base}"
            );
            PatternShape {
                one_way: false,
                initiator_static: init != b'N',
                responder_static: resp != b'N',
                initiator_knows_responder: resp == b'K',
                responder_knows_initiator: init == b'K',
            }
        }
    }
}

mod python_env;
pub use python_env::{
    CBOR2_VERSION, NOISEPROTOCOL_VERSION, SKIP_PYTHON_ENV, python_interpreter, python_peer_script,
    say, target_dir, workspace_root,
};

// ---------------------------------------------------------------------------
// The Python peer process
// ---------------------------------------------------------------------------

/// A running `noise_peer.py`: one line per request, one line per reply.
///
/// Requests and replies are space-separated words; byte strings are hex
/// ([`wire_hex`]). Each reply is `OK <fields…>` or `ERR <text>`. The
/// commands are documented in the script.
pub struct PythonPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    requests: usize,
}

impl PythonPeer {
    /// Starts the peer with the given interpreter.
    pub fn spawn(python: &Path) -> PythonPeer {
        let script = python_peer_script();
        let mut child = Command::new(python)
            .arg("-u")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} {}: {e}",
                    python.display(),
                    script.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut peer = PythonPeer {
            child,
            stdin,
            stdout,
            requests: 0,
        };
        let hello = peer.request("HELLO").expect("python peer greets");
        assert_eq!(
            hello,
            ["noiseprotocol", NOISEPROTOCOL_VERSION],
            "python peer runs the expected noiseprotocol"
        );
        peer
    }

    /// Sends one request line and returns the fields after `OK`, or the
    /// text after `ERR`. Panics if the peer died or answered garbage.
    pub fn request(&mut self, line: &str) -> Result<Vec<String>, String> {
        assert!(!line.contains('\n'));
        self.requests += 1;
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("python peer is gone (writing {line:?}): {e}"));
        let mut reply = String::new();
        let n = self
            .stdout
            .read_line(&mut reply)
            .unwrap_or_else(|e| panic!("reading the python peer's reply to {line:?}: {e}"));
        assert!(
            n > 0,
            "python peer closed its output after {line:?} (see its stderr above)"
        );
        let reply = reply.trim_end();
        match reply.split_once(' ').unwrap_or((reply, "")) {
            ("OK", rest) => Ok(rest.split_whitespace().map(str::to_owned).collect()),
            ("ERR", why) => Err(why.to_owned()),
            _ => panic!("python peer answered {reply:?} to {line:?}"),
        }
    }

    /// Like [`request`](Self::request), panicking on `ERR`.
    pub fn ok(&mut self, line: &str) -> Vec<String> {
        self.request(line)
            .unwrap_or_else(|e| panic!("python peer refused {line:?}: {e}"))
    }

    /// Requests sent so far.
    pub fn requests(&self) -> usize {
        self.requests
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        // Ask politely; the peer also exits when its stdin closes.
        let _ = writeln!(self.stdin, "QUIT").and_then(|()| self.stdin.flush());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(unhex("0001abff"), [0, 1, 0xab, 0xff]);
        assert_eq!(wire_hex(&[]), "-");
        assert!(wire_unhex("-").is_empty());
    }

    #[test]
    fn pattern_names_split_and_shape() {
        assert_eq!(
            split_pattern("Noise_XXpsk0+psk3_25519_AESGCM_SHA256"),
            ("XX", vec![0, 3])
        );
        assert_eq!(split_pattern("I1K1"), ("I1K1", vec![]));
        let ik = pattern_shape("IK");
        assert!(ik.initiator_static && ik.responder_static && ik.initiator_knows_responder);
        assert!(!ik.responder_knows_initiator && !ik.one_way);
        let k1x = pattern_shape("K1X");
        assert!(k1x.responder_knows_initiator && !k1x.initiator_knows_responder);
        let n = pattern_shape("N");
        assert!(n.one_way && !n.initiator_static && n.initiator_knows_responder);
        let nx1 = pattern_shape("NX1");
        assert!(!nx1.initiator_static && nx1.responder_static);
    }
}
