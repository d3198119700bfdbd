//! Helpers for Tern's cross-crate and interoperability tests.
//!
//! Everything here is plain `std`: hex encoding, a description of Noise
//! pattern names that does not come from Tern (so the tests do not take
//! Tern's word for what a pattern needs), the Python virtual environment
//! with `noiseprotocol`, and a driver for the Python peer process
//! (`tests/python/noise_peer.py`).

#![forbid(unsafe_code)]

use std::env;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;

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

// ---------------------------------------------------------------------------
// Python `noiseprotocol` environment
// ---------------------------------------------------------------------------

/// The version of Python's `noiseprotocol` the interop tests use.
pub const NOISEPROTOCOL_VERSION: &str = "0.3.1";

/// Environment variable that skips the Python interop tests.
pub const SKIP_PYTHON_ENV: &str = "TERN_SKIP_PYTHON_INTEROP";

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The Python peer script.
pub fn python_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/noise_peer.py")
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The Python interpreter of the interop venv, creating the venv and
/// installing `noiseprotocol==0.3.1` into it on first use.
///
/// Returns `None` (after saying so) when `TERN_SKIP_PYTHON_INTEROP=1`.
/// Panics with an explanation when the venv cannot be made, so a missing
/// Python peer fails the test instead of passing it silently.
///
/// The work is done once per test process (a `OnceLock`), and an exclusive
/// lock on `<target>/interop-venv.lock` keeps concurrent test processes
/// from building the same venv at once.
pub fn python_interpreter() -> Option<PathBuf> {
    if env::var(SKIP_PYTHON_ENV).is_ok_and(|v| v == "1") {
        say(&format!(
            "SKIPPED: Python noiseprotocol interop ({SKIP_PYTHON_ENV}=1 is set); \
             nothing was checked against Python"
        ));
        return None;
    }
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(setup_venv) {
        Ok(python) => Some(python.clone()),
        Err(why) => panic!(
            "cannot set up the Python interop environment: {why}\n\
             (the Python interop tests need python3 with venv and pip, and \
             network access to PyPI for noiseprotocol=={NOISEPROTOCOL_VERSION}, \
             the first time; set {SKIP_PYTHON_ENV}=1 to skip them)"
        ),
    }
}

/// Writes a line straight to the process's stderr, past the test harness's
/// output capture, so that skips and venv set-up show in a normal run.
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "`{cmd:?}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(mut cmd: Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{cmd:?}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(describe(&cmd, &out))
    }
}

/// Whether `python` imports `noise.connection` from noiseprotocol 0.3.1.
fn venv_is_ready(python: &Path) -> bool {
    if !python.exists() {
        return false;
    }
    let check = format!(
        "import importlib.metadata as m, noise.connection\n\
         assert m.version('noiseprotocol') == '{NOISEPROTOCOL_VERSION}', m.version('noiseprotocol')"
    );
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(check);
    run(cmd).is_ok()
}

fn setup_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("interop-venv");
    let python = venv_python(&venv);
    let lock_path = target.join("interop-venv.lock");
    // Held until this function returns (the lock goes with the file).
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    if venv_is_ready(&python) {
        say(&format!(
            "python interop: using existing venv {} (noiseprotocol=={NOISEPROTOCOL_VERSION})",
            venv.display()
        ));
        return Ok(python);
    }

    let base = env::var_os("TERN_PYTHON").unwrap_or_else(|| "python3".into());
    if venv.exists() {
        say(&format!(
            "python interop: {} exists but lacks noiseprotocol=={NOISEPROTOCOL_VERSION}; recreating it",
            venv.display()
        ));
        fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove broken venv {}: {e}", venv.display()))?;
    }
    say(&format!(
        "python interop: creating venv {} with `{} -m venv`",
        venv.display(),
        base.to_string_lossy()
    ));
    let mut cmd = Command::new(&base);
    cmd.arg("-m").arg("venv").arg(&venv);
    run(cmd)?;
    say(&format!(
        "python interop: pip install noiseprotocol=={NOISEPROTOCOL_VERSION} into the venv"
    ));
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--timeout",
        "30",
        "--retries",
        "2",
    ])
    .arg(format!("noiseprotocol=={NOISEPROTOCOL_VERSION}"));
    run(cmd)?;
    if !venv_is_ready(&python) {
        return Err(format!(
            "noiseprotocol=={NOISEPROTOCOL_VERSION} still not importable with {} after pip install",
            python.display()
        ));
    }
    say("python interop: venv ready");
    Ok(python)
}

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
