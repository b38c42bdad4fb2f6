# An approval that nobody completes expires ("expired — not run"), in the
# running process (timer) and across a restart (overdue at start).
. "$OB_LIB"
CONFIG="$OB_SOURCE_ROOT/tests/integration/short-ttl/opsbot.yaml"
console <<'EOF2'
restart checkout in prod
/as oncall
/approve
/wait all
EOF2
expect 'approval 1 of 2 from console:oncall — waiting for more'
expect '\(updated\) EXPIRED — not run'
expect 'EXPIRED — not run'
expect_not 'running:'
# Second request: left pending when the console exits; overdue at the next start.
console <<'EOF2'
restart payments in prod
EOF2
expect 'APPROVAL NEEDED'
# The deadline is one second: wait for it to pass (wall-clock expiry is the
# behaviour under test).
sleep 1.2
console --user oncall <<'EOF2'
/approve
EOF2
expect 'EXPIRED — not run'
expect 'no open approval request'
expect_not 'running:'
"$OPSBOT" audit export -c "$CONFIG" --format jsonl >"$T/trail"
expect_count 2 '"step":"approval_expired"' "$T/trail"
finish
