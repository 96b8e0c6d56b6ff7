#!/usr/bin/env bash
# Idle mesh cost: the bytes per second each node of an idle cluster puts on
# the wire (health probes, anti-entropy digests, HTTP/2 and WireGuard
# keepalives), for clusters of 3, 5 and 8 nodes. The anchor is the
# smallest cluster in the same run: a design whose per-node cost does not
# grow with the number of peers prints ratios near 1.0; probing every peer
# from every node would print about (N - 1) / 2.
#
#   bench/mesh-idle.sh                    # 3, 5 and 8 nodes, 20 s windows
#   bench/mesh-idle.sh -n "3 5" -w 30     # other sizes, a longer window
#   MAKIATTO_BIN=path/to/makiatto bench/mesh-idle.sh   # skip the build
#
# Needs root. Each node runs `makiatto run` in a network namespace of its
# own on a bridge (addresses 203.0.113.1-8, no route off the machine), with
# its WireGuard device (mesh addresses 198.51.100.1-8), the mesh RPC inside
# the tunnel, HTTP on :8080 and DNS on :53 of its address, as a real node.
# After the cluster settled (every node joined, a site deployed and
# served by all), bytes are what each namespace transmitted and received
# over the window (veth counters: every header, WireGuard's too).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/mesh-idle.sh [-n "SIZES"] [-w SECONDS] [-s SECONDS]

  -n SIZES     cluster sizes to measure, in quotes (default "3 5 8"; at most 8)
  -w SECONDS   measuring window per size (default 20)
  -s SECONDS   settling time before the window (default 10)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

SIZES="3 5 8"
WINDOW=20
SETTLE=10
while getopts "n:w:s:h" opt; do
    case "$opt" in
        n) SIZES=$OPTARG ;;
        w) WINDOW=$OPTARG ;;
        s) SETTLE=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done
for n in $SIZES; do
    if [ "$n" -lt 2 ] || [ "$n" -gt 8 ]; then
        echo "error: cluster size $n: give sizes from 2 to 8" >&2
        exit 2
    fi
done

if [ "$(id -u)" -ne 0 ]; then
    echo "error: bench/mesh-idle.sh needs root (network namespaces); run it with sudo" >&2
    exit 1
fi
for tool in ip curl mount python3; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is missing; apt-get install iproute2 curl mount python3" >&2
        exit 1
    }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MAKIATTO_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --bin makiatto >&2)
    MAKIATTO_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/makiatto"
fi

MAX=8
BR=mkidle0
WORK=$(mktemp -d /tmp/makiatto-mesh-idle.XXXXXX)
HOST=idle.example
PIDS=()

stop_nodes() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}

teardown() {
    for i in $(seq 1 $MAX); do
        ip netns del "mkidle$i" 2>/dev/null || true
        # A namespace lingers while the kernel tears its devices down;
        # deleting the host end removes the pair at once.
        ip link del "mkiv$i" 2>/dev/null || true
    done
    ip link del "$BR" 2>/dev/null || true
}

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    teardown
    rm -rf "$WORK"
}
trap cleanup EXIT

network() {
    local n=$1 i
    teardown
    ip link add "$BR" type bridge
    ip link set "$BR" up
    for i in $(seq 1 "$n"); do
        ip netns add "mkidle$i"
        ip link add "mkiv$i" type veth peer name eth0 netns "mkidle$i"
        ip link set "mkiv$i" master "$BR" up
        ip netns exec "mkidle$i" ip addr add "203.0.113.$i/24" dev eth0
        ip netns exec "mkidle$i" ip link set eth0 up
        ip netns exec "mkidle$i" ip link set lo up
    done
}

# What node i transmitted and received: its veth's host end counts the
# reverse direction.
sent() { cat "/sys/class/net/mkiv$1/statistics/rx_bytes"; }
received() { cat "/sys/class/net/mkiv$1/statistics/tx_bytes"; }

node_dir() { echo "$WORK/n$1/node$2"; }

