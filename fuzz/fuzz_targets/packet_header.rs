//! Arbitrary bytes into the packet header decoders: see
//! `tern_fuzz::packet_header` for the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::packet_header::run(data));
