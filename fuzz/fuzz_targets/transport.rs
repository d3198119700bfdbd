//! Arbitrary bytes into `TransportState::read_message`,
//! `read_message_with_nonce` and `read_message_in_place`: see
//! `tern_fuzz::transport` for the input layout and the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::transport::run(data));
