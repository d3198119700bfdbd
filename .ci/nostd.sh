#!/usr/bin/env bash
# The no_std proof (nostd-check/): two #![no_std] #![no_main] binaries that
# use `tern` with default features off and no allocator.
#  1. builds them for the host, where they link only libc, and runs them:
#     tern-nostd-handshake runs a real IK handshake plus one transport
#     message each way; tern-nostd-check runs that and then a whole
#     ConstrainedConnection session (handshake, messages on two channels, a
#     fragmented message, a datagram, a graceful close). Each exits 0 only
#     if every payload matches. If any dependency pulled in std, the build
#     fails on a duplicate `panic_impl`; if it needed alloc, on a missing
#     global allocator.
#  2. if the thumbv7em-none-eabihf target is (or can be) installed, builds
#     both as bare-metal firmware images and prints their flash sizes:
#     handshake only, and the full session.
#     Then builds the embedded-nal driver (tern-nal) for that target too,
#     and checks that its dependencies enable no std or alloc feature.
set -euo pipefail
# This script builds in its own crate's target/ directory, whatever the
# caller's environment says.
unset CARGO_TARGET_DIR
cd "$(dirname "$0")/../nostd-check"

echo "== nostd-check: host build (release)"
cargo build --release
for name in tern-nostd-handshake tern-nostd-check; do
    bin=target/release/$name
    echo "== nostd-check: run $bin"
    status=0
    "$bin" || status=$?
    if ((status != 0)); then
        echo "nostd-check: $name failed (exit status $status; see Fail in src/common.rs)" >&2
        exit 1
    fi
done

thumb=thumbv7em-none-eabihf
have_thumb() { rustup target list --installed 2>/dev/null | grep -qx "$thumb"; }
if ! have_thumb; then
    rustup target add "$thumb" >/dev/null 2>&1 || true
fi
if ! have_thumb; then
    echo "$thumb not available: skipping flash-size build"
    exit 0
fi

echo "== nostd-check: $thumb build (profile flash: opt-level z, lto, panic abort)"
cargo build --profile flash --target "$thumb"

# The embedded-nal driver (crate tern-nal, a workspace member) for the same
# target: the blocking client alone, then with the async one. A no_std
# library could name `alloc` and only fail once linked without an
# allocator, so its dependency tree must not enable any `std` or `alloc`
# feature either.
echo "== tern-nal: $thumb build (blocking only, then with async)"
(
    cd ..
    cargo build -p tern-nal --no-default-features --target "$thumb"
    cargo build -p tern-nal --target "$thumb"
    tree=$(cargo tree -p tern-nal --target "$thumb" -e normal,features,no-proc-macro)
    if grep -E 'feature "(std|alloc)"' <<<"$tree"; then
        echo "nostd-check: tern-nal's dependencies enable std or alloc on $thumb" >&2
        exit 1
    fi
)

# Section sizes as "name size" lines: llvm-size / rust-size / GNU size if they
# read the ARM ELF, else a minimal ELF32 section-header parser.
sections() {
    local tool
    for tool in llvm-size rust-size size; do
        if command -v "$tool" >/dev/null 2>&1 &&
            "$tool" -A "$1" >/dev/null 2>&1; then
            "$tool" -A "$1" | awk 'NF >= 2 && $1 ~ /^\./ { print $1, $2 }'
            return
        fi
    done
    python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:4] == b"\x7fELF" and d[4] == 1, "expected a 32-bit ELF"
e = "<" if d[5] == 1 else ">"
shoff, = struct.unpack_from(e + "I", d, 0x20)
shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", d, 0x2E)
hdrs = [struct.unpack_from(e + "IIIIIIIIII", d, shoff + i * shentsize) for i in range(shnum)]
stroff = hdrs[shstrndx][4]
for h in hdrs:
    name = d[stroff + h[0]:d.index(b"\0", stroff + h[0])].decode()
    if name.startswith("."):
        print(name, h[5])
PY
}

# Prints the flash size of image $1 labelled $2; sets $flash.
flash_size() {
    local elf="target/$thumb/flash/$1" sizes text rodata data
    sizes=$(sections "$elf")
    sec() { awk -v n="$1" '$1 == n { s += $2 } END { print s + 0 }' <<<"$sizes"; }
    text=$(sec .text)
    rodata=$(sec .rodata)
    data=$(sec .data)
    flash=$((text + rodata))
    echo "thumbv7em flash, $2 (text+rodata): $flash bytes"
    echo "  (.text $text, .rodata $rodata; .data $data more bytes of initialisers)"
}

flash_size tern-nostd-handshake "handshake only (Noise IK + transport)"
handshake=$flash
flash_size tern-nostd-check "full session (handshake + ConstrainedConnection)"
session=$flash
echo "session layer on top of the handshake: $((session - handshake)) bytes"

# size_of::<ConstrainedConnection>() on the 32-bit target, from the u32 the
# image records in TERN_CONSTRAINED_CONNECTION_SIZE.
python3 - "target/$thumb/flash/tern-nostd-check" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[5] == 1 else ">"
shoff, = struct.unpack_from(e + "I", d, 0x20)
shentsize, shnum = struct.unpack_from(e + "HH", d, 0x2E)
hdrs = [struct.unpack_from(e + "IIIIIIIIII", d, shoff + i * shentsize) for i in range(shnum)]
for h in hdrs:
    if h[1] != 2:  # SHT_SYMTAB
        continue
    strtab = hdrs[h[6]]
    for off in range(h[4], h[4] + h[5], 16):
        name, value, size, info, other, shndx = struct.unpack_from(e + "IIIBBH", d, off)
        start = strtab[4] + name
        if d[start:d.index(b"\0", start)] == b"TERN_CONSTRAINED_CONNECTION_SIZE":
            sec = hdrs[shndx]
            n, = struct.unpack_from(e + "I", d, sec[4] + value - sec[3])
            print(f"thumbv7em size_of::<ConstrainedConnection>(): {n} bytes")
            sys.exit(0)
print("TERN_CONSTRAINED_CONNECTION_SIZE not found in the image", file=sys.stderr)
sys.exit(1)
PY

# The images must really contain the code: tens of KB, not a stub.
if ((handshake < 20000)); then
    echo "nostd-check: the handshake image is only $handshake bytes; optimised away?" >&2
    exit 1
fi
if ((session <= handshake + 10000)); then
    echo "nostd-check: the session image ($session bytes) is barely larger than the" \
        "handshake image ($handshake bytes); the session optimised away?" >&2
    exit 1
fi
