#!/bin/sh
# Starts a grandchild that holds stdout, prints its pid, waits.
sleep 1000 &
echo "$!"
wait
