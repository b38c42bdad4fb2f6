# Diagnose and suggest on the demo: "checkout in prod is slow" gathers the
# evidence from the simulated fleet (fleet.sh --json), reads it, proposes a
# rollback (a rollout 12 minutes ago, errors far above yesterday's) and a
# scale-up (CPU near the limit); dev picks 1 with a reaction, the pick is
# dev's own prod request, oncall approves, the rollback runs. A viewer may
# diagnose too, but a pick by the viewer is denied by the policy.
. "$OB_LIB"
console <<'EOF2'
checkout in prod is slow
/wait
/react m5 one
/as oncall
/approve
/wait
/as viewer
/react m5 two
/wait
EOF2
[ $? -eq 0 ] || fail "console exited non-zero"
expect '^\[m1\] \[#[0-9]+\] understood: diagnose service=checkout env=prod symptom=slow \(rules'
expect 'policy: allowed — rule reads'
expect 'diagnosing checkout in prod \(slow\): 8 read-only checks, answer within 10s'
expect '^\[m3\] \[#[0-9]+\] Evidence \(8 of 8 answered in '
expect '• p99 latency \(15m\): [0-9]+ ms'
expect '• error rate a day earlier: 0\.[0-9]+%'
expect '• pods and last rollout: 3/3 ready · revision [0-9]+ · rolled out 12m ago'
expect '• error lines \(15m\): [0-9]+ lines?$'
expect 'What it means: error rate [0-9.]+× yesterday.s .*a rollout 12m ago .*CPU at 9[0-9]% of the limit'
expect '^\[m5\] \[#[0-9]+\] Proposals for checkout in prod — pick one with a reaction'
expect '1️⃣ rollback service=checkout env=prod revision=[0-9]+ — the trouble began with revision [0-9]+, rolled out 12m ago'
expect '2️⃣ scale service=checkout env=prod replicas=6 — CPU at 9[0-9]% of the limit'
expect 'runbook: checkout.md § Bad deploy — "If errors or latency rise right after a rollout'
expect '^ *audit #[0-9]+ · chain [0-9a-f]{16}$'
# Nothing ran before the pick.
expect_count 1 'running:'
# The pick: dev's own request, through the policy and oncall's approval.
expect 'understood: rollback service=checkout env=prod revision=[0-9]+ \(pick 1 of diagnosis r-[0-9a-f]+ by console:dev\)'
expect 'policy: needs 1 approval\(s\) from oncall — rule prod-changes-need-oncall'
expect 'APPROVAL NEEDED \(a-[0-9a-f]+\): rollback service=checkout env=prod revision=[0-9]+'
expect '\(updated\) APPROVED by console:oncall'
expect 'running: fleet.sh rollback checkout prod [0-9]+'
expect 'finished: exit 0 in .* — rollback service=checkout env=prod revision=[0-9]+'
# The viewer may pick, but the scale is the viewer's own request: denied.
expect 'understood: scale service=checkout env=prod replicas=6 \(pick 2 of diagnosis r-[0-9a-f]+ by console:viewer\)'
expect 'denied: viewers may only read'
# The fleet rolled back once and was never scaled.
fleet status checkout prod >"$T/status" 2>&1
expect 'replicas: *3' "$T/status"
"$OPSBOT" audit verify -c "$DEMO" >"$T/verify" 2>&1 || fail "audit verify failed: $(cat "$T/verify")"
"$OPSBOT" audit export -c "$DEMO" --format jsonl >"$T/trail" || fail "export failed"
for step in diagnosis_started evidence diagnosis_reading diagnosis_proposed approval_granted finished; do
    expect "\"step\":\"$step\"" "$T/trail"
done
expect_count 8 '"step":"evidence"' "$T/trail"
# Each evidence query is its own record linked to the diagnosis; the pick too.
diag=$(sed -n 's/.*pick 1 of diagnosis \(r-[0-9a-f]*\).*/\1/p' "$OUT" | head -1)
[ -n "$diag" ] || fail "no diagnosis id"
expect_count 8 "\"step\":\"evidence\".*\"diagnosis\":\"$diag\"|\"diagnosis\":\"$diag\".*\"step\":\"evidence\"" "$T/trail"
expect "\"step\":\"received\".*\"diagnosis\":\"$diag\".*\"pick\":1|\"pick\":1.*\"diagnosis\":\"$diag\".*\"step\":\"received\"" "$T/trail"
finish
