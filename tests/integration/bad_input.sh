# Oversized and non-UTF-8 lines get one clear line each; chatter that is not
# a request gets no action.
. "$OB_LIB"
long=$(head -c 5000 /dev/zero | tr '\0' 'a')
{
    echo "restart $long"
    printf 'restart caf\303 in staging\n'
    echo "good morning team"
    echo "/bogus"
    echo "/as bad name!"
    echo "status of checkout in staging"
    echo "/wait"
} | console
expect 'message too long \(5008 bytes; the limit is 4000\): not processed'
expect 'not valid UTF-8'
expect 'I did not understand that'
expect 'unknown command /bogus'
expect 'usage: /as NAME'
expect 'running: fleet.sh status checkout staging'
finish
