//! A client and a server over an in-memory network the input drives step
//! by step: see `tern_fuzz::session` for the input layout and the
//! invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::session::run(data));
