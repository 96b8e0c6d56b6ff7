#!/usr/bin/env bash
# What observability costs: HTTP requests/s of one makiatto node serving a
# small page, with the access log off, on in JSON and on in the combined
# format, all in the same run; and, given a binary built from a commit
# before metrics existed (BASELINE_BIN), the counters' own cost. The node
# is pinned to CPU 0 and wrk to CPU 1; variants alternate within each
# round and the table shows medians over the rounds, then the ratios.
#
# Besides requests/s it prints the node's CPU time per request (user +
# system, every thread, from /proc/PID/stat). On a machine other work
# shares, requests/s follows the node's share of the CPU, which grows with
# its busy threads (the access log's writer is one), so CPU per request is
# the figure that says what a feature costs.
#
#   bench/metrics.sh                           # 10 s runs, 3 rounds
#   bench/metrics.sh -d 30 -r 5
#   MAKIATTO_BIN=path/to/makiatto bench/metrics.sh     # skip the cargo build
#   BASELINE_BIN=path/to/old/makiatto bench/metrics.sh # add the no-metrics anchor
#
# A baseline binary, e.g. from the commit before metrics landed:
#   git worktree add /tmp/before-metrics 8d6489e
#   (cd /tmp/before-metrics && cargo build --release --bin makiatto)
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/metrics.sh [-d SECONDS] [-c CONNECTIONS] [-w WARMUP_SECONDS] [-r ROUNDS]

  -d SECONDS       length of each measured wrk run (default 10)
  -c CONNECTIONS   concurrent keep-alive connections (default 50)
  -w SECONDS       unmeasured warm-up before each run (default 2)
  -r ROUNDS        rounds; variants alternate within each (default 3)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto` (CARGO_TARGET_DIR is respected);
BASELINE_BIN adds a run of that binary (no metrics, no access log) as the
anchor of the metrics ratio.
EOF
}

DURATION=10
CONNECTIONS=50
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

bench_tmpdir bench-metrics
SERVER_PID=""
stop_current() { stop_pid "$SERVER_PID"; }
on_exit stop_current

# --- the node ----------------------------------------------------------------

BIN=$(makiatto_bin)
BASELINE=${BASELINE_BIN:-}
[[ -z $BASELINE || -x $BASELINE ]] || die "BASELINE_BIN $BASELINE is not executable"

make_site() {
    mkdir -p "$TMP/site"
    {
        printf '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        printf '<title>Benchmark page</title>\n</head>\n<body>\n<h1>Benchmark page</h1>\n'
        for i in $(seq 1 24); do
            printf '<section id="s%d">\n<h2>Section %d</h2>\n<p>Paragraph %d of a small article.</p>\n</section>\n' "$i" "$i" "$i"
        done
        printf '</body>\n</html>\n'
    } >"$TMP/site/index.html"
}

# node.toml for a variant. Every variant runs the HTTP rate limiter with a
# rate no run reaches: the baseline commit predates the loopback whitelist,
# so without this it would answer 429 past 1000 requests/s, and with the
# whitelist emptied the current node does the same per-request work.
write_config() {
    local variant=$1 dir=$2
    {
        echo 'name = "bench"'
        printf '[limits.http]\nrequests_per_second = 10000000\nrequest_burst = 10000000\n'
        [[ $variant == baseline ]] || echo 'whitelist = []'
        case "$variant" in
            json) printf '[access_log]\nmode = "on"\nformat = "json"\nfile = "%s/access.log"\n' "$dir" ;;
            combined) printf '[access_log]\nmode = "on"\nformat = "combined"\nfile = "%s/access.log"\n' "$dir" ;;
        esac
    } >"$dir/node.toml"
}

# Starts a variant's node on CPU 0; sets SERVER_PID and SERVER_URL.
start_variant() {
    local variant=$1 dir=$TMP/$1 bin=$BIN port
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ $variant == baseline ]] && bin=$BASELINE
    write_config "$variant" "$dir"
    port=$(free_port)
    taskset -c 0 "$bin" dev --site "$TMP/site" --data "$dir/data" \
        --http "127.0.0.1:$port" --dns 127.0.0.1:0 --ssh 127.0.0.1:0 --config "$dir/node.toml" \
        >"$dir/log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port/
}

# CPU time the process has used, in clock ticks (user + system).
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# Runs wrk against URL (lib.sh's run_wrk); WRK_RPS and WRK_REQUESTS are 0
# when wrk failed or the node answered errors.
measure_wrk() {
    run_wrk "$1" "$2" --timeout 30s
    if [[ $WRK_ERRORS != - ]]; then
        log "wrk: $(cat "$TMP/wrk.out")"
        WRK_RPS=0 WRK_REQUESTS=0
    fi
}

# --- main --------------------------------------------------------------------

require_cpus 2
ensure_packages wrk curl util-linux iproute2
make_site

VARIANTS=()
[[ -n $BASELINE ]] && VARIANTS+=(baseline)
VARIANTS+=(off json combined)
declare -A RPS CPU LINES
HZ=$(getconf CLK_TCK)

for round in $(seq "$ROUNDS"); do
    for variant in "${VARIANTS[@]}"; do
        log "round $round/$ROUNDS: $variant"
        start_variant "$variant"
        if ! wait_http "$SERVER_URL" "$SERVER_PID" "$variant"; then
            tail -n 5 "$TMP/$variant/log" >&2 || true
            log "$variant: the node did not start; once more on another port"
            stop_pid "$SERVER_PID"
            start_variant "$variant"
            if ! wait_http "$SERVER_URL" "$SERVER_PID" "$variant"; then
                tail -n 20 "$TMP/$variant/log" >&2 || true
                die "$variant: the node did not start"
            fi
        fi
        ((WARMUP > 0)) && measure_wrk "$SERVER_URL" "$WARMUP"
        before=$(cpu_ticks "$SERVER_PID")
        measure_wrk "$SERVER_URL" "$DURATION"
        after=$(cpu_ticks "$SERVER_PID")
        RPS[$variant]+=" $WRK_RPS"
        CPU[$variant]+=" $(awk -v t=$((after - before)) -v hz="$HZ" -v n="$WRK_REQUESTS" \
            'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print 0 }')"
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        if [[ -f $TMP/$variant/access.log ]]; then
            LINES[$variant]=$(cat "$TMP/$variant"/access.log* | wc -l)
        fi
    done
done

printf '\n%-10s %12s %14s   %s\n' variant 'requests/s' 'CPU us/request' 'rounds (requests/s; CPU us/request)'
declare -A MED MEDCPU
for variant in "${VARIANTS[@]}"; do
    MED[$variant]=$(median "${RPS[$variant]}")
    MEDCPU[$variant]=$(median "${CPU[$variant]}")
    label=$variant
    case "$variant" in
        baseline) label="no-metrics" ;;
        off) label="log off" ;;
        json) label="log json" ;;
        combined) label="log clf" ;;
    esac
    printf '%-10s %12s %14s  %s;%s\n' "$label" "${MED[$variant]}" "${MEDCPU[$variant]}" "${RPS[$variant]}" "${CPU[$variant]}"
done
[[ -n ${LINES[json]:-} ]] && log "last json run wrote ${LINES[json]} lines"

echo
echo "                                   requests/s   CPU per request"
if [[ -n $BASELINE ]]; then
    echo "metrics on (log off) / no metrics:  $(ratio "${MED[off]}" "${MED[baseline]}")        $(ratio "${MEDCPU[off]}" "${MEDCPU[baseline]}")"
fi
echo "access log json / log off:          $(ratio "${MED[json]}" "${MED[off]}")        $(ratio "${MEDCPU[json]}" "${MEDCPU[off]}")"
echo "access log combined / log off:      $(ratio "${MED[combined]}" "${MED[off]}")        $(ratio "${MEDCPU[combined]}" "${MEDCPU[off]}")"
