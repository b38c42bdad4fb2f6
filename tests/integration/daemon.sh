# opsbot run: starts, logs JSON lines, refuses a bad config on SIGHUP while
# the old one keeps running, and exits 0 on SIGTERM.
. "$OB_LIB"
mkdir -p "$T/c"
cp -r "$OB_SOURCE_ROOT/tests/integration/short-ttl/policies" "$T/c/"
sed "s#\.\./\.\./\.\./#$OB_SOURCE_ROOT/#g" "$OB_SOURCE_ROOT/tests/integration/short-ttl/opsbot.yaml" >"$T/c/opsbot.yaml"
"$OPSBOT" run -c "$T/c/opsbot.yaml" 2>"$ERR" &
pid=$!
# Wait for the ready line (the event we await), at most 10 s.
i=0
while ! grep -q '"msg":"ready' "$ERR" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
expect '"level":"info".*"msg":"ready' "$ERR"
# the descriptor table was grown once at start (no RCU wait on the loop
# later), where the limit allows it
if [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 1024 ]; then
    fds=$(awk '/^FDSize:/ {print $2}' /proc/$pid/status)
    [ "${fds:-0}" -ge 1024 ] || fail "FDSize is $fds, not 1024"
fi
echo "bot: {nmae: x}" >>"$T/c/opsbot.yaml"
kill -HUP $pid
i=0
while ! grep -q 'reload refused' "$ERR" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
expect 'reload refused' "$ERR"
kill -0 $pid 2>/dev/null || fail "daemon died on a bad reload"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 0 ] || fail "daemon exit status $rc after SIGTERM"
finish
