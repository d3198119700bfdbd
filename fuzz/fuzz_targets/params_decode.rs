//! Arbitrary bytes as handshake parameters: see `tern_fuzz::params_decode`
//! for the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::params_decode::run(data));
