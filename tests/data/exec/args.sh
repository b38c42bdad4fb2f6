#!/bin/sh
# Prints the number of arguments, then each one in brackets on its own line.
printf 'argc=%d\n' "$#"
for a in "$@"; do
    printf '[%s]\n' "$a"
done
