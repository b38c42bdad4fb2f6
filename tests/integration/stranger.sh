# Reactions from people outside the approver group, on other messages, or
# with other emoji are refused or ignored; the request stays pending until an
# eligible approver decides. A refusal by an eligible approver ends it.
. "$OB_LIB"
console <<'EOF2'
rollback auth in prod
/as viewer
/approve
/as alice
/approve
/react m1 white_check_mark
/as oncall
/react last tada
/deny
/wait
EOF2
expect 'vote not counted: console:viewer is not in the approver group .oncall.'
expect 'vote not counted: console:alice is not in the approver group .oncall.'
expect '\(updated\) REFUSED by console:oncall — not run'
expect 'REFUSED by console:oncall — not run'
expect_not 'running:'
expect_count 3 'vote not counted'
expect 'vote not counted: console:alice reacted on another message; react on the approval request \(m[0-9]+\) itself'
finish
