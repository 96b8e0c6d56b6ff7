#!/usr/bin/env bash
# Side-by-side HTTPS benchmark: makiatto, nginx and Caddy serve the same
# 1 KiB file over TLS 1.3 with the same ECDSA P-256 certificate on
# loopback, one server at a time, each pinned to CPU 0 with the clients
# pinned to CPU 1. Prints per server, then makiatto's ratios to each anchor:
#
#   keep-alive     requests/s over 100 kept-alive connections (wrk): the
#                  cost of TLS records once the handshakes are done.
#   new conn/s     connections/s when every request opens a new TCP and TLS
#                  connection (wrk with `Connection: close`). wrk keeps the
#                  last session ticket its connection received and offers
#                  it on the next connect, as a returning browser does
#                  (checked with nginx's $ssl_session_reused: all but the
#                  first connection of each of wrk's slots resumed), so
#                  with a server that resumes this is the rate of resumed
#                  TLS 1.3 handshakes (PSK with ECDHE), and with one that
#                  does not, of full ones. That is the figure that counts for
#                  visitors: most new connections come from someone who was
#                  here a moment ago.
#   full hs/s      full handshakes/s with no resumption offered (`openssl
#                  s_time -new`, several clients in parallel on CPU 1; it
#                  sends no SNI, so each server uses its default certificate,
#                  the benchmark's one). The
#                  clients verify the server's signature, which costs them
#                  more than signing costs the server, so this figure can be
#                  limited by CPU 1 and is printed for reference only.
#   resumes        whether `openssl s_client -sess_out`/`-sess_in` resumes a
#                  session with the server (checked once per server).
#
# Each server runs TLS as its experts would by default, resumption
# included: nginx with one worker, sendfile and open_file_cache, TLS 1.3
# only, session tickets on (nginx's default, with a key made at start) and
# no shared session cache (its default); Caddy with its defaults (Go's TLS
# stack: session tickets with keys it rotates); makiatto with its defaults.
#
#   bench/https.sh                      # all three servers, 10 s per run
#   bench/https.sh -d 3 -r 1            # a quick look
#   bench/https.sh -s makiatto,nginx    # only some servers
#   MAKIATTO_BIN=path/to/makiatto bench/https.sh   # skip the cargo build
#
# makiatto gets the certificate the way a node stores one from its CA: the
# script starts it once to create its store, then writes the certificate
# into the store's `certificates` table with sqlite3 before the runs.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/https.sh [-d SECONDS] [-c CONNECTIONS] [-w WARMUP_SECONDS] [-r ROUNDS] [-p CLIENTS] [-s SERVERS]

  -d SECONDS       length of each measured run (default 10)
  -c CONNECTIONS   concurrent wrk connections (default 100)
  -w SECONDS       unmeasured warm-up before each wrk run (default 2)
  -r ROUNDS        rounds; servers alternate within each, and the table shows
                   each figure's median over the rounds (default 3)
  -p CLIENTS       parallel `openssl s_time -new` clients (default 4)
  -s SERVERS       comma-separated subset of makiatto,nginx,caddy (default all)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

DURATION=10
CONNECTIONS=100
WARMUP=2
ROUNDS=3
CLIENTS=4
SERVERS=makiatto,nginx,caddy
while getopts "d:c:w:r:p:s:h" opt; do
    case "$opt" in
        d) DURATION=$OPTARG ;;
        c) CONNECTIONS=$OPTARG ;;
        w) WARMUP=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        p) CLIENTS=$OPTARG ;;
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

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# The name every server has the certificate for; it resolves to 127.0.0.1
# (wrk and s_time send it as SNI).
HOST=localhost
FILE=/1k.bin

bench_tmpdir https-bench
SERVER_PID=""
stop_current() { stop_pid "$SERVER_PID"; }
on_exit stop_current

# --- the certificate and the files --------------------------------------------

make_certificate() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 30 \
        -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" 2>/dev/null
    # PKCS#8, which every server reads.
    openssl pkey -in "$TMP/key.pem" -out "$TMP/key8.pem"
    mv "$TMP/key8.pem" "$TMP/key.pem"
    FINGERPRINT=$(openssl x509 -in "$TMP/cert.pem" -noout -fingerprint -sha256)
}

make_site() {
    mkdir -p "$TMP/site"
    head -c 1024 /dev/urandom >"$TMP/site/1k.bin"
    printf '<!doctype html><title>bench</title><p>index</p>\n' >"$TMP/site/index.html"
}

# --- servers: each start_NAME sets SERVER_PID and SERVER_URL -----------------

MAKIATTO_DATA=""

