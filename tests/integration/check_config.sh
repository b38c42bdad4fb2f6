# check-config validates everything and prints a summary, or every error as
# file:line: key: message and exits 1.
. "$OB_LIB"
"$OPSBOT" check-config -c "$DEMO" >"$OUT" 2>&1 || fail "demo config rejected: $(cat "$OUT")"
expect 'config ok'
expect 'actions: 11'
expect 'restart +change'
expect 'policy: [0-9]+ group'
mkdir -p "$T/c/policies" "$T/c/actions"
cp "$OB_SOURCE_ROOT"/deploy/demo/policies/*.yaml "$T/c/policies/"
cat >"$T/c/actions/a.yaml" <<'EOF2'
actions:
  - name: restart
    description: restart
    risk: change
    params:
      - {name: service, type: string, pattern: '^[a-z]+$', required: true}
      - {name: env, type: enum, values: [prod, staging, dev], required: true}
    rules: ['restart (?<service>[a-z]+']
    executor: {type: exec, argv: [/bin/echo, "{servce}"]}
EOF2
cat >"$T/c/opsbot.yaml" <<'EOF2'
bot:
  nmae: x
  state: ${OPSBOT_STATE_DIR}/x.db
exec:
  max_concurrency: many
actions: {include: actions/*.yaml}
policies: {include: policies/*.yaml}
EOF2
"$OPSBOT" check-config -c "$T/c/opsbot.yaml" >"$OUT" 2>&1
[ $? -eq 1 ] || fail "bad config accepted"
expect 'opsbot.yaml:2: bot.nmae: unknown key'
expect 'opsbot.yaml:5: .*max_concurrency'
expect 'a.yaml:[0-9]+: .*rules.*missing closing parenthesis'
# With the rule fixed, the executor binding is checked too.
sed -i 's/(?<service>\[a-z\]+/(?<service>[a-z]+)/' "$T/c/actions/a.yaml"
"$OPSBOT" check-config -c "$T/c/opsbot.yaml" >"$OUT" 2>&1
expect 'a.yaml:[0-9]+: .*unknown placeholder \{servce\}'
expect_not 'missing closing parenthesis'
# A YAML syntax error names file and line.
printf 'bot:\n  name: [unclosed\n' >"$T/c/broken.yaml"
"$OPSBOT" check-config -c "$T/c/broken.yaml" >"$OUT" 2>&1
[ $? -eq 1 ] || fail "broken yaml accepted"
expect 'broken.yaml:[0-9]+'
# A missing file is one clear line.
"$OPSBOT" check-config -c "$T/nope.yaml" >"$OUT" 2>&1
[ $? -eq 1 ] || fail "missing file accepted"
expect 'nope.yaml'
finish
