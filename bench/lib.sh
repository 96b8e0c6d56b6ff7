# Helpers the bench/ scripts share: logging, packages, a temp dir cleaned up
# on exit, free ports, readiness, stopping servers, memory of a process
# tree, the makiatto binary, wrk runs and their parsing, medians and ratios.
# Sourced, never run:
#
#   source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
#
# A script sets its own `set -euo pipefail` before sourcing. Names the
# scripts read: REPO (the checkout), TMP (after bench_tmpdir), WRK_RPS,
# WRK_MIB, WRK_REQUESTS, WRK_ERRORS (after run_wrk).

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# Dies unless the machine has at least N CPUs (servers and load generators
# are pinned to different ones).
require_cpus() {
    (($(nproc) >= $1)) || die "needs at least $1 CPUs (the server and the load generator on separate ones)"
}

# Installs the Debian packages given that are missing, when run as root;
# otherwise prints the apt-get line and dies. Names after `--` are system
# services the packages may start on installation: this script runs its own
# instances, so those are stopped and disabled again.
#
#   ensure_packages wrk curl nginx -- nginx
ensure_packages() {
    local want=() services=() pkg
    while (($#)); do
        if [[ $1 == -- ]]; then
            shift
            services=("$@")
            break
        fi
        want+=("$1")
        shift
    done
    local missing=()
    for pkg in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if ((EUID != 0)); then
        echo "sudo apt-get install -y --no-install-recommends ${missing[*]}"
        die "missing packages; install them with the line above"
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    if ((${#services[@]})) && command -v systemctl >/dev/null; then
        systemctl disable --now "${services[@]}" >/dev/null 2>&1 || true
    fi
}

# --- temp dir and cleanup ------------------------------------------------------

# Functions bench_exit calls, last registered first.
BENCH_CLEANUPS=()
# The running load generator, if any (killed on exit).
WRK_PID=""

# Registers a function to run on exit (before the temp dir is removed).
on_exit() { BENCH_CLEANUPS=("$1" "${BENCH_CLEANUPS[@]}"); }

bench_exit() {
    local fn
    [[ -z ${ANON_SAMPLER_PID:-} ]] || kill "$ANON_SAMPLER_PID" 2>/dev/null || true
    if [[ -n $WRK_PID ]]; then
        kill "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    for fn in "${BENCH_CLEANUPS[@]}"; do
        "$fn" || true
    done
    [[ -z ${TMP:-} ]] || rm -rf "$TMP"
}

# Makes TMP, a private temp dir named after NAME, removed on exit, and
# traps exit and signals so cleanups run however the script ends.
bench_tmpdir() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/makiatto-$1.XXXXXX")
    trap bench_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# --- ports, readiness, stopping ------------------------------------------------

# A loopback port nobody listens on (TCP; with `udp`, UDP too), below
# Linux's ephemeral range (32768+) where load generators' own connections
# live. The window between this check and the server's bind is small and
# only other local processes could take it.
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 12000))
        ss -Htln "sport = :$port" | grep -q . && continue
        [[ ${1:-} == udp ]] && ss -Hauln "sport = :$port" | grep -q . && continue
        echo "$port"
        return
    done
    die "no free port found"
}

# Waits until URL answers 200 (curl with any extra arguments after NAME,
# such as -k or --resolve), or PID dies, or 60 s pass.
wait_http() {
    local url=$1 pid=$2 name=$3
    shift 3
    for _ in $(seq 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local status=0
            wait "$pid" || status=$?
            log "$name exited with status $status before serving"
            return 1
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true) == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "$name did not answer $url within 60 s"
    return 1
}

# Waits until something listens on loopback TCP PORT, or dies after 15 s.
wait_port() {
    for _ in $(seq 300); do
        if ss -Htln "sport = :$1" | grep -q .; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on port $1"
}

# Stops PID (a child of this shell): TERM, up to 5 s to exit, then KILL.
# An empty PID is nothing to stop.
stop_pid() {
    local pid=${1:-}
    [[ -n $pid ]] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# --- memory ------------------------------------------------------------------

# PID and its descendants (nginx's workers, for example).
process_tree() {
    local pid=$1 child
    echo "$pid"
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        process_tree "$child"
    done
}

# Resets the peak RSS (VmHWM) of PID's tree, so the next reading is the
# peak of what follows.
reset_peak_rss() {
    local pid
    for pid in $(process_tree "$1"); do
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    done
}

# Sum of FIELD (VmHWM: peak RSS, VmRSS: current RSS) over PID's tree, in KiB.
tree_kib() {
    local field=$1 pid total=0 kib
    for pid in $(process_tree "$2"); do
        kib=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}
peak_rss_kib() { tree_kib VmHWM "$1"; }
rss_kib() { tree_kib VmRSS "$1"; }

# Anonymous (private: heap, stacks) RSS of PID's tree, in KiB: the memory
# the process holds of its own, without the file pages it maps (its binary
# and libraries, mapped files), which the kernel shares and can reclaim.
anon_kib() { tree_kib RssAnon "$1"; }

# Samples anon_kib of PID's tree every 0.2 s in the background until
# stop_anon_sampler, which prints the highest sample.
ANON_SAMPLER_PID=""
start_anon_sampler() {
    local pid=$1
    : >"$TMP/anon.samples"
    (
        while kill -0 "$pid" 2>/dev/null; do
            anon_kib "$pid" >>"$TMP/anon.samples"
            sleep 0.2
        done
    ) &
    ANON_SAMPLER_PID=$!
}
stop_anon_sampler() {
    stop_pid "$ANON_SAMPLER_PID"
    ANON_SAMPLER_PID=""
    sort -n "$TMP/anon.samples" | tail -n 1
}

# KiB as MiB with one decimal.
kib_to_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# --- makiatto ------------------------------------------------------------------

# Prints the makiatto binary to run: MAKIATTO_BIN if set, otherwise one
# built from this checkout (`release`, the default, or `debug`) in
# CARGO_TARGET_DIR or target/.
makiatto_bin() {
    local profile=${1:-release} bin=${MAKIATTO_BIN:-}
    if [[ -z $bin ]]; then
        log "building makiatto ($profile)"
        if [[ $profile == release ]]; then
            (cd "$REPO" && cargo build --release --quiet --bin makiatto) >&2
        else
            (cd "$REPO" && cargo build --quiet --bin makiatto) >&2
        fi
        bin=${CARGO_TARGET_DIR:-$REPO/target}/$profile/makiatto
        [[ $bin == /* ]] || bin=$REPO/$bin
    fi
    [[ -x $bin ]] || die "no makiatto binary at $bin"
    echo "$bin"
}

# --- wrk -----------------------------------------------------------------------

# Converts wrk's "12.34MB"-style transfer rate to MiB (wrk's units are binary).
to_mib() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "B") ? 1 / 1048576 : (u == "KB") ? 1 / 1024 : (u == "MB") ? 1 : (u == "GB") ? 1024 : (u == "TB") ? 1048576 : -1
        if (f < 0) { print "?"; exit }
        printf "%.1f", n * f
    }'
}

# Runs wrk pinned to CPU 1, one thread, CONNECTIONS connections (the
# caller's variable), against URL for SECONDS, with any further wrk
# arguments. Sets WRK_RPS, WRK_MIB, WRK_REQUESTS and WRK_ERRORS ("-" when
# none; non-2xx answers and socket errors otherwise), and leaves wrk's
# output in $TMP/wrk.out. wrk runs in the background so a signal reaches
# the trap at once.
run_wrk() {
    local url=$1 duration=$2 out=$TMP/wrk.out status=0
    shift 2
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${duration}s" "$@" "$url" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || status=$?
    WRK_PID=""
    WRK_RPS=0 WRK_MIB=0 WRK_REQUESTS=0 WRK_ERRORS=-
    if ((status != 0)); then
        log "wrk failed: $(cat "$out")"
        WRK_ERRORS=wrk-failed
        return
    fi
    local errors=""
    WRK_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    WRK_MIB=$(to_mib "$(awk '/^Transfer\/sec:/ {print $2}' "$out")")
    WRK_REQUESTS=$(awk '/ requests in / {print $1}' "$out")
    if grep -q 'Non-2xx' "$out"; then
        errors+="non-2xx:$(awk '/Non-2xx/ {print $NF}' "$out")"
    fi
    if grep -q 'Socket errors' "$out"; then
        errors+="${errors:+,}socket:$(grep 'Socket errors' "$out" | sed 's/.*errors: //; s/ //g')"
    fi
    WRK_ERRORS=${errors:--}
}

# --- figures -------------------------------------------------------------------

# Median of the numbers given as arguments or, with none, on stdin
# (whitespace-separated); the mean of the two middle ones for an even count.
median() {
    if (($#)); then printf '%s\n' "$@"; else cat; fi | tr ' ' '\n' | grep . | sort -g |
        awk '{v[NR] = $1} END {
            if (NR == 0) print ""
            else if (NR % 2) print v[(NR + 1) / 2]
            else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# A / B with two decimals, "n/a" when either is missing or B is zero.
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'
}