# makiatto's data dir with the certificate in its store, made once: a first
# start creates the store, then the row goes in while the node is stopped.
prepare_makiatto() {
    local dir=$TMP/makiatto-template port now_ms
    mkdir -p "$dir"
    port=$(free_port)
    taskset -c 0 "$MAKIATTO" dev --site "$TMP/site" --data "$dir/data" \
        --http "127.0.0.1:$port" --dns 127.0.0.1:0 --ssh 127.0.0.1:0 \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    wait_http "http://127.0.0.1:$port/" "$SERVER_PID" makiatto || die "makiatto did not start: $(tail -n 20 "$dir/log")"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    local db
    db=$(find "$dir/data" -name 'state.sqlite' | head -n 1)
    [[ -n $db ]] || die "no state.sqlite under $dir/data"
    now_ms=$(($(date +%s) * 1000))
    sqlite3 "$db" "INSERT INTO certificates (domain, names, chain_pem, key_pem, not_before_ms,
          not_after_ms, directory, issued_by, hlc, origin, deleted)
        VALUES ('$HOST', '$HOST', CAST(readfile('$TMP/cert.pem') AS TEXT), CAST(readfile('$TMP/key.pem') AS TEXT),
          $((now_ms - 86400000)), $((now_ms + 29 * 86400000)), 'bench', 'bench', 1, 'bench', 0)"
    MAKIATTO_DATA=$dir/data
}

start_makiatto() {
    local port dir=$TMP/makiatto
    port=$(free_port)
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -a "$MAKIATTO_DATA" "$dir/data"
    taskset -c 0 "$MAKIATTO" dev --site "$TMP/site" --data "$dir/data" \
        --http "127.0.0.1:$(free_port)" --https "127.0.0.1:$port" \
        --dns 127.0.0.1:0 --ssh 127.0.0.1:0 \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_PORT=$port
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
    # As nginx's documentation advises for static files: no open/stat per
    # request.
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
        listen 127.0.0.1:$port ssl http2;
        server_name $HOST;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3;
        # Resumption as nginx defaults: ssl_session_tickets on, keys made at
        # start, no ssl_session_cache.
        root $TMP/site;
        index index.html;
    }
}
EOF
    taskset -c 0 nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_PORT=$port
}

start_caddy() {
    local port dir=$TMP/caddy
    port=$(free_port)
    mkdir -p "$dir/home"
    cat >"$dir/Caddyfile" <<EOF
{
    admin off
    auto_https disable_redirects
    # openssl s_time sends no SNI; without this Caddy has no certificate
    # for such a client (nginx and makiatto answer with their only one).
    default_sni $HOST
    storage file_system $dir/data
    log {
        output discard
    }
}

https://$HOST:$port {
    bind 127.0.0.1
    tls $TMP/cert.pem $TMP/key.pem {
        protocols tls1.3
    }
    root * $TMP/site
    file_server
}
EOF
    # HOME and XDG_* keep Caddy's config and data out of the user's home.
    HOME=$dir/home XDG_CONFIG_HOME=$dir/home XDG_DATA_HOME=$dir/home \
        taskset -c 0 caddy run --config "$dir/Caddyfile" --adapter caddyfile \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_PORT=$port
}

# The server must send our certificate over TLS 1.3 and the file's bytes.
verify_server() {
    local name=$1 port=$2 out
    out=$(openssl s_client -connect "127.0.0.1:$port" -servername "$HOST" </dev/null 2>/dev/null) || true
    if [[ $(openssl x509 -noout -fingerprint -sha256 <<<"$out" 2>/dev/null) != "$FINGERPRINT" ]]; then
        log "$name: not the benchmark's certificate"
        return 1
    fi
    if ! grep -q 'TLSv1.3' <<<"$out"; then
        log "$name: did not negotiate TLS 1.3"
        return 1
    fi
    curl -sf --cacert "$TMP/cert.pem" "https://$HOST:$port$FILE" -o "$TMP/fetched" &&
        cmp -s "$TMP/fetched" "$TMP/site$FILE" || {
        log "$name: $FILE did not return its bytes"
        return 1
    }
}

# "yes" when a session saved from one connection resumes on the next.
resumes() {
    local port=$1
    rm -f "$TMP/session.pem"
    # -ign_eof and a request make s_client read the tickets TLS 1.3 sends
    # after the handshake before it saves the session.
    printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST" |
        openssl s_client -connect "127.0.0.1:$port" -servername "$HOST" -ign_eof \
            -sess_out "$TMP/session.pem" >/dev/null 2>&1 || true
    [[ -s $TMP/session.pem ]] || { echo no; return; }
    if printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST" |
        openssl s_client -connect "127.0.0.1:$port" -servername "$HOST" -ign_eof \
            -sess_in "$TMP/session.pem" 2>/dev/null | grep -q '^Reused'; then
        echo yes
    else
        echo no
    fi
}

# Full handshakes/s: CLIENTS `openssl s_time -new` processes on CPU 1 for
# DURATION seconds, each fetching FILE once per connection. Prints the sum
# of their connections divided by the seconds.
full_handshakes() {
    local port=$1 i pids=() total=0 n
    for i in $(seq "$CLIENTS"); do
        taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$DURATION" \
            -www "$FILE" >"$TMP/s_time.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    for i in $(seq "$CLIENTS"); do
        n=$(awk '/connections in .* real seconds/ {print $1; exit}' "$TMP/s_time.$i")
        total=$((total + ${n:-0}))
    done
    awk -v n="$total" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}'
}

