//! What both images share: the deterministic RNG, the keys, the Noise
//! handshake check, and the runtime (entry point, panic handler, output).

use core::hint::black_box;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::noise::{Builder, NoiseParams};
use tern::rand_core::{TryCryptoRng, TryRng};

/// Deterministic SplitMix64: fine for a test harness, never for real keys.
pub struct TestRng(pub u64);

impl TryRng for TestRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}

const PROTOCOL: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
pub const INITIATOR_STATIC: [u8; 32] = [0x11; 32];
pub const RESPONDER_STATIC: [u8; 32] = [0x22; 32];
const PROLOGUE: &[u8] = b"tern no_std check";
const HELLO: &[u8] = b"hello from the initiator";
const WELCOME: &[u8] = b"welcome from the responder";
const PING: &[u8] = b"transport: initiator to responder";
const PONG: &[u8] = b"transport: responder to initiator";

/// Which step failed; the process exit status.
#[derive(Clone, Copy)]
#[repr(i32)]
#[allow(dead_code)] // the session codes are unused in the handshake-only image
pub enum Fail {
    // The Noise handshake (both images).
    Params = 10,
    Build = 11,
    Msg0 = 12,
    Msg1 = 13,
    Finish = 14,
    Split = 15,
    Ping = 16,
    Pong = 17,
    Mismatch = 18,
    // The session (the full image only).
    Connect = 20,
    Accept = 21,
    Transmit = 22,
    Dropped = 23,
    Send = 24,
    Recv = 25,
    Closed = 26,
    Stalled = 27,
    Stats = 28,
}

pub fn same(a: &[u8], b: &[u8]) -> Result<(), Fail> {
    if a == b { Ok(()) } else { Err(Fail::Mismatch) }
}

