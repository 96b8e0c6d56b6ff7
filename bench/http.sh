#!/usr/bin/env bash
# Side-by-side HTTP benchmark: makiatto, nginx and Caddy serve the same files
# on loopback, one server at a time, each pinned to CPU 0 with wrk pinned to
# CPU 1. Prints requests/s, throughput and peak RSS per server and file, then
# makiatto's ratios to each anchor.
#
#   bench/http.sh                       # all three servers, 10 s per run
#   bench/http.sh -d 30                 # longer runs
#   bench/http.sh -s nginx,caddy        # only some servers
#   MAKIATTO_BIN=path/to/makiatto bench/http.sh   # skip the cargo build
#
# Requests carry no Accept-Encoding, so every server sends the raw bytes.
# Peak RSS is VmHWM, reset (via /proc/PID/clear_refs) before each measured
# run; for nginx it is the master and its single worker added together.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/http.sh [-d SECONDS] [-c CONNECTIONS] [-w WARMUP_SECONDS] [-r ROUNDS] [-s SERVERS]

  -d SECONDS       length of each measured wrk run (default 10)
  -c CONNECTIONS   concurrent keep-alive connections (default 100)
  -w SECONDS       unmeasured warm-up before each run (default 2)
  -r ROUNDS        rounds; servers alternate within each, and the table shows
                   each figure's median over the rounds (default 3)
  -s SERVERS       comma-separated subset of makiatto,nginx,caddy (default all)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

DURATION=10
CONNECTIONS=100
WARMUP=2
ROUNDS=3
SERVERS=makiatto,nginx,caddy
while getopts "d:c:w:r:s:h" opt; do
    case "$opt" in
        d) DURATION=$OPTARG ;;
        c) CONNECTIONS=$OPTARG ;;
        w) WARMUP=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        s) SERVERS=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
for server in "${SERVER_LIST[@]}"; do
    case "$server" in
        makiatto | nginx | caddy) ;;
        *) echo "bench: unknown server '$server' (want makiatto, nginx or caddy)" >&2; exit 2 ;;
    esac
done

# Files served, as "URL path|file name|label". "/" must resolve to index.html
# on every server.
FILES=(
    "/|index.html|index.html"
    "/1k.bin|1k.bin|1 KiB"
    "/100k.bin|100k.bin|100 KiB"
    "/10m.bin|10m.bin|10 MiB"
)

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- dependencies ------------------------------------------------------------

ensure_packages() {
    local want=(wrk curl util-linux iproute2 procps)
    local server
    for server in "${SERVER_LIST[@]}"; do
        case "$server" in
            nginx) want+=(nginx) ;;
            caddy) want+=(caddy) ;;
        esac
    done
    local missing=() pkg
    for pkg in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if ((EUID == 0)); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq </dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
        # Installing nginx or caddy may start its system service; this script
        # runs its own instances, so stop the ones it just caused to start.
        for pkg in nginx caddy; do
            if [[ " ${missing[*]} " == *" $pkg "* ]] && command -v systemctl >/dev/null; then
                systemctl disable --now "$pkg" >/dev/null 2>&1 || true
            fi
        done
    else
        echo "sudo apt-get install -y --no-install-recommends ${missing[*]}"
        die "missing packages; install them with the line above"
    fi
}

# --- temp dir, processes, cleanup --------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/makiatto-bench.XXXXXX")
# The server under test (servers run one at a time) and the running wrk.
SERVER_PID=""
WRK_PID=""

cleanup() {
    if [[ -n $WRK_PID ]]; then
        kill "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    if [[ -n $SERVER_PID ]]; then
        stop_server "$SERVER_PID"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A loopback port nobody listens on. The window between this check and the
# server's bind is small and only other local processes could take it.
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 30000))
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

# Waits until URL answers 200, or the server PID dies, or 60 s pass.
wait_ready() {
    local url=$1 pid=$2 name=$3
    for _ in $(seq 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local status=0
            wait "$pid" || status=$?
            log "$name exited with status $status before serving"
            return 1
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "$name did not answer $url within 60 s"
    return 1
}

stop_server() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The server's process and its descendants (nginx's worker).
process_tree() {
    local pid=$1 child
    echo "$pid"
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        process_tree "$child"
    done
}

reset_peak_rss() {
    local pid
    for pid in $(process_tree "$1"); do
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    done
}

