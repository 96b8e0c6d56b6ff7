#!/usr/bin/env bash
# Propagation: how long a deploy takes to be served by every node of a
# five-node cluster, and how many bytes cross the wire, side by side with
# the hand-rolled alternative (rsync over ssh from the origin to the four
# others). Two cases: (a) the first deploy of a generated site (default
# 10,000 files, 200 MB), (b) a one-file change on top of it.
#
#   bench/propagation.sh                  # 10,000 files, 200 MB
#   bench/propagation.sh -n 2000 -m 40    # a smaller site
#   MAKIATTO_BIN=path/to/makiatto bench/propagation.sh   # skip the build
#
# Needs root. Five network namespaces on a bridge of their own, addresses
# 192.0.2.1-5 and no route off the machine; each runs `makiatto run` with
# its WireGuard device (mesh addresses 198.51.100.1-5, each namespace with
# its own /run/wireguard) and the mesh RPC inside the tunnel, and, for
# rsync, an sshd. Bytes are what the five namespaces transmitted (veth
# counters), so they include every header, WireGuard's too; the bytes node 1
# alone sent show how much of the fan-out the origin carried. Time runs
# from the deploy command returning (the origin serves the revision) until
# all five serve it, polled every 10 ms by one in-process poller. The
# receivers' "revision fetched" log lines (manifest, objects, install
# times) are printed after the table. Then it runs bench/mesh-throughput.sh (iperf3 through the mesh
# versus wireguard-go) when present, unless -T is given.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/propagation.sh [-n FILES] [-m MEGABYTES] [-T]

  -n FILES       files in the generated site (default 10000)
  -m MEGABYTES   total size of those files (default 200)
  -T             skip bench/mesh-throughput.sh

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

FILES=10000
MEGABYTES=200
THROUGHPUT=1
while getopts "n:m:Th" opt; do
    case "$opt" in
        n) FILES=$OPTARG ;;
        m) MEGABYTES=$OPTARG ;;
        T) THROUGHPUT=0 ;;
        h) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "error: bench/propagation.sh needs root (network namespaces); run it with sudo" >&2
    exit 1
fi
for tool in ip rsync sshd ssh-keygen python3 mount; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is missing; apt-get install iproute2 rsync openssh-server openssh-client python3" >&2
        exit 1
    }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MAKIATTO_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --bin makiatto >&2)
    MAKIATTO_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/makiatto"
fi
SSHD=$(command -v sshd)

N=5
BR=mkprop0
WORK=$(mktemp -d /tmp/makiatto-propagation.XXXXXX)
HOST=bench.example
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for i in $(seq 1 $N); do
        ip netns del "mkprop$i" 2>/dev/null || true
        # A namespace lingers while the kernel tears its devices down;
        # deleting the host end removes the pair at once.
        ip link del "mkpv$i" 2>/dev/null || true
    done
    ip link del "$BR" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ns() { local i=$1; shift; ip netns exec "mkprop$i" "$@"; }

# --- the network ---------------------------------------------------------
# What an interrupted earlier run may have left.
for i in $(seq 1 $N); do
    ip netns del "mkprop$i" 2>/dev/null || true
    ip link del "mkpv$i" 2>/dev/null || true
done
ip link del "$BR" 2>/dev/null || true
ip link add "$BR" type bridge
ip link set "$BR" up
for i in $(seq 1 $N); do
    ip netns add "mkprop$i"
    ip link add "mkpv$i" type veth peer name eth0 netns "mkprop$i"
    ip link set "mkpv$i" master "$BR" up
    ns "$i" ip addr add "192.0.2.$i/24" dev eth0
    ns "$i" ip link set eth0 up
    ns "$i" ip link set lo up
done

# Bytes the namespaces transmitted: the host ends' received bytes.
wire_bytes() {
    local total=0 i
    for i in $(seq 1 $N); do
        total=$((total + $(cat "/sys/class/net/mkpv$i/statistics/rx_bytes")))
    done
    echo "$total"
}

