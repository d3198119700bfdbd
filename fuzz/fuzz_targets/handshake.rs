//! Arbitrary bytes against every handshake step of many Noise protocols:
//! see `tern_fuzz::handshake` for the input layout and the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::handshake::run(data));
