# The issue's walk-through: dev asks for a prod restart, the policy asks for
# on-call approval, oncall approves, the action runs and reports; every step
# is echoed with its audit record and the trail verifies.
. "$OB_LIB"
console <<'EOF2'
restart checkout in prod
/as oncall
/approve
/wait
EOF2
[ $? -eq 0 ] || fail "console exited non-zero"
expect '^\[m[0-9]+\] \[#[0-9]+\] understood: restart service=checkout env=prod \(rules'
expect 'policy: needs 1 approval\(s\) from oncall — rule [a-z-]+ \(.*demo.yaml:[0-9]+\)'
expect 'APPROVAL NEEDED \(a-[0-9a-f]+\): restart service=checkout env=prod'
expect 'will run: fleet.sh restart checkout prod'
expect '\(updated\) APPROVED by console:oncall'
expect '\[#[0-9]+\] approved by console:oncall \(1 of 1\)'
expect '\[#[0-9]+\] running: fleet.sh restart checkout prod'
expect '\[#[0-9]+\] finished: exit 0 in .* — restart service=checkout env=prod'
expect '^ *audit #[0-9]+ · chain [0-9a-f]{16}$'
expect_count 1 'running:'
# The fleet really restarted once.
fleet status checkout prod >"$T/status" 2>&1
expect 'restarts: *1' "$T/status"
# The trail verifies and holds every step in order.
"$OPSBOT" audit verify -c "$DEMO" >"$T/verify" 2>&1 || fail "audit verify failed: $(cat "$T/verify")"
expect 'intact' "$T/verify"
"$OPSBOT" audit export -c "$DEMO" --format jsonl >"$T/trail" || fail "export failed"
for step in received understood decided approval_requested approval_granted started finished; do
    expect "\"step\":\"$step\"" "$T/trail"
done
expect '"actor":"console:oncall"' "$T/trail"
"$OPSBOT" audit export -c "$DEMO" --format html -o "$T/trail.html" || fail "html export failed"
expect 'console:oncall' "$T/trail.html"
# The chain hash shown in the channel is the one the store holds.
shown=$(sed -n 's/.*audit #\([0-9]*\) · chain \([0-9a-f]*\)$/\1 \2/p' "$OUT" | tail -1)
id=${shown% *}
hash=${shown#* }
grep "\"id\":$id," "$T/trail" | grep -q "\"hash\":\"$hash" || fail "chain hash $hash of record $id not in the trail"
finish
