#!/bin/sh
# stamp.sh LOG ID SECONDS: appends "start ID", sleeps, appends "end ID".
echo "start $2" >>"$1"
sleep "$3"
echo "end $2" >>"$1"
