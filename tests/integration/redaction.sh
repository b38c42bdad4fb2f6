# Secrets in an action's output are masked before they reach the channel,
# the audit trail or an export; the configured pattern works too.
. "$OB_LIB"
console <<'EOF2'
!logs checkout env=staging since=15m filter=connected
/wait
show me the logs for payments in staging
/wait
EOF2
expect 'postgres://checkout:\[REDACTED\]@checkout_db'
expect 'postgres://payments:\[REDACTED\]@payments_db'
expect_not 'hunter2'
"$OPSBOT" audit export -c "$DEMO" --format jsonl >"$T/trail"
expect 'REDACTED' "$T/trail"
expect_not 'hunter2' "$T/trail"
grep -c hunter2 "$OPSBOT_STATE_DIR/opsbot.db" >"$T/n" || true
[ "$(cat "$T/n")" = 0 ] || fail "the secret reached the state store"
# An operator pattern from the config (redact.patterns).
console <<'EOF2'
!status demo-secret-0123456789abcdef env=staging
EOF2
expect_not '^\[m[0-9]+\].*demo-secret-0123456789abcdef'
expect 'status service=\[REDACTED\]'
finish
