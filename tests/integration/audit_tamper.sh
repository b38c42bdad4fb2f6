# Editing, removing or reordering a row of the audit trail is detected and
# the first bad record is named.
. "$OB_LIB"
console <<'EOF2'
restart cart in staging
/wait
status of cart in staging
/wait
EOF2
"$OPSBOT" audit verify -c "$DEMO" >"$OUT" 2>&1 || fail "fresh trail does not verify"
DB="$OPSBOT_STATE_DIR/opsbot.db"
sqlite3 "$DB" "UPDATE audit SET actor='console:mallory' WHERE id=3;"
"$OPSBOT" audit verify -c "$DEMO" >"$OUT" 2>&1
[ $? -eq 1 ] || fail "edited row not detected"
expect 'BROKEN at record 3'
finish