/// Runs the whole exchange. Inputs pass through `black_box` so the optimiser
/// cannot evaluate any of it at compile time.
pub fn handshake() -> Result<(), Fail> {
    let params: NoiseParams = black_box(PROTOCOL).parse().map_err(|_| Fail::Params)?;
    let i_static = black_box(INITIATOR_STATIC);
    let r_static = black_box(RESPONDER_STATIC);
    let i_public = RustCrypto.x25519_base(&i_static);
    let r_public = RustCrypto.x25519_base(&r_static);
    let mut rng = TestRng(black_box(0x7e42));

    let mut initiator = Builder::new(params)
        .prologue(PROLOGUE)
        .local_private_key(&i_static)
        .remote_public_key(&r_public)
        .build_initiator(&mut rng)
        .map_err(|_| Fail::Build)?;
    let mut responder = Builder::new(params)
        .prologue(PROLOGUE)
        .local_private_key(&r_static)
        .build_responder(&mut rng)
        .map_err(|_| Fail::Build)?;

    let mut wire = [0u8; 256];
    let mut plain = [0u8; 256];

    // -> e, es, s, ss
    let n = initiator
        .write_message(black_box(HELLO), &mut wire)
        .map_err(|_| Fail::Msg0)?;
    let k = responder
        .read_message(&wire[..n], &mut plain)
        .map_err(|_| Fail::Msg0)?;
    same(&plain[..k], HELLO)?;
    same(responder.remote_static().ok_or(Fail::Msg0)?, &i_public)?;

    // <- e, ee, se
    let n = responder
        .write_message(black_box(WELCOME), &mut wire)
        .map_err(|_| Fail::Msg1)?;
    let k = initiator
        .read_message(&wire[..n], &mut plain)
        .map_err(|_| Fail::Msg1)?;
    same(&plain[..k], WELCOME)?;

    if !initiator.is_finished() || !responder.is_finished() {
        return Err(Fail::Finish);
    }
    same(initiator.handshake_hash(), responder.handshake_hash())?;

    let mut initiator = initiator.into_transport().map_err(|_| Fail::Split)?;
    let mut responder = responder.into_transport().map_err(|_| Fail::Split)?;

    let n = initiator
        .write_message(black_box(PING), &mut wire)
        .map_err(|_| Fail::Ping)?;
    if n == PING.len() || &wire[..PING.len()] == PING {
        // Not encrypted, or no tag: something is badly wrong.
        return Err(Fail::Ping);
    }
    let k = responder
        .read_message(&wire[..n], &mut plain)
        .map_err(|_| Fail::Ping)?;
    same(&plain[..k], PING)?;

    let n = responder
        .write_message(black_box(PONG), &mut wire)
        .map_err(|_| Fail::Pong)?;
    let k = initiator
        .read_message(&wire[..n], &mut plain)
        .map_err(|_| Fail::Pong)?;
    same(&plain[..k], PONG)?;

    // A tampered message must be refused.
    let n = initiator
        .write_message(black_box(PING), &mut wire)
        .map_err(|_| Fail::Ping)?;
    wire[0] ^= 1;
    if responder.read_message(&wire[..n], &mut plain).is_ok() {
        return Err(Fail::Mismatch);
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod rt {
    unsafe extern "C" {
        fn exit(status: i32) -> !;
        fn abort() -> !;
        fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    }

    /// The process entry (no C start files): align the stack as a call
    /// would, then hand over to Rust.
    #[unsafe(naked)]
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn _start() -> ! {
        core::arch::naked_asm!(
            "xor ebp, ebp",
            "mov rdi, rsp",
            "and rsp, -16",
            "call {entry}",
            "ud2",
            entry = sym entry,
        )
    }

    extern "C" fn entry(_sp: *const usize) -> ! {
        let code = crate::run();
        if code == 0 {
            crate::report();
        } else {
            print_to(2, b"nostd-check: FAILED (see exit status)\n");
        }
        // SAFETY: exit takes a status and never returns.
        unsafe { exit(code) }
    }

    fn print_to(fd: i32, msg: &[u8]) {
        // SAFETY: a valid buffer for the call; libc is initialised by the
        // dynamic loader before `_start` runs.
        unsafe {
            write(fd, msg.as_ptr(), msg.len());
        }
    }

    /// Writes `msg` to standard output.
    pub fn print(msg: &[u8]) {
        print_to(1, msg);
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        // SAFETY: abort takes no arguments and never returns.
        unsafe { abort() }
    }

    /// The host's precompiled `core` is built to unwind, so its unwind tables
    /// name this symbol; release builds drop them with LTO, unoptimised ones
    /// still need it to link. With `panic = "abort"` it is never called.
    #[unsafe(no_mangle)]
    extern "C" fn rust_eh_personality() {}
}

#[cfg(target_os = "none")]
mod rt {
    /// Where a debugger (or a test harness) finds the outcome: -1 until the
    /// check has run, then 0 or the failing step's code.
    #[unsafe(no_mangle)]
    static mut TERN_NOSTD_RESULT: i32 = -1;

    /// The reset vector's target: run the check, publish the result, park.
    #[unsafe(no_mangle)]
    pub extern "C" fn Reset() -> ! {
        let code = crate::run();
        // SAFETY: single-threaded firmware; a volatile store so the result
        // (and with it the whole handshake) cannot be optimised away.
        unsafe { core::ptr::write_volatile(&raw mut TERN_NOSTD_RESULT, code) };
        loop {
            core::hint::spin_loop();
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        loop {
            core::hint::spin_loop();
        }
    }

    /// No console on bare metal.
    pub fn print(_: &[u8]) {}
}

/// Writes `msg` to standard output (nothing on bare metal).
pub fn print(msg: &[u8]) {
    rt::print(msg);
}

/// Writes `n` in decimal, without `core::fmt`.
#[allow(dead_code)] // unused in the handshake-only image
pub fn print_usize(mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    print(&digits[i..]);
}

#[cfg(not(any(all(target_os = "linux", target_arch = "x86_64"), target_os = "none")))]
compile_error!("nostd-check supports x86_64 Linux (runs) and bare-metal targets (size only)");
