# A redelivered event (same event id) never runs anything twice.
. "$OB_LIB"
console <<'EOF2'
restart cart in staging
/wait
/redeliver
/wait
/redeliver
/wait
EOF2
expect_count 1 'running: fleet.sh restart cart staging'
expect_count 2 'already handled' "$ERR"
fleet status cart staging >"$T/status" 2>&1
expect 'restarts: *1' "$T/status"
finish
