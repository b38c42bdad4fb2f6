#!/bin/sh
# fleet.sh: a simulated fleet for the opsbot demo. Nothing real is touched;
# the "fleet" is a few small state files.
#
#   fleet.sh restart  SERVICE ENV
#   fleet.sh rollback SERVICE ENV [REVISION]  (0 = previous)
#   fleet.sh scale    SERVICE ENV REPLICAS
#   fleet.sh status   SERVICE ENV
#   fleet.sh logs     SERVICE ENV SINCE [FILTER]
#   fleet.sh metrics  SERVICE ENV METRIC SINCE
#
#   fleet.sh --json status|logs|metrics ...   one JSON object instead of text,
#       for opsbot's diagnosis (docs/DIAGNOSE.md); metrics then also takes the
#       signals latency, latency_1d, error_rate, error_rate_1d, cpu, memory
#
# Environment:
#   FLEET_STATE  state directory (default: ./state next to this script)
#   FLEET_DELAY  seconds per pod step of a rolling change (default 0.2)
#   FLEET_NOW    fixed "now" in epoch seconds, for reproducible output
#
# Exit codes: 0 ok, 2 refused (bad value, impossible change), 3 unknown
# service or env, 64 usage, 75 busy (another change holds the lock).
#
# Arguments are data only: every expansion is quoted, names are checked
# against a fixed alphabet before they become paths, nothing is eval'd.
# State files are replaced atomically (write a temp file, then mv), and
# changes of one service in one env are serialised with flock (util-linux)
# or, without it, a mkdir lock.
set -eu

SERVICES="checkout payments auth search cart inventory notifications api-gateway web-frontend"
ENVS="prod staging dev"
METRICS="latency_p99_ms error_rate cpu memory_mb rps"

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
STATE=${FLEET_STATE:-$script_dir/state}
DELAY=${FLEET_DELAY:-0.2}
case $DELAY in
'' | *[!0-9.]*) DELAY=0.2 ;;
esac

die() {
    code=$1
    shift
    printf 'fleet: %s\n' "$*" >&2
    exit "$code"
}

usage() {
    cat >&2 <<'EOF'
usage: fleet.sh restart  SERVICE ENV
       fleet.sh rollback SERVICE ENV [REVISION]
       fleet.sh scale    SERVICE ENV REPLICAS
       fleet.sh status   SERVICE ENV
       fleet.sh logs     SERVICE ENV SINCE [FILTER]
       fleet.sh metrics  SERVICE ENV METRIC SINCE
EOF
    exit 64
}

comma_list() {
    # "a b c" -> "a, b, c"
    printf '%s\n' "$1" | sed 's/ /, /g'
}

in_list() {
    # in_list WORD "LIST": WORD is one of the space-separated LIST
    case " $2 " in
    *" $1 "*) return 0 ;;
    esac
    return 1
}

check_target() {
    svc=$1
    env=$2
    case $env in
    '' | *[!a-z]*) die 3 "unknown env '$env' (known: $(comma_list "$ENVS"))" ;;
    esac
    in_list "$env" "$ENVS" || die 3 "unknown env '$env' (known: $(comma_list "$ENVS"))"
    case $svc in
    '' | *[!a-z0-9-]*) die 3 "unknown service '$svc' in $env (known: $(comma_list "$SERVICES"))" ;;
    esac
    in_list "$svc" "$SERVICES" ||
        die 3 "unknown service '$svc' in $env (known: $(comma_list "$SERVICES"))"
    dir=$STATE/$env
    file=$dir/$svc
    mkdir -p -- "$dir"
}

is_uint() {
    case $1 in
    '' | *[!0-9]*) return 1 ;;
    esac
    [ "${#1}" -le 6 ]
}

