//! The handshake-only image: a `#![no_std]`, `#![no_main]` binary that runs
//! a real Noise IK handshake between two in-memory peers with `tern` (default
//! features off), then one transport message each way. Its bare-metal size
//! is the flash cost of the Noise layer alone; `main.rs` adds the session
//! layer. See `main.rs` for how the check proves there is no `std`.

#![no_std]
#![no_main]

mod common;

/// 0 on success, else the failing step's code.
fn run() -> i32 {
    match common::handshake() {
        Ok(()) => 0,
        Err(f) => f as i32,
    }
}

/// What a successful run prints (the host runtime calls it; bare metal has
/// no console).
#[cfg_attr(target_os = "none", allow(dead_code))]
fn report() {
    common::print(b"nostd-check (handshake only): IK handshake and transport round trip OK\n");
}
