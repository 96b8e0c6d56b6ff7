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
# Each anchor is configured as its experts would for static files: nginx
# with one worker, sendfile and open_file_cache (open descriptors and stat
# results cached, so a request costs no open/stat); Caddy with its
# file_server and logging discarded. Idle RSS is VmRSS once the server has
# answered every file once; peak RSS is VmHWM, reset (via
# /proc/PID/clear_refs) before each measured run; peak anon is the highest
# RssAnon sampled every 0.2 s during the run: the heap and stacks the server
# holds of its own, without the file pages it maps (its binary and
# libraries; makiatto also maps files over 256 KiB to serve them, nginx
# sends them with sendfile, so their page cache pages count in makiatto's
# RSS and not in nginx's). For nginx all are the master and its single
# worker added together.
#
# MAKIATTO_CONFIG=path/to/node.toml runs makiatto with that node config
# (for example to try the memory settings of README's [http] table).
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

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# --- temp dir, processes, cleanup --------------------------------------------

bench_tmpdir bench
# The server under test (servers run one at a time).
SERVER_PID=""
stop_current() { stop_pid "$SERVER_PID"; }
on_exit stop_current

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
    local port config=()
    port=$(free_port)
    rm -rf "$TMP/makiatto"
    mkdir -p "$TMP/makiatto"
    [[ -z ${MAKIATTO_CONFIG:-} ]] || config=(--config "$MAKIATTO_CONFIG")
    taskset -c 0 "$MAKIATTO" dev --site "$TMP/site" --data "$TMP/makiatto/data" \
        --http "127.0.0.1:$port" --dns 127.0.0.1:0 --ssh 127.0.0.1:0 "${config[@]}" \
        >"$TMP/makiatto/log" 2>&1 </dev/null &
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
    # What nginx's documentation recommends for serving static files: keep
    # descriptors, sizes and mtimes of served files (and failed lookups)
    # instead of opening and stat()ing each file per request.
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
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

# --- main ----------------------------------------------------------------------

require_cpus 2
PACKAGES=(wrk curl util-linux iproute2 procps)
for server in "${SERVER_LIST[@]}"; do
    [[ $server == makiatto ]] || PACKAGES+=("$server")
done
ensure_packages "${PACKAGES[@]}" -- nginx caddy
[[ " ${SERVER_LIST[*]} " != *" makiatto "* ]] || MAKIATTO=$(makiatto_bin)
make_site

declare -A RPS MIB RSS ANON IDLE ERR
FAILED=()

# Rounds interleave the servers so a burst of other load on the machine
# hits every server alike, and the median discards the odd round.
for round in $(seq "$ROUNDS"); do
    for server in "${SERVER_LIST[@]}"; do
        [[ " ${FAILED[*]} " == *" $server "* ]] && continue
        log "round $round/$ROUNDS: starting $server"
        "start_$server"
        pid=$SERVER_PID
        if ! wait_http "$SERVER_URL/" "$pid" "$server" || ! verify_files "$server"; then
            log "$server failed to start or serve; its log:"
            tail -n 20 "$TMP/$server/log" "$TMP/$server/error.log" >&2 2>/dev/null || true
            FAILED+=("$server")
            stop_pid "$pid"
            SERVER_PID=""
            continue
        fi
        IDLE[$server]+=" $(rss_kib "$pid")"
        for entry in "${FILES[@]}"; do
            IFS='|' read -r path _ label <<<"$entry"
            log "$server $label: warm-up ${WARMUP}s, run ${DURATION}s"
            ((WARMUP > 0)) && run_wrk "$SERVER_URL$path" "$WARMUP" --timeout 60s
            reset_peak_rss "$pid"
            start_anon_sampler "$pid"
            run_wrk "$SERVER_URL$path" "$DURATION" --timeout 60s
            ANON[$server,$label]+=" $(stop_anon_sampler)"
            RPS[$server,$label]+=" $WRK_RPS"
            MIB[$server,$label]+=" $WRK_MIB"
            [[ $WRK_ERRORS == - ]] || ERR[$server,$label]+="${ERR[$server,$label]:+,}$WRK_ERRORS"
            RSS[$server,$label]+=" $(peak_rss_kib "$pid")"
        done
        stop_pid "$pid"
        SERVER_PID=""
    done
