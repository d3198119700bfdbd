//! The `tern` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tern() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tern"));
    c.env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    tern().args(args).output().expect("run tern")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills the server even if the test fails.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_succeeds_and_prints_statistics() {
    let t = Instant::now();
    let o = run(&["demo"]);
    let out = stdout(&o);
    assert!(o.status.success(), "demo failed:\n{out}\n{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(10), "the demo is slow");
    for want in [
        "Noise_IK_25519_ChaChaPoly_BLAKE2s",
        "handshake done in",
        "20480 bytes",
        "datagram #3",
        "closed by peer (code 0: demo finished)",
        "Statistics",
        "packets sent",
        "retransmissions",
        "smoothed rtt",
        "uptime",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let header = out
        .lines()
        .find(|l| l.contains("client") && l.contains("server") && !l.contains(':'))
        .expect("a table header with both sides");
    assert!(header.trim_start().starts_with("client"), "{header}");
}

#[test]
fn keygen_writes_an_owner_only_key_and_prints_the_public_key() {
    let dir = scratch("keygen");
    let key = dir.join("server.key");
    let o = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o).trim().to_owned();
    assert_eq!(printed.len(), 64, "{printed}");
    let public = std::fs::read_to_string(dir.join("server.key.pub")).unwrap();
    assert_eq!(public.trim(), printed);
    let private = std::fs::read_to_string(&key).unwrap();
    assert_eq!(private.trim().len(), 64);
    assert_eq!(
        tern_tokio::public_key(&hex_key(private.trim())),
        hex_key(&printed),
        "the public key belongs to the private key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    // Never overwrites a key by accident.
    let again = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(3));
    assert!(stderr(&again).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), private);
}

fn hex_key(s: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    k
}

#[test]
fn serve_and_send_round_trip() {
    let dir = scratch("serve");
    let key = dir.join("k");
    let o = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success());
    let public = stdout(&o).trim().to_owned();

    let mut child = tern()
        .args(["serve", "--listen", "127.0.0.1:0", "--key"])
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Server(child);
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)
        .expect("the address in the first line")
        .to_owned();
    assert!(first.contains(&public), "{first}");

    let t = Instant::now();
    let o = run(&[
        "send",
        "--to",
        &addr,
        "--server-key",
        &public,
        "hello tern",
        "second message",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("echo: hello tern (10 bytes) in"), "{out}");
    assert!(out.contains("echo: second message (14 bytes) in"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(5));

    // The public key file works as --server-key too.
    let pubfile = dir.join("k.pub");
    let o = run(&[
        "send",
        "--to",
        &addr,
        "--server-key",
        pubfile.to_str().unwrap(),
        "x",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Ctrl-C prints the statistics and exits cleanly.
    #[cfg(unix)]
    {
        let pid = server.0.id().to_string();
        let k = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(k.success());
        let mut rest = String::new();
        for l in lines.map_while(Result::ok) {
            rest.push_str(&l);
            rest.push('\n');
        }
        assert!(rest.contains("2 connection(s) served"), "{rest}");
        assert!(rest.contains("messages received"), "{rest}");
    }
    drop(server);
}

#[test]
fn serve_and_send_over_tcp() {
    let dir = scratch("serve-tcp");
    let key = dir.join("k");
    let o = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success());
    let public = stdout(&o).trim().to_owned();

    let mut child = tern()
        .args(["serve", "--tcp", "--listen", "127.0.0.1:0", "--key"])
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Server(child);
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("(TCP)"), "{first}");
    let addr = first
        .split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)
        .expect("the address in the first line")
        .to_owned();

    let o = run(&[
        "send",
        "--tcp",
        "--to",
        &addr,
        "--server-key",
        &public,
        "over tcp",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("echo: over tcp (8 bytes) in"), "{out}");

    // Without --tcp the client speaks UDP, which nothing answers there.
    let o = run(&[
        "send",
        "--timeout",
        "0.5",
        "--to",
        &addr,
        "--server-key",
        &public,
        "x",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    drop(server);
}

#[test]
fn send_to_a_closed_port_fails_with_exit_code_4_in_time() {
    // Bind a socket and drop it to find a port nobody listens on.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let o = run(&[
        "send",
        "--to",
        &format!("127.0.0.1:{port}"),
        "--server-key",
        &"ab".repeat(32),
        "--timeout",
        "1",
        "hello",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("no answer"), "{}", stderr(&o));
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn bad_arguments_exit_2_and_key_problems_exit_3() {
    for args in [
        &["bogus"][..],
        &["send", "--to", "127.0.0.1:1"],
        &["send", "--to", "127.0.0.1:1", "--server-key", "zz", "m"],
        &[
            "send",
            "--to",
            "127.0.0.1:1",
            "--server-key",
            &"ab".repeat(32),
            "--timeout",
            "-1",
            "m",
        ],
        &["serve", "--listen", "not-an-address", "--key", "k"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--key",
        "/nonexistent/tern.key",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("cannot read key file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn every_command_has_help_with_the_exit_codes() {
    for cmd in [&[][..], &["demo"], &["keygen"], &["serve"], &["send"]] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = run(&args);
        assert!(o.status.success(), "{args:?}");
        let out = stdout(&o);
        assert!(out.contains("Usage: tern"), "{args:?}: {out}");
        assert!(out.contains("4  could not connect"), "{args:?}: {out}");
    }
}
