# The requester cannot approve their own prod change (self-approval is off by
# default); nothing runs, and the refusal says why.
. "$OB_LIB"
console <<'EOF2'
restart payments in prod
/approve
/wait
EOF2
expect 'APPROVAL NEEDED'
expect 'vote not counted: console:dev asked for this and may not approve it: self-approval is off'
expect_not 'running:'
expect_not 'APPROVED'
"$OPSBOT" audit export -c "$DEMO" --format jsonl >"$T/trail"
expect '"step":"vote_rejected"' "$T/trail"
expect_not '"step":"started"' "$T/trail"
finish
