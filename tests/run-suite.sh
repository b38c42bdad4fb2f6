#!/bin/sh
# Runs the meson test suites of each build directory given, then (with
# --fuzz) the fuzz smoke run (tests/fuzz/smoke.sh: one count per target),
# then the format check, and prints one final line "N passed, N failed".
set -u
passed=0
failed=0
fuzz=false
if [ "${1:-}" = --fuzz ]; then
    fuzz=true
    shift
fi
for dir in "$@"; do
    echo "== tests in $dir"
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    LSAN_OPTIONS=suppressions="$(pwd)/tests/lsan.supp":print_suppressions=0 \
        meson test -C "$dir" --num-processes "$(nproc)" --print-errorlogs >"$dir/suite.out" 2>&1
    grep -E '^ *[0-9]+/[0-9]+ ' "$dir/suite.out" | sed 's/^/  /'
    grep -A200 -E '^(Summary of Failures|Ok:)' "$dir/suite.out" | grep -vE '^\s*$' | head -40
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir/suite.out" | tail -1)
    bad=0
    for k in Fail Timeout 'Unexpected Pass'; do
        n=$(sed -n "s/^$k: *\([0-9]*\).*/\1/p" "$dir/suite.out" | tail -1)
        bad=$((bad + ${n:-0}))
    done
    if [ -z "$ok" ]; then
        echo "  meson test did not run in $dir:"
        tail -20 "$dir/suite.out"
        bad=$((bad + 1))
        ok=0
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
done
if $fuzz; then
    echo "== fuzz smoke (build-fuzz, ${FUZZ_SECONDS:-20} s per target)"
    mkdir -p build-fuzz
    sh tests/fuzz/smoke.sh >build-fuzz/smoke.out 2>&1
    grep -vE '^fuzz smoke:' build-fuzz/smoke.out
    grep -E '^fuzz smoke:' build-fuzz/smoke.out | sed 's/^/  /'
    ok=$(sed -n 's/^fuzz smoke: \([0-9]*\) passed.*/\1/p' build-fuzz/smoke.out)
    bad=$(sed -n 's/^fuzz smoke: [0-9]* passed, \([0-9]*\) failed.*/\1/p' build-fuzz/smoke.out)
    if [ -z "$ok" ]; then
        tail -5 build-fuzz/smoke.out
        ok=0
        bad=1
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
fi
echo "== format check"
if command -v clang-format >/dev/null 2>&1 && [ -d .git ]; then
    if clang-format --dry-run --Werror $(git ls-files '*.c' '*.h') >/dev/null 2>&1; then
        passed=$((passed + 1))
    else
        clang-format --dry-run $(git ls-files '*.c' '*.h') 2>&1 | head -20
        echo "  format check failed: run make format"
        failed=$((failed + 1))
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
