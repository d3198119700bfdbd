#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 30) each,
# on the stable toolchain (RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags;
# AddressSanitizer, debug assertions and overflow checks stay on). Fails if
# any target crashes, leaks, times out or fails to build. Installs
# cargo-fuzz if it is missing. Logs: fuzz/target/fuzz-logs/<target>.log;
# crashing inputs: fuzz/artifacts/<target>/. A dictionary fuzz/<target>.dict,
# if there is one, is passed to libFuzzer.
set -euo pipefail
# This script builds in its own crate's target/ directory, whatever the
# caller's environment says.
unset CARGO_TARGET_DIR
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-30}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

mapfile -t targets < <(cargo fuzz list)
if ((${#targets[@]} == 0)); then
    echo "fuzz: no targets found" >&2
    exit 1
fi

echo "== building fuzz targets: ${targets[*]}"
cargo fuzz build

logs=target/fuzz-logs
mkdir -p "$logs"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzzing $t for ${seconds}s"
    log="$logs/$t.log"
    dict=()
    if [[ -f "$t.dict" ]]; then
        dict=(-dict="$PWD/$t.dict")
    fi
    if cargo fuzz run "$t" -- -max_total_time="$seconds" -print_final_stats=1 "${dict[@]}" \
        >"$log" 2>&1; then
        grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$log" || tail -n 3 "$log"
    else
        echo "fuzz: $t FAILED; the end of $log:" >&2
        tail -n 60 "$log" >&2
        failed+=("$t")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a crash"
