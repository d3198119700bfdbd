#!/usr/bin/env bash
# The no_std proof (nostd-check/):
#  1. builds a #![no_std] #![no_main] binary for the host that links only libc
#     and runs a real IK handshake plus one transport message each way with
#     `tern` (default features off); it exits 0 only if every payload matches.
#     If any dependency pulled in std, the build fails on a duplicate
#     `panic_impl`.
#  2. if the thumbv7em-none-eabihf target is (or can be) installed, builds the
#     same check as a bare-metal firmware image and prints its flash size.
set -euo pipefail
cd "$(dirname "$0")/../nostd-check"

echo "== nostd-check: host build (release)"
cargo build --release
bin=target/release/tern-nostd-check
echo "== nostd-check: run $bin"
if ! "$bin"; then
    echo "nostd-check: the no_std handshake binary failed (exit status $?)" >&2
    exit 1
fi

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
elf="target/$thumb/flash/tern-nostd-check"

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

sizes=$(sections "$elf")
sec() { awk -v n="$1" '$1 == n { s += $2 } END { print s + 0 }' <<<"$sizes"; }
text=$(sec .text)
rodata=$(sec .rodata)
data=$(sec .data)
flash=$((text + rodata))
echo "thumbv7em flash (text+rodata): $flash bytes"
echo "  (.text $text, .rodata $rodata; .data $data more bytes of initialisers)"

# The image must really contain the handshake: tens of KB, not a stub.
if ((flash < 20000)); then
    echo "nostd-check: $elf is only $flash bytes; the handshake was optimised away?" >&2
    exit 1
fi
