//! Arbitrary bytes as a packet's plaintext into the frame decoder: see
//! `tern_fuzz::frame_decode` for the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::frame_decode::run(data));
