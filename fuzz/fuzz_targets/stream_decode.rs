//! Arbitrary bytes, in arbitrary chunks, into the TCP framing decoder: see
//! `tern_fuzz::stream_decode` for the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::stream_decode::run(data));
