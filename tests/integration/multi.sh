# Several services at once are never run under one decision: each becomes its
# own request, decided and run on its own.
. "$OB_LIB"
console <<'EOF2'
restart checkout, payments and cart in staging
/wait
restart checkout and payments in prod
/as oncall
/approve
/wait
EOF2
expect 'That is 3 actions'
expect_count 3 'understood: restart service=[a-z]+ env=staging'
expect_count 3 'finished: exit 0 .* env=staging'
expect_count 2 'APPROVAL NEEDED'
# /approve approves only the newest one; the other stays pending.
expect_count 1 'running: fleet.sh restart [a-z]+ prod'
finish
