//! The published Noise vectors, replayed byte for byte.

use std::path::PathBuf;
use tern_conformance::noise_vectors::{self, Outcome, Tally};

fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/noise")
        .join(name)
}

fn run(name: &str) -> Tally {
    let file = noise_vectors::load(&shared(name)).expect("vector file in ../shared/vectors/noise");
    let (tally, failures) = noise_vectors::run_file(&file);
    assert!(failures.is_empty(), "{name}: {failures:#?}");
    tally
}

#[test]
fn cacophony_every_curve25519_vector_passes() {
    let t = run("cacophony.txt");
    assert_eq!(
        t,
        Tally {
            passed: 472,
            failed: 0,
            skipped: 472
        }
    );
}

#[test]
fn snow_every_vector_passes() {
    let t = run("snow.txt");
    assert_eq!(
        t,
        Tally {
            passed: 408,
            failed: 0,
            skipped: 0
        }
    );
}

#[test]
fn a_corrupted_vector_fails() {
    let mut file = noise_vectors::load(&shared("snow.txt")).unwrap();
    let v = file
        .vectors
        .iter_mut()
        .find(|v| v.protocol_name == "Noise_IK_25519_ChaChaPoly_SHA256")
        .unwrap();
    // Flip one bit of the expected first ciphertext: the replay must notice.
    let mut ct = hex::decode(&v.messages[0].ciphertext).unwrap();
    ct[40] ^= 0x80;
    v.messages[0].ciphertext = hex::encode(ct);
    assert!(matches!(noise_vectors::run_vector(v), Outcome::Failed(_)));
    // And a transport message, after the handshake.
    let mut file = noise_vectors::load(&shared("snow.txt")).unwrap();
    let v = file
        .vectors
        .iter_mut()
        .find(|v| v.protocol_name == "Noise_XX_25519_AESGCM_SHA512")
        .unwrap();
    let last = v.messages.last_mut().unwrap();
    let mut ct = hex::decode(&last.ciphertext).unwrap();
    *ct.last_mut().unwrap() ^= 1;
    last.ciphertext = hex::encode(ct);
    assert!(matches!(noise_vectors::run_vector(v), Outcome::Failed(_)));
}

#[test]
fn curve448_is_skipped_not_failed() {
    let file = noise_vectors::load(&shared("cacophony.txt")).unwrap();
    let v = file
        .vectors
        .iter()
        .find(|v| v.protocol_name.contains("_448_"))
        .unwrap();
    assert!(matches!(
        noise_vectors::run_vector(v),
        Outcome::Skipped(tern::noise::NoiseError::UnsupportedDh)
    ));
}
