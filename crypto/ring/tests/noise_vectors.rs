//! The published Noise vectors, replayed byte for byte with RingCrypto on
//! both sides, and with RingCrypto on one side and RustCrypto on the other
//! (both ways): every handshake and transport message must equal the
//! vector's, so the providers interoperate for every pattern, cipher and
//! hash the vectors cover.

use std::path::PathBuf;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern_conformance::noise_vectors::{self, Tally};
use tern_ring::RingCrypto;

fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/noise")
        .join(name)
}

fn run<I, R>(name: &str, init: I, resp: R) -> Tally
where
    I: CryptoProvider + Clone,
    R: CryptoProvider + Clone,
{
    let file = noise_vectors::load(&shared(name)).expect("vector file in shared/vectors/noise");
    let (tally, failures) = noise_vectors::run_file_with(&file, init, resp);
    assert!(failures.is_empty(), "{name}: {failures:#?}");
    tally
}

/// Every vector of both files, with the providers given.
fn both_files<I, R>(init: I, resp: R)
where
    I: CryptoProvider + Clone,
    R: CryptoProvider + Clone,
{
    // Same totals as the conformance crate's RustCrypto run: cacophony's
    // Curve448 half is skipped as unsupported, the rest all pass.
    assert_eq!(
        run("cacophony.txt", init.clone(), resp.clone()),
        Tally {
            passed: 472,
            failed: 0,
            skipped: 472
        }
    );
    assert_eq!(
        run("snow.txt", init, resp),
        Tally {
            passed: 408,
            failed: 0,
            skipped: 0
        }
    );
}

#[test]
fn ring_on_both_sides() {
    both_files(RingCrypto, RingCrypto);
}

#[test]
fn ring_initiator_rustcrypto_responder() {
    both_files(RingCrypto, RustCrypto);
}

#[test]
fn rustcrypto_initiator_ring_responder() {
    both_files(RustCrypto, RingCrypto);
}

/// The replay is not vacuous: a vector whose ciphertext was altered fails
/// with RingCrypto too.
#[test]
fn altered_vector_fails_with_ring() {
    let mut file = noise_vectors::load(&shared("snow.txt")).unwrap();
    let v = file
        .vectors
        .iter_mut()
        .find(|v| v.protocol_name.contains("AESGCM_SHA512"))
        .expect("an AESGCM/SHA512 vector");
    // Flip one byte of the last transport message (AES-GCM, ring's side).
    let last = v.messages.last_mut().unwrap();
    let mut ct = hex_flip(&last.ciphertext);
    std::mem::swap(&mut last.ciphertext, &mut ct);
    assert!(matches!(
        noise_vectors::run_vector_with(v, RingCrypto, RingCrypto),
        noise_vectors::Outcome::Failed(_)
    ));
}

/// `s` with its first hex digit changed.
fn hex_flip(s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    c[0] = if c[0] == '0' { '1' } else { '0' };
    c.into_iter().collect()
}
