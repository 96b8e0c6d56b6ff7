#!/usr/bin/env bash
# Mesh throughput: iperf3 (TCP) between two network namespaces through the
# makiatto mesh (two `makiatto run` nodes, peered with `wg set` over their
# UAPI sockets), then through wireguard-go between the same two namespaces,
# same duration, alternating in each round. Prints Mbit/s per tunnel (the
# median over the rounds) and makiatto's ratio to wireguard-go.
#
#   bench/mesh-throughput.sh                 # 10 s runs, 3 rounds
#   bench/mesh-throughput.sh -d 30 -r 5
#   MAKIATTO_BIN=path/to/makiatto bench/mesh-throughput.sh   # skip the build
#
# Needs root (network namespaces, TUN devices). The namespaces sit on a
# bridge of their own with addresses from 192.0.2.0/24 and no route off the
# machine; the tunnels carry 198.51.100.0/24. The last line is for scripts:
#   mesh-throughput makiatto_mbps=N wireguard_go_mbps=N ratio=R
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/mesh-throughput.sh [-d SECONDS] [-r ROUNDS] [-P STREAMS]

  -d SECONDS   length of each iperf3 run (default 10)
  -r ROUNDS    rounds; each runs makiatto then wireguard-go, and the table
               shows the median over the rounds (default 3)
  -P STREAMS   parallel iperf3 streams (default 1)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

DURATION=10
ROUNDS=3
STREAMS=1
while getopts "d:r:P:h" opt; do
    case "$opt" in
        d) DURATION=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        P) STREAMS=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

((EUID == 0)) || die "this benchmark needs root (network namespaces and TUN devices)"

# --- dependencies ------------------------------------------------------------

PACKAGES=(iperf3 wireguard-go wireguard-tools iproute2 iputils-ping python3)

# --- namespaces, processes, cleanup ------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/makiatto-mesh-bench.XXXXXX")
ID=mkb$$
BR=$ID-br
NS=("$ID-a" "$ID-b")
PIDS=()

