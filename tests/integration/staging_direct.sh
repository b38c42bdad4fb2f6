# Staging changes run directly for engineers; viewers may read but not
# change; strangers get the default deny; help lists only what the asker may
# run.
. "$OB_LIB"
console <<'EOF2'
scale payments to 4 replicas on staging
/wait
roll back search in staging
/wait
/as viewer
status of payments in staging
/wait
restart payments in staging
/as mallory
status of payments in staging
help
/as viewer
help
/wait
EOF2
expect 'policy: allowed — rule .* \(.*demo.yaml:[0-9]+\)'
expect 'running: fleet.sh scale payments staging 4'
expect 'finished: exit 0 .* — scale service=payments env=staging replicas=4'
expect 'running: fleet.sh status payments staging'
expect 'finished: exit 0 .* — rollback service=search env=staging revision=0'
expect 'rolling back search in staging from revision [0-9]+ to'
expect 'replicas: *4'
expect 'denied: .*viewer'
expect 'denied: no rule allows status for console:mallory — rule default-deny'
expect 'denied: no rule allows help for console:mallory'
expect 'What you \(console:viewer\) can ask me:'
sed -n '/What you (console:viewer)/,/Explicit form/p' "$OUT" >"$T/help"
expect 'status' "$T/help"
expect_not '• restart' "$T/help"
finish
