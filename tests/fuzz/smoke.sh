#!/bin/sh
# The fuzz smoke run: builds the libFuzzer targets in build-fuzz (clang,
# -Dfuzz=true: the library with -fsanitize=fuzzer-no-link,address,undefined)
# and runs each on its seed corpus (tests/fuzz/corpus/NAME, dictionary
# tests/fuzz/NAME.dict) for a short while, as many at once as there are
# cores. One line per target, then "fuzz smoke: N passed, N failed"; exit
# status 1 when anything failed. Inputs that crashed are kept in
# build-fuzz/fuzz-out/NAME/ (replay: build-fuzz/tests/fuzz/fuzz_NAME FILE).
#
#   sh tests/fuzz/smoke.sh             20 s per target
#   FUZZ_SECONDS=300 sh tests/fuzz/smoke.sh fuzz_config   one target, longer
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
OUT=$BUILD/fuzz-out

# One target: its own writable corpus (the seeds stay untouched), the
# seeds as a second input directory, crashes into OUT/NAME.
run_one() {
    t=$1
    name=${t#fuzz_}
    dir=$OUT/$name
    mkdir -p "$dir/corpus"
    rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir/result"
    dict=""
    [ -f "$ROOT/tests/fuzz/$name.dict" ] && dict="-dict=$ROOT/tests/fuzz/$name.dict"
    (
        cd "$dir" || exit 1
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        LSAN_OPTIONS=suppressions="$ROOT/tests/lsan.supp":print_suppressions=0 \
        OB_SOURCE_ROOT="$ROOT" \
            "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" $dict \
            "$dir/corpus" "$ROOT/tests/fuzz/corpus/$name" >"$dir/log" 2>&1
    )
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "ok $t ${runs:-?}" >"$dir/result"
    else
        why=$(grep -m1 -E '^SUMMARY|ERROR: libFuzzer|runtime error' "$dir/log" | cut -c1-120)
        art=$(ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null | head -1)
        echo "FAILED $t ${why:-exit $rc} ${art:+-> $art}" >"$dir/result"
    fi
}

if [ "${1:-}" = --one ]; then
    shift
    run_one "$1"
    exit 0
fi

targets=""
if [ $# -gt 0 ]; then
    targets="$*"
else
    for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
        t=$(basename "$src" .c)
        [ "$t" = fuzz_fs ] || targets="$targets $t"
    done
fi

# One smoke run at a time per build directory (they share fuzz-out/).
mkdir -p "$BUILD"
exec 9>"$BUILD/.smoke.lock"
if command -v flock >/dev/null 2>&1 && ! flock -w 600 9; then
    echo "  fuzz build: FAILED (another smoke run holds $BUILD/.smoke.lock)"
    echo "fuzz smoke: 0 passed, 1 failed"
    exit 1
fi

if ! command -v clang >/dev/null 2>&1; then
    echo "  fuzz build: FAILED (clang not found: apt-get install clang libclang-rt-14-dev)"
    echo "fuzz smoke: 0 passed, 1 failed"
    exit 1
fi
if [ ! -f "$BUILD/build.ninja" ]; then
    # No -Dwerror: clang warns about things gcc does not; the gcc builds
    # keep -Werror. A fuzz build exists to find crashes.
    if ! CC=clang meson setup "$BUILD" -Dfuzz=true -Db_lundef=false \
        >"${TMPDIR:-/tmp}/opsbot-fuzz-setup.log" 2>&1; then
        tail -20 "${TMPDIR:-/tmp}/opsbot-fuzz-setup.log" | sed 's/^/  /'
        echo "  fuzz build: FAILED (meson setup, see ${TMPDIR:-/tmp}/opsbot-fuzz-setup.log)"
        echo "fuzz smoke: 0 passed, 1 failed"
        exit 1
    fi
fi
names=""
for t in $targets; do
    names="$names tests/fuzz/$t"
done
# shellcheck disable=SC2086
if ! ninja -C "$BUILD" $names >"$BUILD/fuzz-build.log" 2>&1; then
    grep -E 'error|FAILED' "$BUILD/fuzz-build.log" | head -20 | sed 's/^/  /'
    echo "  fuzz build: FAILED (see $BUILD/fuzz-build.log)"
    echo "fuzz smoke: 0 passed, 1 failed"
    exit 1
fi

mkdir -p "$OUT"
start=$(date +%s)
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "$JOBS" -I{} sh "$0" --one {}
passed=0
failed=0
for t in $targets; do
    r=$(cat "$OUT/${t#fuzz_}/result" 2>/dev/null || echo "FAILED $t (no result)")
    case $r in
    ok\ *)
        set -- $r
        echo "  $2: ok ($3 runs in ${SECONDS_EACH} s)"
        passed=$((passed + 1))
        ;;
    *)
        echo "  ${r#FAILED }" | sed 's/^\(  [^ ]*\) /\1: FAILED: /'
        failed=$((failed + 1))
        ;;
    esac
done
echo "fuzz smoke: $passed passed, $failed failed ($(($(date +%s) - start)) s)"
[ "$failed" -eq 0 ]