cleanup() {
    local pid ns
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${NS[@]}" "$BR"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs ARGS in namespace index I with that namespace's own /run/wireguard
# (UAPI sockets are files, which namespaces do not separate).
in_ns() {
    local i=$1
    shift
    ip netns exec "${NS[$i]}" sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$TMP/run-wg-$i" "$@"
}

# Starts ARGS in the background in namespace I, setting BG_PID to the
# process itself (ip execs sh, which execs ARGS), so killing BG_PID stops it.
BG_PID=""
in_ns_bg() {
    local i=$1 out=$2
    shift 2
    ip netns exec "${NS[$i]}" sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$TMP/run-wg-$i" "$@" \
        >"$out" 2>&1 </dev/null &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

make_namespaces() {
    mkdir -p /run/wireguard
    ip netns add "$BR"
    ip -n "$BR" link add br0 type bridge
    ip -n "$BR" link set br0 up
    local i
    for i in 0 1; do
        ip netns add "${NS[$i]}"
        ip -n "$BR" link add "v$i" type veth peer name eth0 netns "${NS[$i]}"
        ip -n "$BR" link set "v$i" master br0
        ip -n "$BR" link set "v$i" up
        ip -n "${NS[$i]}" link set lo up
        ip -n "${NS[$i]}" addr add "192.0.2.$((i + 1))/24" dev eth0
        ip -n "${NS[$i]}" link set eth0 up
        mkdir -p "$TMP/run-wg-$i"
    done
}

# Pings the other side's tunnel address until it answers (the handshake).
wait_tunnel() {
    local _
    for _ in $(seq 60); do
        if in_ns 0 ping -c 1 -W 1 198.51.100.2 >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

# Sets RESULT to the Mbit/s an iperf3 server on 198.51.100.2 received from
# a client in namespace A.
RESULT=""
measure() {
    local name=$1 json=$TMP/$1.json
    in_ns_bg 1 "$TMP/$name-server.log" iperf3 -s -1 -B 198.51.100.2
    local server=$BG_PID
    local _
    for _ in $(seq 50); do
        in_ns 1 ss -Htln 'sport = :5201' | grep -q . && break
        sleep 0.1
    done
    in_ns 0 iperf3 -c 198.51.100.2 -t "$DURATION" -P "$STREAMS" -J >"$json" 2>"$TMP/$name-client.err" ||
        die "iperf3 through $name failed: $(cat "$TMP/$name-client.err" "$json" | tail -5)"
    wait "$server" 2>/dev/null || true
    RESULT=$(python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$json")
}

# --- makiatto ----------------------------------------------------------------

MAKIATTO=""
find_makiatto() {
    local bin=${MAKIATTO_BIN:-}
    if [[ -z $bin ]]; then
        log "building makiatto (release)"
        (cd "$REPO" && cargo build --release --quiet --bin makiatto) >&2
        bin=${CARGO_TARGET_DIR:-$REPO/target}/release/makiatto
        [[ $bin == /* ]] || bin=$REPO/$bin
    fi
    [[ -x $bin ]] || die "no makiatto binary at $bin"
    MAKIATTO=$bin
}

run_makiatto() {
    local i keys=() node_pids=()
    for i in 0 1; do
        local dir=$TMP/node$i
        mkdir -p "$dir"
        cat >"$dir/node.toml" <<EOF
name = "bench$i"
data_dir = "$dir/data"
ipv4 = "192.0.2.$((i + 1))"

[http]
listen = "127.0.0.1:80"

[cluster]
prefix_v4 = "198.51.100.0/24"
prefix_v6 = "2001:db8:1::/64"
address_v4 = "198.51.100.$((i + 1))"
EOF
        in_ns_bg "$i" "$dir/log" "$MAKIATTO" run --config "$dir/node.toml"
        node_pids+=("$BG_PID")
        local _
        for _ in $(seq 600); do
            grep -q 'http://' "$dir/log" && break
            kill -0 "${node_pids[$i]}" 2>/dev/null || die "makiatto in ${NS[$i]} exited: $(tail -5 "$dir/log")"
            sleep 0.1
        done
        keys+=("$(in_ns "$i" wg show maki0 public-key)")
    done
    for i in 0 1; do
        local o=$((1 - i))
        in_ns "$i" wg set maki0 peer "${keys[$o]}" endpoint "192.0.2.$((o + 1)):51880" \
            allowed-ips "198.51.100.$((o + 1))/32"
    done
    wait_tunnel || die "the makiatto mesh did not come up: $(tail -5 "$TMP/node0/log")"
    measure makiatto
    local pid
    for pid in "${node_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# --- wireguard-go ------------------------------------------------------------

run_wireguard_go() {
    local i keys=() privs=() go_pids=()
    for i in 0 1; do
        privs+=("$TMP/wg$i.key")
        (umask 077 && wg genkey >"${privs[$i]}")
        keys+=("$(wg pubkey <"${privs[$i]}")")
        in_ns_bg "$i" "$TMP/wggo$i.log" wireguard-go -f wgb0
        go_pids+=("$BG_PID")
        local _
        for _ in $(seq 100); do
            in_ns "$i" wg show wgb0 >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
    for i in 0 1; do
        local o=$((1 - i))
        in_ns "$i" wg set wgb0 private-key "${privs[$i]}" listen-port 51880 \
            peer "${keys[$o]}" endpoint "192.0.2.$((o + 1)):51880" allowed-ips "198.51.100.$((o + 1))/32"
        in_ns "$i" ip addr add "198.51.100.$((i + 1))/24" dev wgb0
        in_ns "$i" ip link set wgb0 mtu 1420 up
    done
    wait_tunnel || die "the wireguard-go tunnel did not come up: $(tail -5 "$TMP/wggo0.log")"
    measure wireguard-go
    local pid
    for pid in "${go_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

ensure_packages "${PACKAGES[@]}" -- iperf3
find_makiatto
make_namespaces

MAKI=()
WGGO=()
for round in $(seq "$ROUNDS"); do
    log "round $round/$ROUNDS: makiatto"
    run_makiatto
    MAKI+=("$RESULT")
    log "round $round/$ROUNDS: wireguard-go"
    run_wireguard_go
    WGGO+=("$RESULT")
    log "round $round/$ROUNDS: makiatto ${MAKI[-1]} Mbit/s, wireguard-go ${WGGO[-1]} Mbit/s"
done

maki=$(median "${MAKI[@]}")
wggo=$(median "${WGGO[@]}")
ratio=$(python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print("%.2f" % (a / b) if b else "n/a")' "$maki" "$wggo")
wgver=$(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo unknown)

echo
echo "mesh throughput: iperf3 TCP, $STREAMS stream(s), ${DURATION} s x $ROUNDS rounds (median), $(nproc) CPUs"
printf '%-34s %10s   %s\n' "tunnel" "Mbit/s" "rounds"
printf '%-34s %10s   %s\n' "makiatto (gotatun)" "$maki" "${MAKI[*]}"
printf '%-34s %10s   %s\n' "wireguard-go $wgver" "$wggo" "${WGGO[*]}"
printf '%-34s %10s\n' "ratio makiatto/wireguard-go" "$ratio"
echo "mesh-throughput makiatto_mbps=$maki wireguard_go_mbps=$wggo ratio=$ratio"