done

for key in "${!RPS[@]}"; do
    RPS[$key]=$(median "${RPS[$key]}")
    MIB[$key]=$(median "${MIB[$key]}")
    RSS[$key]=$(tr ' ' '\n' <<<"${RSS[$key]}" | grep . | sort -n | tail -n 1)
    ANON[$key]=$(tr ' ' '\n' <<<"${ANON[$key]}" | grep . | sort -n | tail -n 1)
    ERR[$key]=${ERR[$key]:--}
done
for key in "${!IDLE[@]}"; do
    IDLE[$key]=$(median "${IDLE[$key]}")
done

printf '\nmedian of %d rounds of %d s, %d connections, server on CPU 0, wrk on CPU 1; peak RSS is the highest seen\n\n' "$ROUNDS" "$DURATION" "$CONNECTIONS"
printf '%-9s %-11s %12s %10s %14s %15s  %s\n' server file "requests/s" "MiB/s" "peak RSS MiB" "peak anon MiB" errors
for server in "${SERVER_LIST[@]}"; do
    for entry in "${FILES[@]}"; do
        IFS='|' read -r _ _ label <<<"$entry"
        if [[ -z ${RPS[$server,$label]:-} ]]; then
            printf '%-9s %-11s %12s\n' "$server" "$label" "failed"
            continue
        fi
        printf '%-9s %-11s %12s %10s %14s %15s  %s\n' "$server" "$label" \
            "${RPS[$server,$label]}" "${MIB[$server,$label]}" \
            "$(kib_to_mib "${RSS[$server,$label]}")" "$(kib_to_mib "${ANON[$server,$label]}")" \
            "${ERR[$server,$label]}"
    done
done

printf '\nRSS once serving (every file fetched once), before any load; median\n\n'
printf '%-9s %14s\n' server "idle RSS MiB"
for server in "${SERVER_LIST[@]}"; do
    [[ -n ${IDLE[$server]:-} ]] && printf '%-9s %14s\n' "$server" "$(kib_to_mib "${IDLE[$server]}")"
done

if [[ -n ${RPS[makiatto,index.html]:-} ]]; then
    printf '\nmakiatto relative to each anchor (>1 means makiatto is higher)\n\n'
    printf '%-11s %16s %16s %16s %16s %16s\n' file "req/s vs nginx" "req/s vs caddy" "RSS vs nginx" "RSS vs caddy" "anon vs nginx"
    for entry in "${FILES[@]}"; do
        IFS='|' read -r _ _ label <<<"$entry"
        printf '%-11s %16s %16s %16s %16s %16s\n' "$label" \
            "$(ratio "${RPS[makiatto,$label]:-}" "${RPS[nginx,$label]:-}")" \
            "$(ratio "${RPS[makiatto,$label]:-}" "${RPS[caddy,$label]:-}")" \
            "$(ratio "${RSS[makiatto,$label]:-}" "${RSS[nginx,$label]:-}")" \
            "$(ratio "${RSS[makiatto,$label]:-}" "${RSS[caddy,$label]:-}")" \
            "$(ratio "${ANON[makiatto,$label]:-}" "${ANON[nginx,$label]:-}")"
    done
    printf '%-11s %16s %16s %16s %16s\n' "idle" "" "" \
        "$(ratio "${IDLE[makiatto]:-}" "${IDLE[nginx]:-}")" \
        "$(ratio "${IDLE[makiatto]:-}" "${IDLE[caddy]:-}")"
fi

if ((${#FAILED[@]})); then
    die "failed: ${FAILED[*]}"
fi
