# Parameters are validated before anything is substituted: shell
# metacharacters, unknown values and out-of-range numbers get one clear line
# and nothing runs.
. "$OB_LIB"
console <<'EOF2'
!restart "checkout; rm -rf /" env=staging
!restart checkout env=staging;reboot
!scale checkout env=staging replicas=5000
!restart checkout env=moon
!restart checkout env=staging colour=red
!frobnicate checkout
/wait
EOF2
expect_count 6 'not run:'
expect 'service .*not valid'
expect 'replicas'
expect 'env'
expect 'colour'
expect 'frobnicate'
expect_not 'running:'
expect_not 'understood:'
[ -d "$OPSBOT_STATE_DIR/fleet" ] && ls "$OPSBOT_STATE_DIR/fleet" | grep -q . && fail "the fleet was touched"
finish