# Seconds of a duration like 90s, 15m, 1h, 2d (plain digits: seconds).
since_seconds() {
    s=$1
    case $s in
    *[!0-9smhd]* | '' | [!0-9]*) die 2 "bad duration '$s' (use e.g. 30s, 15m, 1h, 2d)" ;;
    esac
    num=${s%[smhd]}
    unit=${s#"$num"}
    is_uint "$num" || die 2 "bad duration '$s' (use e.g. 30s, 15m, 1h, 2d)"
    case $unit in
    '' | s) mult=1 ;;
    m) mult=60 ;;
    h) mult=3600 ;;
    d) mult=86400 ;;
    *) die 2 "bad duration '$s' (use e.g. 30s, 15m, 1h, 2d)" ;;
    esac
    secs=$((num * mult))
    [ "$secs" -ge 1 ] || die 2 "duration '$s' must be at least 1s"
    [ "$secs" -le 604800 ] || die 2 "duration '$s' is too long (at most 7d)"
    echo "$secs"
}

now_epoch() {
    if [ -n "${FLEET_NOW:-}" ] && is_uint_long "$FLEET_NOW"; then
        echo "$FLEET_NOW"
    else
        date -u +%s
    fi
}

is_uint_long() {
    case $1 in
    '' | *[!0-9]*) return 1 ;;
    esac
    [ "${#1}" -le 12 ]
}

now_iso() {
    if [ -n "${FLEET_NOW:-}" ] && is_uint_long "$FLEET_NOW"; then
        date -u -d "@$FLEET_NOW" +%Y-%m-%dT%H:%M:%SZ
    else
        date -u +%Y-%m-%dT%H:%M:%SZ
    fi
}

# Deterministic defaults per service and env.
defaults() {
    sum=$(printf '%s' "$svc" | cksum | cut -d ' ' -f 1)
    revision=$((10 + sum % 30))
    case $env in
    prod) replicas=3 ;;
    staging) replicas=2 ;;
    *) replicas=1 ;;
    esac
    restarts=0
    changed=never
}

load() {
    defaults
    [ -f "$file" ] || return 0
    while IFS='=' read -r k v; do
        case $k in
        replicas) is_uint "$v" && replicas=$v ;;
        revision) is_uint "$v" && revision=$v ;;
        restarts) is_uint "$v" && restarts=$v ;;
        changed) changed=$v ;;
        esac
    done <"$file"
}

save() {
    tmp=$file.tmp.$$
    printf 'replicas=%s\nrevision=%s\nrestarts=%s\nchanged=%s\n' \
        "$replicas" "$revision" "$restarts" "$changed" >"$tmp"
    mv -f -- "$tmp" "$file"
}

note() {
    printf '%s %s %s %s via %s\n' "$(now_iso)" "$1" "$svc" "$env" "${OPSBOT_ACTION:-cli}" \
        >>"$file.log"
}

lock() {
    lockfile=$dir/.$svc.lock
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$lockfile"
        flock -w 30 9 || die 75 "busy: another change of $svc in $env is running"
    else
        n=0
        until mkdir -- "$lockfile.d" 2>/dev/null; do
            n=$((n + 1))
            [ "$n" -le 300 ] || die 75 "busy: another change of $svc in $env is running"
            sleep 0.1
        done
        trap 'rmdir -- "$lockfile.d" 2>/dev/null || :' EXIT
        trap 'exit 143' TERM
        trap 'exit 130' INT
    fi
}

pause() {
    case $DELAY in
    0 | 0.0 | 0.00) ;;
    *) sleep "$DELAY" ;;
    esac
}

# roll VERB: one line per pod, "VERB checkout in prod: pod 1/3 ... done"
roll() {
    i=1
    while [ "$i" -le "$replicas" ]; do
        printf '%s %s in %s: pod %d/%d ... ' "$1" "$svc" "$env" "$i" "$replicas"
        pause
        printf 'done\n'
        i=$((i + 1))
    done
}

