# Shared helpers of the integration tests: each test is a scripted console
# session (or a command) against the demo configuration, in its own state
# directory, checked by the lines it must and must not print.
set -u
: "${OPSBOT:?OPSBOT must point at the built binary}"
: "${OB_SOURCE_ROOT:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/opsbot-it.XXXXXX")
trap 'rm -rf "$T"' EXIT
export OPSBOT_STATE_DIR="$T/state"
export FLEET_DELAY=0
DEMO="$OB_SOURCE_ROOT/deploy/demo/opsbot.yaml"
FLEET="$OB_SOURCE_ROOT/deploy/demo/fleet.sh"
OUT="$T/out"
ERR="$T/err"
failures=0

# console [ARGS...] < script : runs a session, transcript in $OUT, logs in $ERR
console() {
    "$OPSBOT" console -c "${CONFIG:-$DEMO}" "$@" >"$OUT" 2>"$ERR"
    rc=$?
    echo "--- session (exit $rc)" >>"$T/all"
    cat "$OUT" >>"$T/all"
    return $rc
}

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect REGEX [FILE]: some line matches
expect() {
    grep -qE -- "$1" "${2:-$OUT}" || fail "expected /$1/ in ${2:-transcript}"
}

# expect_not REGEX [FILE]: no line matches
expect_not() {
    if grep -qE -- "$1" "${2:-$OUT}"; then
        fail "did not expect /$1/ in ${2:-transcript}: $(grep -E -- "$1" "${2:-$OUT}" | head -1)"
    fi
}

# expect_count N REGEX [FILE]
expect_count() {
    n=$(grep -cE -- "$2" "${3:-$OUT}")
    [ "$n" -eq "$1" ] || fail "expected $1 line(s) matching /$2/, found $n"
}

# fleet SUBCOMMAND ARGS...: the simulated fleet's own view
fleet() {
    FLEET_STATE="$OPSBOT_STATE_DIR/fleet" "$FLEET" "$@"
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "=== transcript"
        cat "$T/all" 2>/dev/null || cat "$OUT"
        echo "=== stderr"
        cat "$ERR"
        exit 1
    fi
    echo "ok"
    exit 0
}