# --- main ----------------------------------------------------------------------

require_cpus 2
PACKAGES=(wrk curl openssl sqlite3 util-linux iproute2 procps)
for server in "${SERVER_LIST[@]}"; do
    [[ $server == makiatto ]] || PACKAGES+=("$server")
done
ensure_packages "${PACKAGES[@]}" -- nginx caddy
make_certificate
make_site
if [[ " ${SERVER_LIST[*]} " == *" makiatto "* ]]; then
    MAKIATTO=$(makiatto_bin)
    prepare_makiatto
fi

declare -A KEEP NEW FULL RESUMES ERR
FAILED=()
for round in $(seq "$ROUNDS"); do
    for server in "${SERVER_LIST[@]}"; do
        [[ " ${FAILED[*]} " == *" $server "* ]] && continue
        log "round $round/$ROUNDS: starting $server"
        "start_$server"
        pid=$SERVER_PID port=$SERVER_PORT
        url=https://$HOST:$port$FILE
        if ! wait_http "$url" "$pid" "$server" --cacert "$TMP/cert.pem" ||
            ! verify_server "$server" "$port"; then
            log "$server failed to start or serve; its log:"
            tail -n 20 "$TMP/$server/log" "$TMP/$server/error.log" >&2 2>/dev/null || true
            FAILED+=("$server")
            stop_pid "$pid"
            SERVER_PID=""
            continue
        fi
        [[ -n ${RESUMES[$server]:-} ]] || RESUMES[$server]=$(resumes "$port")

        log "$server keep-alive: warm-up ${WARMUP}s, run ${DURATION}s"
        ((WARMUP > 0)) && run_wrk "$url" "$WARMUP"
        run_wrk "$url" "$DURATION"
        KEEP[$server]+=" $WRK_RPS"
        [[ $WRK_ERRORS == - ]] || ERR[$server]+="${ERR[$server]:+,}keep-alive:$WRK_ERRORS"

        log "$server new connections: warm-up ${WARMUP}s, run ${DURATION}s"
        ((WARMUP > 0)) && run_wrk "$url" "$WARMUP" -H "Connection: close"
        run_wrk "$url" "$DURATION" -H "Connection: close"
        NEW[$server]+=" $WRK_RPS"
        # Every connection is closed by design; only other errors count.
        case "$WRK_ERRORS" in
            - | socket:*) ;;
            *) ERR[$server]+="${ERR[$server]:+,}new:$WRK_ERRORS" ;;
        esac

        log "$server full handshakes: ${CLIENTS} s_time clients, ${DURATION}s"
        FULL[$server]+=" $(full_handshakes "$port")"

        stop_pid "$pid"
        SERVER_PID=""
    done
done

printf '\nmedian of %d rounds of %d s; server on CPU 0, clients on CPU 1; TLS 1.3, ECDSA P-256, %s\n' \
    "$ROUNDS" "$DURATION" "$FILE (1 KiB)"
printf 'keep-alive and new conn/s: wrk, %d connections; full hs/s: %d openssl s_time -new clients\n' \
    "$CONNECTIONS" "$CLIENTS"
printf 'load: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %12s %12s %12s %8s  %s\n' server "keep-alive" "new conn/s" "full hs/s" resumes errors
declare -A MED_KEEP MED_NEW MED_FULL
for server in "${SERVER_LIST[@]}"; do
    if [[ -z ${KEEP[$server]:-} ]]; then
        printf '%-9s %12s\n' "$server" failed
        continue
    fi
    MED_KEEP[$server]=$(median "${KEEP[$server]}")
    MED_NEW[$server]=$(median "${NEW[$server]}")
    MED_FULL[$server]=$(median "${FULL[$server]}")
    printf '%-9s %12.0f %12.0f %12.0f %8s  %s\n' "$server" "${MED_KEEP[$server]}" \
        "${MED_NEW[$server]}" "${MED_FULL[$server]}" "${RESUMES[$server]}" "${ERR[$server]:--}"
done

if [[ -n ${MED_KEEP[makiatto]:-} ]]; then
    printf '\nmakiatto relative to each anchor (>1 means makiatto is faster)\n\n'
    printf '%-8s %12s %12s %12s\n' anchor "keep-alive" "new conn/s" "full hs/s"
    for anchor in nginx caddy; do
        [[ -n ${MED_KEEP[$anchor]:-} ]] || continue
        printf '%-8s %12s %12s %12s\n' "$anchor" \
            "$(ratio "${MED_KEEP[makiatto]}" "${MED_KEEP[$anchor]}")" \
            "$(ratio "${MED_NEW[makiatto]}" "${MED_NEW[$anchor]}")" \
            "$(ratio "${MED_FULL[makiatto]}" "${MED_FULL[$anchor]}")"
    done
fi

if ((${#FAILED[@]})); then
    die "failed: ${FAILED[*]}"
fi