cmd_restart() {
    [ $# -eq 2 ] || usage
    check_target "$1" "$2"
    lock
    load
    if [ "$replicas" -eq 0 ]; then
        printf '%s in %s has 0 replicas: nothing to restart\n' "$svc" "$env"
        return 0
    fi
    printf 'rolling restart of %s in %s (%d pods, revision %d)\n' "$svc" "$env" "$replicas" "$revision"
    roll restarting
    restarts=$((restarts + 1))
    changed=$(now_iso)
    save
    note restart
    printf '%s in %s restarted: %d/%d ready, revision %d\n' "$svc" "$env" "$replicas" "$replicas" "$revision"
}

cmd_rollback() {
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    check_target "$1" "$2"
    lock
    load
    # Revision 0 (or none) means the previous one, as with kubectl.
    if [ $# -eq 3 ] && [ "$3" != 0 ]; then
        is_uint "$3" || die 2 "bad revision '$3' (a positive number)"
        target=$3
    else
        target=$((revision - 1))
    fi
    if [ "$target" -lt 1 ]; then
        die 2 "cannot roll back $svc in $env below revision 1 (current revision $revision)"
    fi
    if [ "$target" -ge "$revision" ]; then
        die 2 "cannot roll back $svc in $env to revision $target: current revision is $revision"
    fi
    printf 'rolling back %s in %s from revision %d to %d (image %s:v1.%d.0)\n' \
        "$svc" "$env" "$revision" "$target" "$svc" "$target"
    roll "rolling back"
    revision=$target
    changed=$(now_iso)
    save
    note "rollback-to-$target"
    printf '%s in %s now at revision %d\n' "$svc" "$env" "$revision"
}

cmd_scale() {
    [ $# -eq 3 ] || usage
    check_target "$1" "$2"
    is_uint "$3" || die 2 "bad replica count '$3' (0 to 50)"
    [ "$3" -le 50 ] || die 2 "bad replica count '$3' (0 to 50)"
    lock
    load
    want=$(($3 + 0))
    if [ "$want" -eq "$replicas" ]; then
        printf '%s in %s already has %d replicas\n' "$svc" "$env" "$replicas"
        return 0
    fi
    printf 'scaling %s in %s from %d to %d replicas ... ' "$svc" "$env" "$replicas" "$want"
    pause
    printf 'done\n'
    replicas=$want
    changed=$(now_iso)
    save
    note "scale-to-$want"
}

cmd_status() {
    [ $# -eq 2 ] || usage
    check_target "$1" "$2"
    load
    if [ "$JSON" = 1 ]; then
        json_status
        return 0
    fi
    printf 'service:     %s\n' "$svc"
    printf 'env:         %s\n' "$env"
    printf 'replicas:    %d\n' "$replicas"
    printf 'ready:       %d/%d\n' "$replicas" "$replicas"
    printf 'revision:    %d\n' "$revision"
    printf 'image:       %s:v1.%d.0\n' "$svc" "$revision"
    printf 'restarts:    %d\n' "$restarts"
    printf 'last change: %s\n' "$changed"
}

# Shared awk helpers: a civil-date formatter and a small Lehmer generator.
AWK_LIB='
function iso(t,   s, z, era, doe, yoe, y, doy, mp, d, m) {
    s = t % 86400; z = int(t / 86400) + 719468
    era = int(z / 146097); doe = z - era * 146097
    yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
    y = yoe + era * 400
    doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
    mp = int((5 * doy + 2) / 153)
    d = doy - int((153 * mp + 2) / 5) + 1
    m = (mp < 10) ? mp + 3 : mp - 9
    if (m <= 2) y++
    return sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, int(s / 3600), int((s % 3600) / 60), s % 60)
}
function hash(str,   i, h, abc) {
    abc = "abcdefghijklmnopqrstuvwxyz0123456789-_"
    h = 7
    for (i = 1; i <= length(str); i++)
        h = (h * 31 + index(abc, substr(str, i, 1)) + 1) % 2147483647
    return h
}
function mix(x,   i) {
    # a few non-linear rounds so that neighbouring buckets look unrelated
    x = x % 999983
    for (i = 0; i < 4; i++)
        x = (x * x + 7919 + i) % 999983
    return x + 1
}
function rnd() {
    seed = (seed * 16807) % 2147483647
    return seed / 2147483647
}
'

cmd_logs() {
    [ $# -eq 3 ] || [ $# -eq 4 ] || usage
    check_target "$1" "$2"
    secs=$(since_seconds "$3")
    now=$(now_epoch)
    if [ "$JSON" = 1 ]; then
        # {"lines": N, "sample": [newest first, at most 50]}
        since_arg=$3
        filter_arg=${4:-}
        JSON=0
        cmd_logs "$svc" "$env" "$since_arg" ${filter_arg:+"$filter_arg"} |
            grep -v '^no log lines' |
            awk 'BEGIN { n = 0; printf "{\"sample\": [" }
                 { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); if (n < 50) printf "%s\"%s\"", (n ? ", " : ""), $0; n++ }
                 END { printf "], \"lines\": %d}\n", n }'
        return 0
    fi
    gen() {
        awk -v svc="$svc" -v env="$env" -v now="$now" -v secs="$secs" "$AWK_LIB"'
        BEGIN {
            step = 30; n = int(secs / step); if (n < 1) n = 1; if (n > 200) n = 200
            t0 = now - now % step
            for (k = 0; k < n; k++) {
                t = t0 - k * step
                seed = mix(hash(svc "/" env) + t / step)
                if (seed == 0) seed = 1
                rnd(); r = rnd(); ms = int(5 + rnd() * 400)
                if (r < 0.55)
                    line = sprintf("INFO  GET /api/%s/items 200 in %dms", svc, ms)
                else if (r < 0.70)
                    line = "INFO  health check ok"
                else if (r < 0.80)
                    line = sprintf("WARN  slow query on %s_db: %dms", svc, ms * 10)
                else if (r < 0.88)
                    line = sprintf("ERROR upstream timeout calling %s after 5000ms (request id %d)", (svc == "payments") ? "auth" : "payments", seed % 100000)
                else if (r < 0.93)
                    line = sprintf("INFO  cache hit ratio 0.%02d", int(rnd() * 100))
                else if (r < 0.97)
                    line = sprintf("ERROR connection refused: %s_db:5432", svc)
                else
                    line = "ERROR panic: runtime error: invalid memory address or nil pointer dereference (recovered)"
                printf "%s %s %s-%d %s\n", iso(t), env, svc, k % 3, line
            }
            # The oldest line leaks a credential, as real logs do: opsbot
            # must mask it before it reaches the channel.
            printf "%s %s %s-0 INFO  connected to postgres://%s:hunter2-%s@%s_db:5432/app\n", iso(t0 - n * step), env, svc, svc, env, svc
        }'
    }
    if [ $# -eq 4 ] && [ -n "$4" ]; then
        gen | grep -F -- "$4" || printf 'no log lines of %s in %s match "%s" in the last %s\n' \
            "$svc" "$env" "$4" "$3"
    else
        gen
    fi
}

# --json metrics: one number per signal, as opsbot's probe action reads it.
# checkout in prod is the demo incident: a rollout 12 minutes ago, latency
# and errors many times yesterday's, CPU near its limit.
json_metrics() {
    secs=$(since_seconds "$4")
    incident=0
    if [ "$svc" = checkout ] && [ "$env" = prod ]; then
        incident=1
    fi
    load
    awk -v svc="$svc" -v env="$env" -v sig="$3" -v inc="$incident" -v pods="$replicas" "$AWK_LIB"'
    BEGIN {
        seed = mix(hash(svc "/" env "/" sig)); rnd(); j = rnd()
        if (sig == "latency") { v = inc ? 0.85 + j * 0.1 : 0.11 + j * 0.03; u = "s" }
        else if (sig == "latency_1d") { v = 0.11 + j * 0.03; u = "s" }
        else if (sig == "error_rate") { v = inc ? 0.081 + j * 0.01 : 0.002 + j * 0.002; u = "ratio" }
        else if (sig == "error_rate_1d") { v = 0.002 + j * 0.002; u = "ratio" }
        else if (sig == "cpu") { lo = inc ? 0.88 : 0.3; hi = inc ? 0.95 : 0.45; u = "ratio" }
        else if (sig == "memory") { lo = 0.45; hi = 0.6; u = "ratio" }
        else { printf "{\"error\": \"unknown signal\"}\n"; exit 2 }
        if (sig == "cpu" || sig == "memory") {
            if (pods < 1) { printf "{\"unit\": \"%s\", \"count\": 0}\n", u; exit 0 }
            printf "{\"unit\": \"%s\", \"count\": %d, \"value\": %.4f, \"min\": %.4f, \"max\": %.4f}\n", u, pods, hi, lo, hi
        } else {
            printf "{\"unit\": \"%s\", \"count\": 1, \"value\": %.6f}\n", u, v
        }
    }'
}

json_status() {
    now=$(now_epoch)
    age=null
    if [ "$changed" != never ]; then
        t=$(date -u -d "$changed" +%s 2>/dev/null || echo "")
        [ -n "$t" ] && age=$((now - t))
    elif [ "$svc" = checkout ] && [ "$env" = prod ]; then
        age=720 # the demo incident: revision N went out 12 minutes ago
    fi
    prev=null
    [ "$revision" -gt 1 ] && prev=$((revision - 1))
    printf '{"replicas": %d, "ready": %d, "updated": %d, "available": %d, "revision": %d, ' \
        "$replicas" "$replicas" "$replicas" "$replicas" "$revision"
    printf '"previous_revision": %s, "last_rollout_age_s": %s, "rollout": "complete", ' "$prev" "$age"
    printf '"pods_not_ready": 0, "restarts_max": 0, "restarts_total": %d, "crashloop": 0, "oom": 0}\n' \
        "$restarts"
}

cmd_metrics() {
    [ $# -eq 4 ] || usage
    check_target "$1" "$2"
    if [ "$JSON" = 1 ]; then
        json_metrics "$@"
        return 0
    fi
    in_list "$3" "$METRICS" || die 2 "unknown metric '$3' (known: $(comma_list "$METRICS"))"
    metric=$3
    secs=$(since_seconds "$4")
    now=$(now_epoch)
    awk -v svc="$svc" -v env="$env" -v metric="$metric" -v now="$now" -v secs="$secs" \
        -v since="$4" "$AWK_LIB"'
    BEGIN {
        npts = 12; step = int(secs / npts); if (step < 1) step = 1
        t0 = now - now % step
        # checkout in prod is the demo incident: latency and errors climb
        incident = (svc == "checkout" && env == "prod")
        if (metric == "latency_p99_ms") { base = 120; spread = 60; fmt = "%.1f" }
        else if (metric == "error_rate") { base = 0.2; spread = 0.3; fmt = "%.2f%%" }
        else if (metric == "cpu") { base = 35; spread = 20; fmt = "%.1f%%" }
        else if (metric == "memory_mb") { base = 480; spread = 80; fmt = "%.0f" }
        else { base = 200; spread = 120; fmt = "%.0f" }
        printf "%s of %s in %s, last %s (step %ds)\n", metric, svc, env, since, step
        printf "%-22s %s\n", "time", "value"
        min = -1; max = 0
        for (k = npts - 1; k >= 0; k--) {
            t = t0 - k * step
            seed = mix(hash(svc "/" env "/" metric) + int(t / step))
            if (seed == 0) seed = 1
            rnd()
            v = base + rnd() * spread
            if (incident && k < 4) {
                if (metric == "latency_p99_ms") v = v * (6 - k)
                else if (metric == "error_rate") v = v * (12 - 2 * k)
                else if (metric == "cpu") v = v + 40 - 5 * k
            }
            printf "%-22s " fmt "\n", iso(t), v
            if (min < 0 || v < min) min = v
            if (v > max) max = v
            last = v
        }
        printf "min " fmt "  max " fmt "  last " fmt "\n", min, max, last
    }'
}

JSON=0
if [ "${1:-}" = --json ]; then
    JSON=1
    shift
fi
[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
restart) cmd_restart "$@" ;;
rollback) cmd_rollback "$@" ;;
scale) cmd_scale "$@" ;;
status) cmd_status "$@" ;;
logs) cmd_logs "$@" ;;
metrics) cmd_metrics "$@" ;;
-h | --help | help) usage ;;
*) die 64 "unknown command '$cmd' (known: restart, rollback, scale, status, logs, metrics)" ;;
esac
