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

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ensure_packages() {
    local missing=() pkg
    for pkg in wrk curl util-linux iproute2; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if ((EUID == 0)); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq </dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    else
        echo "sudo apt-get install -y --no-install-recommends ${missing[*]}"
        die "missing packages; install them with the line above"
    fi
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/makiatto-bench-metrics.XXXXXX")
SERVER_PID=""
WRK_PID=""

stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

cleanup() {
    if [[ -n $WRK_PID ]]; then
        kill "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    [[ -z $SERVER_PID ]] || stop_server "$SERVER_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Below Linux's ephemeral range (32768+), where wrk's own connections live.
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 12000))
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

wait_ready() {
    local url=$1 pid=$2
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# --- the node ----------------------------------------------------------------

BIN=${MAKIATTO_BIN:-}
if [[ -z $BIN ]]; then
    log "building makiatto (release)"
    (cd "$REPO" && cargo build --release --quiet --bin makiatto) >&2
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/makiatto
    [[ $BIN == /* ]] || BIN=$REPO/$BIN
fi
[[ -x $BIN ]] || die "no makiatto binary at $BIN"
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

# Runs wrk against URL; sets WRK_RPS and WRK_REQUESTS (0 on failure or
# non-2xx answers).
run_wrk() {
    local url=$1 duration=$2 out=$TMP/wrk.out status=0
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${duration}s" --timeout 30s "$url" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || status=$?
    WRK_PID=""
    WRK_RPS=0
    WRK_REQUESTS=0
    if ((status != 0)) || grep -q 'Non-2xx' "$out"; then
        log "wrk: $(cat "$out")"
        return
    fi
    WRK_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    WRK_REQUESTS=$(awk '/ requests in / {print $1}' "$out")
}

median() {
    tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# --- main --------------------------------------------------------------------

(($(nproc) >= 2)) || die "needs at least 2 CPUs (node on CPU 0, wrk on CPU 1)"
ensure_packages
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
        if ! wait_ready "$SERVER_URL" "$SERVER_PID"; then
            tail -n 5 "$TMP/$variant/log" >&2 || true
            log "$variant: the node did not start; once more on another port"
            stop_server "$SERVER_PID"
            start_variant "$variant"
            if ! wait_ready "$SERVER_URL" "$SERVER_PID"; then
                tail -n 20 "$TMP/$variant/log" >&2 || true
                die "$variant: the node did not start"
            fi
        fi
        ((WARMUP > 0)) && run_wrk "$SERVER_URL" "$WARMUP"
        before=$(cpu_ticks "$SERVER_PID")
        run_wrk "$SERVER_URL" "$DURATION"
        after=$(cpu_ticks "$SERVER_PID")
        RPS[$variant]+=" $WRK_RPS"
        CPU[$variant]+=" $(awk -v t=$((after - before)) -v hz="$HZ" -v n="$WRK_REQUESTS" \
            'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print 0 }')"
        stop_server "$SERVER_PID"
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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "?" }'; }
echo
echo "                                   requests/s   CPU per request"
if [[ -n $BASELINE ]]; then
    echo "metrics on (log off) / no metrics:  $(ratio "${MED[off]}" "${MED[baseline]}")        $(ratio "${MEDCPU[off]}" "${MEDCPU[baseline]}")"
fi
echo "access log json / log off:          $(ratio "${MED[json]}" "${MED[off]}")        $(ratio "${MEDCPU[json]}" "${MEDCPU[off]}")"
echo "access log combined / log off:      $(ratio "${MED[combined]}" "${MED[off]}")        $(ratio "${MEDCPU[combined]}" "${MEDCPU[off]}")"