# --- the site ---------------------------------------------------------------
echo "generating a site of $FILES files, $MEGABYTES MB ..." >&2
python3 - "$WORK/site" "$FILES" "$MEGABYTES" "$HOST" <<'PY'
import os, random, sys, base64
root, files, mb, host = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.makedirs(root, exist_ok=True)
open(os.path.join(root, "makiatto.toml"), "w").write(f'[[domain]]\nname = "{host}"\n')
rng = random.Random(7)
per = mb * 1024 * 1024 // files
for i in range(files):
    d = os.path.join(root, f"d{i % 50:02}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    size = max(1, int(per * rng.uniform(0.5, 1.5)))
    if i % 3 == 0:
        # Text-like (compressible): HTML-ish lines.
        line = f"<p>page {i} of the benchmark site, paragraph {{}}</p>\n"
        data = "".join(line.format(k) for k in range(size // len(line) + 1))[:size].encode()
    else:
        data = rng.randbytes(size)
    open(os.path.join(d, f"f{i:05}.{'html' if i % 3 == 0 else 'bin'}"), "wb").write(data)
PY
PROBE=d00/s0/f00000.html

# --- makiatto ---------------------------------------------------------------
node_dir() { echo "$WORK/node$1"; }
start_node() {
    local i=$1 join=$2 dir
    dir=$(node_dir "$i")
    mkdir -p "$dir"
    {
        echo "name = \"n$i\""
        echo "data_dir = \"data\""
        echo "ipv4 = \"192.0.2.$i\""
        printf '\n[http]\nlisten = "192.0.2.%s:8080"\n' "$i"
        printf '\n[cluster]\nprefix_v4 = "198.51.100.0/24"\nprefix_v6 = "2001:db8:1::/64"\naddress_v4 = "198.51.100.%s"\n' "$i"
        [ -n "$join" ] && printf 'join = "192.0.2.1:7070"\njoin_token = "%s"\n' "$join"
    } >"$dir/node.toml"
    # UAPI sockets are files, which namespaces do not separate: each node
    # gets its own /run/wireguard. `ip netns exec` execs sh, which execs
    # the node, so $! is the node itself.
    mkdir -p "$dir/run-wg" /run/wireguard
    ip netns exec "mkprop$i" sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$dir/run-wg" \
        "$MAKIATTO_BIN" run --config "$dir/node.toml" >"$dir/stdout" 2>"$dir/stderr" &
    PIDS+=($!)
    for _ in $(seq 1 600); do
        grep -q "http://" "$dir/stdout" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "error: node $i did not start:" >&2
    cat "$dir/stderr" >&2
    exit 1
}

# Waits until all nodes serve a revision starting with $1; prints elapsed ms
# since $2 (ms since the epoch). One poller inside node 1's namespace asks
# every node over the bridge every 10 ms, in-process: a curl per probe
# would spend the very CPU the nodes are replicating with.
wait_all() {
    ns 1 python3 - "$1" "$2" "$HOST" "$PROBE" "$N" <<'PY'
import http.client, sys, time
want, since, host, probe, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
pending = list(range(1, n + 1))
deadline = time.time() + 600
while pending:
    i = pending[0]
    try:
        c = http.client.HTTPConnection(f"192.0.2.{i}", 8080, timeout=2)
        c.request("GET", "/" + probe, headers={"host": host})
        r = c.getresponse()
        r.read()
        served = r.getheader("x-makiatto-revision") or ""
        c.close()
    except OSError:
        served = ""
    if served.startswith(want):
        pending.pop(0)
        continue
    if time.time() > deadline:
        sys.exit(f"error: not every node served {want}")
    time.sleep(0.01)
print(int(time.time() * 1000) - since)
PY
}

now_ms() { date +%s%3N; }

# Bytes node $1 transmitted: its host end's received bytes.
sent_by() { cat "/sys/class/net/mkpv$1/statistics/rx_bytes"; }

echo "starting five makiatto nodes ..." >&2
start_node 1 ""
for i in $(seq 2 $N); do
    token=$("$MAKIATTO_BIN" join-token --data "$(node_dir 1)/data" | head -n1)
    start_node "$i" "$token"
done
sleep 4 # let the node table settle (anti-entropy runs every 3 s)

deploy() {
    "$MAKIATTO_BIN" deploy "$WORK/site" --data "$(node_dir 1)/data" |
        grep -o 'revision [0-9a-f]*' | head -n1 | awk '{print $2}'
}

b0=$(wire_bytes)
o0=$(sent_by 1)
rev=$(deploy)
t0=$(now_ms)
mk_first_ms=$(wait_all "$rev" "$t0")
sleep 1
mk_first_bytes=$(($(wire_bytes) - b0))
mk_first_origin=$(($(sent_by 1) - o0))

# The idle mesh still talks (health probes, anti-entropy digests,
# WireGuard keepalives): measure that rate over a quiet window, so the
# change's own bytes can be told apart from it.
sleep 2
q0=$(wire_bytes)
qt0=$(now_ms)
sleep 5
idle_rate=$(( ($(wire_bytes) - q0) * 1000 / ($(now_ms) - qt0) ))

printf 'changed %s\n' "$(date +%s%N)" >"$WORK/site/$PROBE"
b0=$(wire_bytes)
bt0=$(now_ms)
rev=$(deploy)
t0=$(now_ms)
mk_change_ms=$(wait_all "$rev" "$t0")
sleep 1
mk_change_bytes=$(($(wire_bytes) - b0))
mk_change_window_ms=$(($(now_ms) - bt0))
mk_change_own=$((mk_change_bytes - idle_rate * mk_change_window_ms / 1000))
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()
# Where each receiver spent its time: manifest, objects, install.
fetch_log=$(for i in $(seq 2 $N); do
    grep -h "revision fetched" "$(node_dir "$i")/stdout" "$(node_dir "$i")/stderr" 2>/dev/null |
        sed -e 's/\x1b\[[0-9;]*m//g' -e "s/^/  n$i: /"
done)

# --- rsync over ssh ---------------------------------------------------------
echo "rsync over ssh from node 1 to the four others ..." >&2
ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/client_key"
mkdir -p /run/sshd
for i in $(seq 2 $N); do
    mkdir -p "$WORK/rsync$i"
    ip netns exec "mkprop$i" "$SSHD" -D -e -p 2200 -h "$WORK/host_key" \
        -o ListenAddress="192.0.2.$i" -o AuthorizedKeysFile="$WORK/client_key.pub" \
        -o PermitRootLogin=prohibit-password -o StrictModes=no -o UsePAM=no \
        2>"$WORK/sshd$i.log" &
    PIDS+=($!)
done
sleep 1
RSH="ssh -p 2200 -i $WORK/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
rsync_all() {
    local i jobs=()
    for i in $(seq 2 $N); do
        ip netns exec mkprop1 rsync -a --delete -e "$RSH" "$WORK/site/" "root@192.0.2.$i:$WORK/rsync$i/" \
            2>"$WORK/rsync$i.log" &
        jobs+=($!)
    done
    for i in "${!jobs[@]}"; do
        wait "${jobs[$i]}" || {
            echo "error: rsync to node $((i + 2)) failed:" >&2
            cat "$WORK/rsync$((i + 2)).log" "$WORK/sshd$((i + 2)).log" >&2
            exit 1
        }
    done
}
b0=$(wire_bytes)
o0=$(sent_by 1)
t0=$(now_ms)
rsync_all
rs_first_ms=$(($(now_ms) - t0))
rs_first_bytes=$(($(wire_bytes) - b0))
rs_first_origin=$(($(sent_by 1) - o0))

printf 'changed again %s\n' "$(date +%s%N)" >"$WORK/site/$PROBE"
b0=$(wire_bytes)
t0=$(now_ms)
rsync_all
rs_change_ms=$(($(now_ms) - t0))
rs_change_bytes=$(($(wire_bytes) - b0))

# --- the table ----------------------------------------------------------------
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else '-')" "$1" "$2"; }
echo
echo "propagation to 5 nodes: $FILES files, $MEGABYTES MB; time after the deploy returned on node 1"
printf '%-22s %12s %14s %12s %14s %10s %10s\n' case "makiatto ms" "makiatto bytes" "rsync ms" "rsync bytes" "time x" "bytes x"
printf '%-22s %12s %14s %12s %14s %10s %10s\n' "(a) first deploy" "$mk_first_ms" "$mk_first_bytes" "$rs_first_ms" "$rs_first_bytes" \
    "$(ratio "$mk_first_ms" "$rs_first_ms")" "$(ratio "$mk_first_bytes" "$rs_first_bytes")"
printf '%-22s %12s %14s %12s %14s %10s %10s\n' "(b) one-file change" "$mk_change_ms" "$mk_change_bytes" "$rs_change_ms" "$rs_change_bytes" \
    "$(ratio "$mk_change_ms" "$rs_change_ms")" "$(ratio "$mk_change_bytes" "$rs_change_bytes")"
echo "(a) bytes node 1 (the origin) sent: makiatto $mk_first_origin, rsync $rs_first_origin ($(ratio "$mk_first_origin" "$rs_first_origin")x); the site is $((MEGABYTES * 1024 * 1024)) bytes, sent to $((N - 1)) nodes"
echo "idle mesh: $idle_rate bytes/s; the one-file change less that over its $mk_change_window_ms ms window: $mk_change_own bytes"
echo "propagation first_ms=$mk_first_ms first_bytes=$mk_first_bytes change_ms=$mk_change_ms change_bytes=$mk_change_bytes rsync_first_ms=$rs_first_ms rsync_first_bytes=$rs_first_bytes rsync_change_ms=$rs_change_ms rsync_change_bytes=$rs_change_bytes idle_bytes_per_s=$idle_rate change_own_bytes=$mk_change_own first_origin_bytes=$mk_first_origin rsync_first_origin_bytes=$rs_first_origin"
echo "revision fetched (the receivers' logs, first deploy then the change):"
echo "$fetch_log"

for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
PIDS=()
if [ "$THROUGHPUT" -eq 1 ] && [ -x "$ROOT/bench/mesh-throughput.sh" ]; then
    echo
    MAKIATTO_BIN="$MAKIATTO_BIN" "$ROOT/bench/mesh-throughput.sh"
fi
