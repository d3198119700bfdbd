//! Writes the seed corpora (`corpus/<target>/seed-*`) from the harnesses'
//! own encoders, and runs every seed through its harness once, so a seed
//! that trips an invariant shows here rather than in the fuzzer. Run from
//! this folder: `cargo run --example seeds`.

use std::fs;
use std::path::Path;

type Seeds = Vec<(String, Vec<u8>)>;
/// A target's name, its seeds and its harness.
type Target = (&'static str, Seeds, fn(&[u8]));

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let sets: [Target; 8] = [
        (
            "handshake",
            tern_fuzz::handshake::seeds(),
            tern_fuzz::handshake::run,
        ),
        (
            "transport",
            tern_fuzz::transport::seeds(),
            tern_fuzz::transport::run,
        ),
        (
            "packet_header",
            tern_fuzz::packet_header::seeds(),
            tern_fuzz::packet_header::run,
        ),
        (
            "frame_decode",
            tern_fuzz::frame_decode::seeds(),
            tern_fuzz::frame_decode::run,
        ),
        (
            "params_decode",
            tern_fuzz::params_decode::seeds(),
            tern_fuzz::params_decode::run,
        ),
        (
            "connection",
            tern_fuzz::connection::seeds(),
            tern_fuzz::connection::run,
        ),
        (
            "stream_decode",
            tern_fuzz::stream_decode::seeds(),
            tern_fuzz::stream_decode::run,
        ),
        (
            "session",
            tern_fuzz::session::seeds(),
            tern_fuzz::session::run,
        ),
    ];
    for (target, seeds, run) in sets {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            fs::write(dir.join(&name), &bytes)?;
            run(&bytes);
            println!("{target}/{name}: {} bytes", bytes.len());
        }
    }
    Ok(())
}