# Sum of VmHWM over the process tree, in KiB.
peak_rss_kib() {
    local pid total=0 kib
    for pid in $(process_tree "$1"); do
        kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

# --- the files ---------------------------------------------------------------

make_site() {
    local dir=$TMP/site
    mkdir -p "$dir"
    head -c 1024 /dev/urandom >"$dir/1k.bin"
    head -c $((100 * 1024)) /dev/urandom >"$dir/100k.bin"
    head -c $((10 * 1024 * 1024)) /dev/urandom >"$dir/10m.bin"
    {
        printf '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        printf '<title>Benchmark page</title>\n</head>\n<body>\n<h1>Benchmark page</h1>\n'
        local i
        for i in $(seq 1 24); do
            printf '<section id="s%d">\n<h2>Section %d</h2>\n' "$i" "$i"
            printf '<p>Paragraph %d of a page sized like a small article, so the index is a few kilobytes of ordinary markup.</p>\n' "$i"
            printf '</section>\n'
        done
        printf '</body>\n</html>\n'
    } >"$dir/index.html"
}

# --- servers: each start_NAME sets SERVER_PID and SERVER_URL -----------------

start_makiatto() {
    local bin=${MAKIATTO_BIN:-}
    if [[ -z $bin ]]; then
        log "building makiatto (release)"
        (cd "$REPO" && cargo build --release --quiet --bin makiatto) >&2
        bin=${CARGO_TARGET_DIR:-$REPO/target}/release/makiatto
        [[ $bin == /* ]] || bin=$REPO/$bin
    fi
    [[ -x $bin ]] || die "no makiatto binary at $bin"
    local port
    port=$(free_port)
    mkdir -p "$TMP/makiatto"
    taskset -c 0 "$bin" dev --site "$TMP/site" --data "$TMP/makiatto/data" \
        --http "127.0.0.1:$port" >"$TMP/makiatto/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port
}

start_nginx() {
    local port dir=$TMP/nginx user_line=""
    port=$(free_port)
    mkdir -p "$dir"
    # A root master would hand the worker to "nobody", who cannot read the
    # private temp dir; keep the worker as the invoking user.
    ((EUID == 0)) && user_line="user root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        root $TMP/site;
        index index.html;
    }
}
EOF
    taskset -c 0 nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port
}

start_caddy() {
    local port dir=$TMP/caddy
    port=$(free_port)
    mkdir -p "$dir/home"
    cat >"$dir/Caddyfile" <<EOF
{
    admin off
    auto_https off
    storage file_system $dir/data
    log {
        output discard
    }
}

http://127.0.0.1:$port {
    bind 127.0.0.1
    root * $TMP/site
    file_server
}
EOF
    # HOME and XDG_* keep Caddy's config and data out of the user's home.
    HOME=$dir/home XDG_CONFIG_HOME=$dir/home XDG_DATA_HOME=$dir/home \
        taskset -c 0 caddy run --config "$dir/Caddyfile" --adapter caddyfile \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port
}

# Every file must come back byte for byte, uncompressed, before measuring.
verify_files() {
    local name=$1 entry path file
    for entry in "${FILES[@]}"; do
        IFS='|' read -r path file _ <<<"$entry"
        if ! curl -sf "$SERVER_URL$path" -o "$TMP/fetched" ||
            ! cmp -s "$TMP/fetched" "$TMP/site/$file"; then
            log "$name: $path did not return the bytes of $file"
            return 1
        fi
    done
}

# --- wrk ---------------------------------------------------------------------

# Converts wrk's "12.34MB"-style transfer rate to MiB (wrk's units are binary).
to_mib() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "B") ? 1 / 1048576 : (u == "KB") ? 1 / 1024 : (u == "MB") ? 1 : (u == "GB") ? 1024 : (u == "TB") ? 1048576 : -1
        if (f < 0) { print "?"; exit }
        printf "%.1f", n * f
    }'
}

# Runs wrk against URL and sets WRK_RPS, WRK_MIB and WRK_ERRORS. The long
# timeout keeps 10 MiB responses shared by 100 connections from counting as
# errors. wrk runs in the background so a signal reaches the trap at once.
run_wrk() {
    local url=$1 duration=$2 out=$TMP/wrk.out status=0
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${duration}s" --timeout 60s "$url" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || status=$?
    WRK_PID=""
    WRK_RPS=0 WRK_MIB=0 WRK_ERRORS=-
    if ((status != 0)); then
        log "wrk failed: $(cat "$out")"
        WRK_ERRORS=wrk-failed
        return
    fi
    local errors=""
    WRK_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    WRK_MIB=$(to_mib "$(awk '/^Transfer\/sec:/ {print $2}' "$out")")
    if grep -q 'Non-2xx' "$out"; then
        errors+="non-2xx:$(awk '/Non-2xx/ {print $NF}' "$out")"
    fi
    if grep -q 'Socket errors' "$out"; then
        errors+="${errors:+,}socket:$(grep 'Socket errors' "$out" | sed 's/.*errors: //; s/ //g')"
    fi
    WRK_ERRORS=${errors:--}
}

# --- main ----------------------------------------------------------------------

(($(nproc) >= 2)) || die "needs at least 2 CPUs (server on CPU 0, wrk on CPU 1)"
ensure_packages
make_site

declare -A RPS MIB RSS ERR
FAILED=()

# Middle value of whitespace-separated numbers (the lower middle for an
# even count).
median() {
    tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# Rounds interleave the servers so a burst of other load on the machine
# hits every server alike, and the median discards the odd round.
for round in $(seq "$ROUNDS"); do
    for server in "${SERVER_LIST[@]}"; do
        [[ " ${FAILED[*]} " == *" $server "* ]] && continue
        log "round $round/$ROUNDS: starting $server"
        "start_$server"
        pid=$SERVER_PID
        if ! wait_ready "$SERVER_URL/" "$pid" "$server" || ! verify_files "$server"; then
            log "$server failed to start or serve; its log:"
            tail -n 20 "$TMP/$server/log" "$TMP/$server/error.log" >&2 2>/dev/null || true
            FAILED+=("$server")
            stop_server "$pid"
            SERVER_PID=""
            continue
        fi
        for entry in "${FILES[@]}"; do
            IFS='|' read -r path _ label <<<"$entry"
            log "$server $label: warm-up ${WARMUP}s, run ${DURATION}s"
            ((WARMUP > 0)) && run_wrk "$SERVER_URL$path" "$WARMUP"
            reset_peak_rss "$pid"
            run_wrk "$SERVER_URL$path" "$DURATION"
            RPS[$server,$label]+=" $WRK_RPS"
            MIB[$server,$label]+=" $WRK_MIB"
            [[ $WRK_ERRORS == - ]] || ERR[$server,$label]+="${ERR[$server,$label]:+,}$WRK_ERRORS"
            RSS[$server,$label]+=" $(peak_rss_kib "$pid")"
        done
        stop_server "$pid"
        SERVER_PID=""
    done
done

for key in "${!RPS[@]}"; do
    RPS[$key]=$(median "${RPS[$key]}")
    MIB[$key]=$(median "${MIB[$key]}")
    RSS[$key]=$(tr ' ' '\n' <<<"${RSS[$key]}" | grep . | sort -n | tail -n 1)
    ERR[$key]=${ERR[$key]:--}
done

printf '\nmedian of %d rounds of %d s, %d connections, server on CPU 0, wrk on CPU 1; peak RSS is the highest seen\n\n' "$ROUNDS" "$DURATION" "$CONNECTIONS"
printf '%-9s %-11s %12s %10s %14s  %s\n' server file "requests/s" "MiB/s" "peak RSS MiB" errors
for server in "${SERVER_LIST[@]}"; do
    for entry in "${FILES[@]}"; do
        IFS='|' read -r _ _ label <<<"$entry"
        if [[ -z ${RPS[$server,$label]:-} ]]; then
            printf '%-9s %-11s %12s\n' "$server" "$label" "failed"
            continue
        fi
        printf '%-9s %-11s %12s %10s %14s  %s\n' "$server" "$label" \
            "${RPS[$server,$label]}" "${MIB[$server,$label]}" \
            "$(awk -v k="${RSS[$server,$label]}" 'BEGIN {printf "%.1f", k / 1024}')" \
            "${ERR[$server,$label]}"
    done
done

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'
}
if [[ -n ${RPS[makiatto,index.html]:-} ]]; then
    printf '\nmakiatto relative to each anchor (>1 means makiatto is higher)\n\n'
    printf '%-11s %16s %16s %16s %16s\n' file "req/s vs nginx" "req/s vs caddy" "RSS vs nginx" "RSS vs caddy"
    for entry in "${FILES[@]}"; do
        IFS='|' read -r _ _ label <<<"$entry"
        printf '%-11s %16s %16s %16s %16s\n' "$label" \
            "$(ratio "${RPS[makiatto,$label]:-}" "${RPS[nginx,$label]:-}")" \
            "$(ratio "${RPS[makiatto,$label]:-}" "${RPS[caddy,$label]:-}")" \
            "$(ratio "${RSS[makiatto,$label]:-}" "${RSS[nginx,$label]:-}")" \
            "$(ratio "${RSS[makiatto,$label]:-}" "${RSS[caddy,$label]:-}")"
    done
fi

if ((${#FAILED[@]})); then
    die "failed: ${FAILED[*]}"
fi
