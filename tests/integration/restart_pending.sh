# A pending approval survives a restart of opsbot: the second run
# re-announces it, the on-call approves, and the action runs exactly once.
. "$OB_LIB"
console <<'EOF2'
restart search in prod
EOF2
expect 'APPROVAL NEEDED'
expect_not 'running:'
console --user oncall <<'EOF2'
/approve
/wait
EOF2
expect 'still pending from before a restart — APPROVAL NEEDED .*restart service=search env=prod'
expect 'approved by console:oncall'
expect_count 1 'running: fleet.sh restart search prod'
expect 'finished: exit 0'
# A third run has nothing pending.
console --user oncall <<'EOF2'
/approve
EOF2
expect 'no open approval request'
"$OPSBOT" audit verify -c "$DEMO" >"$T/verify" 2>&1 || fail "audit verify: $(cat "$T/verify")"
finish
