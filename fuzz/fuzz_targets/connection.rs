//! Garbage, replays, loss and forgeries against an established session: see
//! `tern_fuzz::connection` for the input layout and the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::connection::run(data));