start_node() {
    local n=$1 i=$2 join=$3 dir
    dir=$(node_dir "$n" "$i")
    mkdir -p "$dir"
    {
        echo "name = \"n$i\""
        echo "data_dir = \"data\""
        echo "ipv4 = \"203.0.113.$i\""
        printf '\n[http]\nlisten = "203.0.113.%s:8080"\n' "$i"
        printf '\n[dns]\nlisten = "203.0.113.%s:53"\ntls = false\n' "$i"
        printf '\n[cluster]\nprefix_v4 = "198.51.100.0/24"\nprefix_v6 = "2001:db8:1::/64"\naddress_v4 = "198.51.100.%s"\n' "$i"
        [ -n "$join" ] && printf 'join = "203.0.113.1:7070"\njoin_token = "%s"\n' "$join"
    } >"$dir/node.toml"
    # UAPI sockets are files, which namespaces do not separate: each node
    # gets its own /run/wireguard. `ip netns exec` execs sh, which execs
    # the node, so $! is the node itself.
    mkdir -p "$dir/run-wg" /run/wireguard
    ip netns exec "mkidle$i" sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$dir/run-wg" \
        "$MAKIATTO_BIN" run --config "$dir/node.toml" >"$dir/stdout" 2>"$dir/stderr" &
    PIDS+=($!)
    for _ in $(seq 1 600); do
        grep -q "http://" "$dir/stdout" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "error: node $i of $n did not start:" >&2
    cat "$dir/stderr" >&2
    exit 1
}

served_by() { # cluster size, node → HTTP status of the site's page
    ip netns exec "mkidle$2" curl -s -m 2 -o /dev/null -w '%{http_code}' \
        -H "host: $HOST" "http://203.0.113.$2:8080/" 2>/dev/null || true
}

now_ms() { date +%s%3N; }

declare -A SENT RECEIVED
measure() {
    local n=$1 i token t0 t1 ok
    echo "$n nodes: starting ..." >&2
    network "$n"
    start_node "$n" 1 ""
    for i in $(seq 2 "$n"); do
        token=$("$MAKIATTO_BIN" join-token --data "$(node_dir "$n" 1)/data" | head -n1)
        start_node "$n" "$i" "$token"
    done
    mkdir -p "$WORK/site"
    printf '[[domain]]\nname = "%s"\n' "$HOST" >"$WORK/site/makiatto.toml"
    echo "idle" >"$WORK/site/index.html"
    "$MAKIATTO_BIN" deploy "$WORK/site" --data "$(node_dir "$n" 1)/data" >/dev/null
    for _ in $(seq 1 300); do
        ok=1
        for i in $(seq 1 "$n"); do
            [ "$(served_by "$n" "$i")" = 200 ] || { ok=0; break; }
        done
        [ $ok -eq 1 ] && break
        sleep 0.2
    done
    if [ $ok -ne 1 ]; then
        echo "error: not every node of $n served the site; node $i's log:" >&2
        tail -n 30 "$(node_dir "$n" "$i")/stderr" >&2
        exit 1
    fi
    echo "$n nodes: settling ${SETTLE} s, then measuring ${WINDOW} s ..." >&2
    sleep "$SETTLE"
    declare -A s0 r0
    for i in $(seq 1 "$n"); do s0[$i]=$(sent "$i"); r0[$i]=$(received "$i"); done
    t0=$(now_ms)
    sleep "$WINDOW"
    t1=$(now_ms)
    for i in $(seq 1 "$n"); do
        SENT[$n,$i]=$((($(sent "$i") - s0[$i]) * 1000 / (t1 - t0)))
        RECEIVED[$n,$i]=$((($(received "$i") - r0[$i]) * 1000 / (t1 - t0)))
    done
    stop_nodes
}

for n in $SIZES; do measure "$n"; done

# --- the table ----------------------------------------------------------------
echo
echo "idle mesh, bytes/s per node on the wire (sent, received), ${WINDOW} s windows"
printf '%-6s %14s %14s %14s %16s %10s\n' nodes "sent mean" "sent max" "received mean" "cluster total" "vs first"
anchor=""
for n in $SIZES; do
    sum_s=0; sum_r=0; max_s=0
    for i in $(seq 1 "$n"); do
        sum_s=$((sum_s + SENT[$n,$i])); sum_r=$((sum_r + RECEIVED[$n,$i]))
        [ "${SENT[$n,$i]}" -gt $max_s ] && max_s=${SENT[$n,$i]}
    done
    mean_s=$((sum_s / n)); mean_r=$((sum_r / n))
    [ -z "$anchor" ] && anchor=$mean_s
    ratio=$(python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else '-')" "$mean_s" "$anchor")
    printf '%-6s %14s %14s %14s %16s %10s\n' "$n" "$mean_s" "$max_s" "$mean_r" "$sum_s" "$ratio"
    line="mesh-idle nodes=$n sent_mean=$mean_s sent_max=$max_s received_mean=$mean_r cluster_sent=$sum_s ratio=$ratio per_node="
    for i in $(seq 1 "$n"); do line="$line${SENT[$n,$i]},"; done
    echo "${line%,}"
done
