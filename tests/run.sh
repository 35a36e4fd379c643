#!/usr/bin/env bash
# THE test command of tuplekv: installs dependencies, builds the normal tree
# with gcc and the sanitizer (ASan + UBSan) tree with clang, runs the whole
# CTest suite in both, then runs every libFuzzer target from its committed
# seed corpus.
#
#   tests/run.sh                 everything
#   FUZZ_SECONDS=60 tests/run.sh longer fuzzing (default 15 s per target)
#   TKV_SKIP_FUZZ=1 tests/run.sh skip the fuzz stage (local iteration only)
#   TKV_SKIP_JEPSEN=1 tests/run.sh skip the fault-injection stage
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-15}

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
deploy/install-deps.sh

step "build (build/)"
CC=gcc cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

step "build with ASan + UBSan, clang (build-asan/)"
# clang's UBSan flags more than gcc's; build/ stays gcc, so both compilers'
# warnings are checked. A cache of another compiler (build-asan/ was gcc's)
# cannot switch: start afresh.
if [ -f build-asan/CMakeCache.txt ] &&
   ! grep -q '^CMAKE_C_COMPILER:[A-Z]*=.*clang' build-asan/CMakeCache.txt; then
    rm -rf build-asan
fi
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUPLEKV_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"

step "tests (build/)"
ctest --test-dir build --output-on-failure -j "$JOBS"

step "tests under ASan + UBSan, clang (build-asan/)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libraft 0.22.1 leaks InstallSnapshot messages it owns (see the file)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}
ctest --test-dir build-asan --output-on-failure -j "$JOBS"

if [ "${TKV_SKIP_FUZZ:-0}" != 1 ]; then
    step "fuzzing (build-fuzz/, ${FUZZ_SECONDS}s per target)"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUPLEKV_FUZZ=ON >/dev/null
    targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done)
    # shellcheck disable=SC2086
    cmake --build build-fuzz -j "$JOBS" --target $targets
    for fuzzer in "$ROOT"/build-fuzz/bin/fuzz_*; do
        name=$(basename "$fuzzer")
        corpus="$ROOT/tests/fuzz/corpus/$name"
        work=$(mktemp -d)
        [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
        echo "--- $name"
        log="$work.log"
        if ! (cd "$work" && "$fuzzer" -max_total_time="$FUZZ_SECONDS" \
                -max_len=65536 -print_final_stats=1 "$work") >"$log" 2>&1; then
            tail -n 60 "$log"
            echo "$name: crash or failure (inputs kept in $work)"
            exit 1
        fi
        grep -E 'stat::number_of_executed_units|Done' "$log" || true
        rm -f "$log"
        rm -rf "$work"
    done
fi

if [ "${TKV_SKIP_JEPSEN:-0}" != 1 ]; then
    step "fault injection (jepsen/run --ci: bank + append, partitions and kills)"
    jepsen/run --ci
fi

step "all tests passed"
