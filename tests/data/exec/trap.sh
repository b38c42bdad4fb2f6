#!/bin/sh
# Ignores SIGTERM: only SIGKILL ends it.
trap '' TERM
echo ready
while :; do
    sleep 1
done
