//! Link arguments for the two builds of the check.
//!
//! - Linux host: no C runtime start files (our `_start` is the entry), but
//!   libc for `exit` and `write`. Nothing else is linked: if any dependency
//!   pulled in `std`, its `panic_impl` would clash with ours.
//! - Bare metal (`target_os = "none"`, e.g. thumbv7em-none-eabihf): rust-lld
//!   with `Reset` as the entry, so `--gc-sections` keeps exactly what the
//!   handshake needs and the size is that of a real firmware image.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    match os.as_str() {
        "linux" => {
            println!("cargo:rustc-link-arg-bins=-nostartfiles");
            println!("cargo:rustc-link-arg-bins=-lc");
        }
        "none" => {
            println!("cargo:rustc-link-arg-bins=--entry=Reset");
        }
        _ => {}
    }
}
