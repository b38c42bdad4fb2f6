#!/bin/sh
# Writes to both streams and exits with the code given as $1.
echo "about to fail"
echo "failing with $1" >&2
exit "$1"
