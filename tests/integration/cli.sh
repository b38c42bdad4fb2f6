# The command line: help, version, usage errors and policy explain.
. "$OB_LIB"
"$OPSBOT" --version >"$OUT" 2>&1 || fail "--version"
expect '^opsbot [0-9]+\.[0-9]+'
"$OPSBOT" --help >"$OUT" 2>&1 || fail "--help"
expect 'policy explain'
for c in run console check-config "policy explain" "audit verify" "audit export"; do
    $OPSBOT $c --help >"$OUT" 2>&1 || fail "$c --help"
    expect '^usage: opsbot'
done
"$OPSBOT" frobnicate >"$OUT" 2>&1
[ $? -eq 2 ] || fail "unknown command must exit 2"
expect "unknown command 'frobnicate'"
"$OPSBOT" policy explain -c "$DEMO" --user console:dev --action restart --param service=checkout --param env=production >"$OUT" 2>&1 || fail "explain failed"
expect '^decision: approve'
expect '^rule: .*demo.yaml:[0-9]+'
expect '^approval: 1 of group oncall'
"$OPSBOT" policy explain -c "$DEMO" --user console:dev --action restart --param service=checkout --param env=staging >"$OUT" 2>&1
expect '^decision: allow'
"$OPSBOT" policy explain -c "$DEMO" --user slack:U999 --action status >"$OUT" 2>&1
expect '^decision: deny'
expect 'default-deny'
"$OPSBOT" policy explain -c "$DEMO" --user dev --action status >"$OUT" 2>&1
[ $? -eq 2 ] || fail "unqualified user accepted"
expect 'platform-qualified'
"$OPSBOT" policy explain -c "$DEMO" --user console:dev --action restart --param 'service=a;b' >"$OUT" 2>&1
[ $? -eq 1 ] || fail "invalid param accepted"
"$OPSBOT" audit export -c "$DEMO" --format pdf >"$OUT" 2>&1
[ $? -eq 2 ] || fail "bad format accepted"
finish
