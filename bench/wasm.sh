#!/usr/bin/env bash
# Edge function benchmark: one makiatto node serves a static file and the
# hello function (tests/wasm/hello.wasm) side by side; wrk measures each in
# turn on the same node in the same run. The node is pinned to CPU 0 and
# wrk to CPU 1. Prints requests/s and p99 latency per target (median over
# the rounds), the ratio function/static, and the per-request overhead of
# the function: 1/rps(function) - 1/rps(static) on the node's one core.
#
#   bench/wasm.sh                  # 10 s per run, 3 rounds
#   bench/wasm.sh -d 30 -r 5
#   MAKIATTO_BIN=path/to/makiatto bench/wasm.sh   # skip the cargo build
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/wasm.sh [-d SECONDS] [-c CONNECTIONS] [-w WARMUP_SECONDS] [-r ROUNDS]

  -d SECONDS       length of each measured wrk run (default 10)
  -c CONNECTIONS   concurrent keep-alive connections (default 100)
  -w SECONDS       unmeasured warm-up before each run (default 2)
  -r ROUNDS        rounds; targets alternate within each (default 3)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

DURATION=10
CONNECTIONS=100
WARMUP=2
ROUNDS=3
while getopts "d:c:w:r:h" opt; do
    case "$opt" in
        d) DURATION=$OPTARG ;;
        c) CONNECTIONS=$OPTARG ;;
        w) WARMUP=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
# Targets as "URL path|label".
TARGETS=("/hello.txt|static file" "/api/hello|hello function")

bench_tmpdir bench-wasm
SERVER_PID=""
stop_current() { stop_pid "$SERVER_PID"; }
on_exit stop_current

# The same bytes both ways: the function's answer is the static file's body.
make_site() {
    local dir=$TMP/site
    mkdir -p "$dir/api"
    cp "$REPO/tests/wasm/hello.wasm" "$dir/api/hello.wasm"
    printf 'hello from makiatto\n' >"$dir/hello.txt"
    printf '[[domain]]\nname = "localhost"\n\n[[domain.functions]]\npath = "api/hello.wasm"\nmethods = ["GET"]\n' \
        >"$dir/makiatto.toml"
}

start_makiatto() {
    local bin
    bin=$(makiatto_bin)
    local port
    port=$(free_port)
    taskset -c 0 "$bin" dev --site "$TMP/site" --data "$TMP/data" \
        --http "127.0.0.1:$port" --dns 127.0.0.1:0 --ssh 127.0.0.1:0 \
        >"$TMP/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port
    for _ in $(seq 600); do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/log" >&2; die "makiatto exited"; }
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "$SERVER_URL/api/hello" || true) == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "makiatto did not answer within 60 s"
}

# Milliseconds from a wrk latency figure such as 812.00us, 1.52ms or 2.01s.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

# Runs wrk on PATH after a warm-up; prints "RPS P99_MS".
measure() {
    local url=$SERVER_URL$1
    taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${WARMUP}s" "$url" >/dev/null 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || true
    taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" --latency "$url" >"$TMP/wrk.out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed: $(cat "$TMP/wrk.out")"
    WRK_PID=""
    if grep -q "Non-2xx" "$TMP/wrk.out"; then
        die "$1 answered errors: $(cat "$TMP/wrk.out")"
    fi
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.out")
    echo "$rps $(to_ms "$p99")"
}

require_cpus 2
ensure_packages wrk curl util-linux iproute2
make_site
start_makiatto
curl -sf "$SERVER_URL/api/hello" | cmp -s - "$TMP/site/hello.txt" ||
    die "the function does not answer with the static file's bytes"
log "node ready at $SERVER_URL; $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections"

declare -A RPS P99
for round in $(seq "$ROUNDS"); do
    for entry in "${TARGETS[@]}"; do
        IFS='|' read -r path label <<<"$entry"
        read -r rps p99 < <(measure "$path")
        log "round $round: $label: $rps req/s, p99 $p99 ms"
        RPS[$path]+="$rps "
        P99[$path]+="$p99 "
    done
done

printf '\n%-16s %12s %10s\n' "target" "requests/s" "p99 ms"
for entry in "${TARGETS[@]}"; do
    IFS='|' read -r path label <<<"$entry"
    printf '%-16s %12.0f %10.2f\n' "$label" "$(median <<<"${RPS[$path]}")" "$(median <<<"${P99[$path]}")"
done
static=$(median <<<"${RPS[/hello.txt]}")
function=$(median <<<"${RPS[/api/hello]}")
awk -v s="$static" -v f="$function" 'BEGIN {
    printf "\nratio function/static: %.2f\n", f / s
    printf "per-request overhead of the function: %.1f us of the node'"'"'s one core\n", (1 / f - 1 / s) * 1e6
}'
