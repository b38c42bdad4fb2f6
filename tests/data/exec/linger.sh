#!/bin/sh
# Exits at once but leaves a background child holding stdout open.
sleep 1000 &
echo "$!"
exit 0
