#!/usr/bin/env bash
# tests/fuzz/run-fuzzers.sh BUILD_DIR [SECONDS] — runs each libFuzzer target of a clang
# build (see README.md) for SECONDS (default 20) on a copy of its seed corpus, so the
# corpus in the tree is never changed. Prints one line per target and, last,
# `RESULT passed=N failed=M`; a target passes when the fuzzer found no crash, sanitizer
# report, timeout or out-of-memory; a target without a libFuzzer build (gcc) is skipped.
# Exit status is non-zero when any target failed. What a failing run left (log, crash input) is kept under
# BUILD_DIR/fuzz-results/<target>/; reproduce with `BUILD_DIR/tests/fuzz/<target> FILE`.
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
secs=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
results="$build/fuzz-results"
work=$(mktemp -d "${TMPDIR:-/tmp}/anvil-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

passed=0 failed=0
for target in api config json packed sigv; do
    bin="$build/tests/fuzz/fuzz_$target-libfuzzer"
    if [ ! -x "$bin" ]; then
        echo "fuzz_$target: SKIP (no libFuzzer build: $bin; configure the build with CC=clang)"
        continue
    fi
    corpus="$work/$target/corpus"
    out="$work/$target/out"
    mkdir -p "$corpus" "$out"
    cp "$here/corpus/$target/"* "$corpus/" 2>/dev/null
    seeds=$(ls "$corpus" | wc -l)
    log="$out/fuzz.log"
    extra=()
    # fuzz_api keeps its engine across inputs on purpose, so nearly every input ends with
    # more allocations than frees; libFuzzer's per-input leak check would then re-run it
    # and scan the heap each time. Leaks are still reported when the run exits.
    [ "$target" = api ] && extra=(-detect_leaks=0)
    [ -f "$here/$target.dict" ] && extra+=(-dict="$here/$target.dict")
    (cd "$out" && "$bin" -max_total_time="$secs" -max_len=4096 -timeout=5 \
        -print_final_stats=1 -artifact_prefix="$out/" "${extra[@]}" "$corpus" >"$log" 2>&1)
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    grown=$(ls "$corpus" | wc -l)
    artifacts=$(cd "$out" && ls | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    summary="${secs}s, ${runs:-?} runs, ${rate:-?} exec/s, cov ${cov:-?}, corpus $seeds -> $grown"
    if [ "$rc" -eq 0 ] && [ -z "$artifacts" ]; then
        echo "fuzz_$target: PASS ($summary)"
        passed=$((passed + 1))
    else
        mkdir -p "$results/fuzz_$target"
        cp "$log" "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* \
            "$results/fuzz_$target/" 2>/dev/null
        reason=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|==fuzz==' "$log" |
            sed 's/^==[0-9]*==//' | cut -c1-160)
        echo "fuzz_$target: FAIL (exit $rc; $summary; ${reason:-see log}; kept in $results/fuzz_$target/)"
        failed=$((failed + 1))
    fi
done
echo "RESULT passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
