//! Tern's own vectors in spec/vectors/ are what the code produces, byte for
//! byte: a protocol change without a vector (and spec) change fails here.

use std::path::PathBuf;
use tern_conformance::tern_vectors::{self, FILES};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

#[test]
fn checked_in_vectors_match_the_implementation() {
    let (tally, failures) = tern_vectors::check(&dir()).expect("vector files readable");
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(tally.failed, 0);
    assert_eq!(tally.passed, 20 + 12 + 6 + 9);
}

#[test]
fn the_generator_reproduces_the_files_exactly() {
    let out = std::env::temp_dir().join(format!("tern-vectors-{}", std::process::id()));
    tern_vectors::write(&out, &tern_vectors::generate()).unwrap();
    for f in FILES {
        let a = std::fs::read_to_string(out.join(f)).unwrap();
        let b = std::fs::read_to_string(dir().join(f)).unwrap();
        assert!(
            a == b,
            "{f} differs from a fresh generation: run `cargo run -p tern-conformance -- generate-vectors` and update the spec"
        );
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_changed_byte_is_caught() {
    let out = std::env::temp_dir().join(format!("tern-vectors-bad-{}", std::process::id()));
    let mut set = tern_vectors::generate();
    let d = &mut set.handshakes[3].datagrams[1].hex;
    let flipped = if d.ends_with('0') { '1' } else { '0' };
    d.pop();
    d.push(flipped);
    tern_vectors::write(&out, &set).unwrap();
    let (tally, failures) = tern_vectors::check(&out).unwrap();
    assert_eq!(tally.failed, 1, "{failures:?}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_wrong_stream_vector_is_caught_by_the_decoder_too() {
    let out = std::env::temp_dir().join(format!("tern-vectors-stream-{}", std::process::id()));
    let mut set = tern_vectors::generate();
    // A zero-length prefix claimed to be a valid stream: differs from the
    // generator, and the decoder reports the error the file denies.
    assert_eq!(set.streams[3].error.as_deref(), Some("zero_length"));
    set.streams[3].error = None;
    tern_vectors::write(&out, &set).unwrap();
    let (tally, failures) = tern_vectors::check(&out).unwrap();
    assert_eq!(tally.failed, 2, "{failures:?}");
    assert!(failures[1].contains("decodes differently"), "{failures:?}");
    let _ = std::fs::remove_dir_all(out);
}
