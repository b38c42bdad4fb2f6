# A missing parameter makes the bot ask one question in the thread; the
# user's next message there answers it, and the request continues.
. "$OB_LIB"
console <<'EOF2'
restart the thing
checkout
staging
/wait
!scale checkout env=staging
lots
3
/wait
EOF2
expect 'Which service'
expect 'Which env'
expect 'running: fleet.sh restart checkout staging'
expect 'replicas'
expect 'running: fleet.sh scale checkout staging 3'
expect_not 'service=thing'
finish
