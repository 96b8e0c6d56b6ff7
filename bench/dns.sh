#!/usr/bin/env bash
# Side-by-side GeoDNS benchmark: makiatto, Knot DNS (mod-geoip, geodb mode)
# and PowerDNS (geoip backend) answer the same zone with the same MMDB on
# loopback, one server at a time, each pinned to CPU 0 with dnsperf pinned
# to CPU 1. The same query mix is sent three times per server, once with
# each client subnet in EDNS Client Subnet (London, Seattle area,
# Changchun), and the totals give queries/s and mean latency per server,
# then makiatto's ratios to each anchor.
#
# makiatto runs twice: with response rate limiting off (`makiatto`, what the
# anchors are compared with: they run without RRL too) and on
# (`makiatto-rrl`, a rate no run reaches, so every response pays for the
# limiter's bookkeeping but none is limited); the last line is their ratio.
#
#   bench/dns.sh                        # all three servers, 5 s per subnet
#   bench/dns.sh -d 10                  # longer runs
#   bench/dns.sh -s makiatto,makiatto-rrl   # RRL on against off only
#   MAKIATTO_BIN=path/to/makiatto bench/dns.sh   # skip the cargo build
#   GEOIP_DB=path/to/City.mmdb bench/dns.sh      # another database
#
# The anchors map countries to nodes (their geoip features match on
# database keys); makiatto computes the nearest node by distance. For these
# three subnets both give the same answers, which the script checks with
# dig before measuring.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/dns.sh [-d SECONDS] [-c CLIENTS] [-q OUTSTANDING] [-s SERVERS]

  -d SECONDS      length of each dnsperf run; three runs per server (default 5)
  -c CLIENTS      dnsperf clients (sockets) (default 8)
  -q OUTSTANDING  dnsperf maximum outstanding queries (default 200)
  -s SERVERS      comma-separated subset of makiatto,makiatto-rrl,knot,pdns
                  (default all)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto` (CARGO_TARGET_DIR is respected);
GEOIP_DB names the MMDB file (default: the shared GeoIP test database).
EOF
}

DURATION=5
CLIENTS=8
OUTSTANDING=200
SERVERS=makiatto,makiatto-rrl,knot,pdns
while getopts "d:c:q:s:h" opt; do
    case "$opt" in
        d) DURATION=$OPTARG ;;
        c) CLIENTS=$OPTARG ;;
        q) OUTSTANDING=$OPTARG ;;
        s) SERVERS=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
for server in "${SERVER_LIST[@]}"; do
    case "$server" in
        makiatto | makiatto-rrl | knot | pdns) ;;
        *) echo "bench: unknown server '$server' (want makiatto, makiatto-rrl, knot or pdns)" >&2; exit 2 ;;
    esac
done

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# The test database locates single addresses there, so London and Seattle
# are /32s. Client subnets as "label|dig subnet|ECS option hex (family, prefix, scope, address)|expected A".
SUBNETS=(
    "London|81.2.69.142/32|000120005102458e|192.0.2.1"
    "Seattle|216.160.83.56/32|00012000d8a05338|198.51.100.1"
    "Changchun|175.16.199.0/24|00011800af10c7|203.0.113.1"
)

# --- dependencies ------------------------------------------------------------

packages() {
    local want=(dnsperf dnsutils util-linux iproute2 procps)
    local server
    for server in "${SERVER_LIST[@]}"; do
        case "$server" in
            knot) want+=(knot knot-module-geoip) ;;
            pdns) want+=(pdns-server pdns-backend-geoip) ;;
        esac
    done
    # Their packaged services would hold port 53; this script runs its own.
    ensure_packages "${want[@]}" -- knot pdns
}

find_geoip_db() {
    if [[ -n ${GEOIP_DB:-} ]]; then
        [[ -f $GEOIP_DB ]] || die "GEOIP_DB=$GEOIP_DB is not a file"
        readlink -f "$GEOIP_DB"
        return
    fi
    local fixture=$REPO/tests/fixtures/geoip/GeoLite2-City-Test.mmdb
    if [[ -f $fixture ]]; then
        echo "$fixture"
        return
    fi
    die "no GeoIP database: set GEOIP_DB=path/to/City.mmdb"
}

# --- temp dir, processes, cleanup --------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/makiatto-dnsbench.XXXXXX")
# The server under test (servers run one at a time).
SERVER_PID=""

stop_server() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    if [[ -n $SERVER_PID ]]; then
        stop_server "$SERVER_PID"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until the server on PORT answers the London query with London's
# address, or its PID dies, or 60 s pass.
wait_ready() {
    local port=$1 pid=$2 name=$3
    for _ in $(seq 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local status=0
            wait "$pid" || status=$?
            log "$name exited with status $status before answering; its log:"
            cat "$TMP/$name.log" >&2 || true
            return 1
        fi
        if [[ $(dig +short +tries=1 +time=1 @127.0.0.1 -p "$port" example.com SOA 2>/dev/null) == *hostmaster* ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "$name did not answer within 60 s"
    return 1
}

# --- the zone, written for each server --------------------------------------

write_inputs() {
    local db=$1
    # The query mix: geographic names, fixed records, a missing name.
    cat >"$TMP/queries.txt" <<'EOF'
example.com A
www.example.com A
example.com AAAA
example.com A
example.com MX
example.com TXT
nothing.example.com A
www.example.com AAAA
EOF

    # makiatto: a site with the records and a node.toml with three nodes.
    mkdir -p "$TMP/site/public" "$TMP/makiatto-data"
    echo hello >"$TMP/site/public/index.html"
    cat >"$TMP/site/makiatto.toml" <<'EOF'
[[domain]]
name = "example.com"
path = "public"
aliases = ["www.example.com"]

[[domain.records]]
type = "MX"
value = "mail.example.com"
priority = 10

[[domain.records]]
type = "TXT"
value = "v=spf1 mx -all"
EOF
    cat >"$TMP/node.toml" <<EOF
name = "london"
ipv4 = "192.0.2.1"
ipv6 = "2001:db8::1"
latitude = 51.51
longitude = -0.13

[dns]
geoip_db = "$db"

[[nodes]]
name = "seattle"
ipv4 = "198.51.100.1"
ipv6 = "2001:db8::2"
latitude = 47.61
longitude = -122.33

[[nodes]]
name = "tokyo"
ipv4 = "203.0.113.1"
ipv6 = "2001:db8::3"
latitude = 35.68
longitude = 139.69

# The anchors run without response rate limiting; so does this run.
[limits.dns]
rate = 0
EOF
    # The same node with RRL on at a rate no run reaches: its bookkeeping
    # on every response, nothing limited.
    sed 's/^rate = 0$/rate = 1000000000/' "$TMP/node.toml" >"$TMP/node-rrl.toml"

    # Knot: a zone file with every node (the answer for unknown countries)
    # and a geodb map from country to node.
    cat >"$TMP/example.com.zone" <<'EOF'
$ORIGIN example.com.
$TTL 60
@       3600 IN SOA london.ns hostmaster 1 3600 600 1209600 60
@       3600 IN NS  london.ns
@       3600 IN NS  seattle.ns
@       3600 IN NS  tokyo.ns
london.ns  3600 IN A 192.0.2.1
seattle.ns 3600 IN A 198.51.100.1
tokyo.ns   3600 IN A 203.0.113.1
@       IN A    192.0.2.1
@       IN A    198.51.100.1
@       IN A    203.0.113.1
@       IN AAAA 2001:db8::1
@       IN AAAA 2001:db8::2
@       IN AAAA 2001:db8::3
www     IN A    192.0.2.1
www     IN A    198.51.100.1
www     IN A    203.0.113.1
www     IN AAAA 2001:db8::1
www     IN AAAA 2001:db8::2
www     IN AAAA 2001:db8::3
@       300 IN MX 10 mail
@       300 IN TXT "v=spf1 mx -all"
@       300 IN CAA 0 issue "letsencrypt.org"
mail    300 IN A 192.0.2.25
EOF
    {
        local name
        for name in example.com www.example.com; do
            echo "$name:"
            echo "  - geo: \"GB\""
            echo "    A: 192.0.2.1"
            echo "    AAAA: 2001:db8::1"
            echo "  - geo: \"US\""
            echo "    A: 198.51.100.1"
            echo "    AAAA: 2001:db8::2"
            echo "  - geo: \"CN\""
            echo "    A: 203.0.113.1"
            echo "    AAAA: 2001:db8::3"
            echo "  - geo: \"JP\""
            echo "    A: 203.0.113.1"
            echo "    AAAA: 2001:db8::3"
        done
    } >"$TMP/knot-geo.conf"

    # PowerDNS: the geoip backend's YAML with a per-country service name.
    cat >"$TMP/pdns-zones.yaml" <<'EOF'
domains:
- domain: example.com
  ttl: 60
  records:
    example.com:
      - soa: london.ns.example.com hostmaster.example.com 1 3600 600 1209600 60
      - ns: london.ns.example.com
      - ns: seattle.ns.example.com
      - ns: tokyo.ns.example.com
      - mx: 10 mail.example.com
      - txt: "v=spf1 mx -all"
      - caa: 0 issue "letsencrypt.org"
    london.ns.example.com:
      - a: 192.0.2.1
    seattle.ns.example.com:
      - a: 198.51.100.1
    tokyo.ns.example.com:
      - a: 203.0.113.1
    mail.example.com:
      - a: 192.0.2.25
    gb.node.example.com:
      - a: 192.0.2.1
      - aaaa: 2001:db8::1
    us.node.example.com:
      - a: 198.51.100.1
      - aaaa: 2001:db8::2
    cn.node.example.com:
      - a: 203.0.113.1
      - aaaa: 2001:db8::3
    jp.node.example.com:
      - a: 203.0.113.1
      - aaaa: 2001:db8::3
    all.node.example.com:
      - a: 192.0.2.1
      - a: 198.51.100.1
      - a: 203.0.113.1
      - aaaa: 2001:db8::1
      - aaaa: 2001:db8::2
      - aaaa: 2001:db8::3
  services:
    example.com: [ '%cc.node.example.com', 'all.node.example.com' ]
    www.example.com: [ '%cc.node.example.com', 'all.node.example.com' ]
EOF
}

# --- starting each server -----------------------------------------------------

# Starts makiatto with `node.toml` (RRL off) or `node-rrl.toml` (RRL on).
start_makiatto() {
    local port=$1 config=$2
    taskset -c 0 "$MAKIATTO_BIN" dev --site "$TMP/site" --data "$TMP/makiatto-data" \
        --http "127.0.0.1:$(free_port udp)" --dns "127.0.0.1:$port" --config "$TMP/$config" \
        >"$TMP/makiatto.log" 2>&1 &
    SERVER_PID=$!
}

start_knot() {
    local port=$1 db=$2
    mkdir -p "$TMP/knot"
    cat >"$TMP/knot.conf" <<EOF
server:
    rundir: "$TMP/knot"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    edns-client-subnet: on
database:
    storage: "$TMP/knot"
mod-geoip:
  - id: geo
    config-file: "$TMP/knot-geo.conf"
    ttl: 60
    mode: geodb
    geodb-file: "$db"
    geodb-key: [ country/iso_code ]
template:
  - id: default
    storage: "$TMP"
zone:
  - domain: example.com
    file: "$TMP/example.com.zone"
    module: mod-geoip/geo
EOF
    taskset -c 0 knotd -c "$TMP/knot.conf" >"$TMP/knot.log" 2>&1 &
    SERVER_PID=$!
}

start_pdns() {
    local port=$1 db=$2
    mkdir -p "$TMP/pdns"
    cat >"$TMP/pdns.conf" <<EOF
launch=geoip
geoip-zones-file=$TMP/pdns-zones.yaml
geoip-database-files=mmdb:$db
edns-subnet-processing=yes
local-address=127.0.0.1
local-port=$port
socket-dir=$TMP/pdns
daemon=no
guardian=no
disable-syslog=yes
write-pid=no
receiver-threads=1
distributor-threads=1
webserver=no
api=no
EOF
    # Reads $TMP/pdns.conf.
    taskset -c 0 pdns_server --config-dir="$TMP" >"$TMP/pdns.log" 2>&1 &
    SERVER_PID=$!
}

# Checks each subnet gets its node's address before measuring.
check_answers() {
    local name=$1 port=$2 entry label subnet hex want got
    for entry in "${SUBNETS[@]}"; do
        IFS='|' read -r label subnet hex want <<<"$entry"
        got=$(dig +short +tries=2 +time=2 @127.0.0.1 -p "$port" "+subnet=$subnet" example.com A | sort | tr '\n' ' ')
        if [[ $got != "$want " ]]; then
            log "$name answers $label ($subnet) with '$got', expected '$want'"
        fi
    done
}

# Runs dnsperf once per subnet; prints "qps latency_ms" over all runs.
measure() {
    local port=$1 entry label subnet hex want out
    local total=0 seconds=0 latency_sum=0
    for entry in "${SUBNETS[@]}"; do
        IFS='|' read -r label subnet hex want <<<"$entry"
        out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$TMP/queries.txt" \
            -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -e -E "8:$hex" 2>&1) ||
            { log "dnsperf failed: $out"; return 1; }
        local completed runtime latency
        completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
        runtime=$(awk '/Run time \(s\):/ {print $4}' <<<"$out")
        latency=$(awk '/Average Latency \(s\):/ {print $4}' <<<"$out")
        total=$(awk -v a="$total" -v b="$completed" 'BEGIN {print a + b}')
        seconds=$(awk -v a="$seconds" -v b="$runtime" 'BEGIN {print a + b}')
        latency_sum=$(awk -v a="$latency_sum" -v n="$completed" -v l="$latency" 'BEGIN {print a + n * l}')
    done
    awk -v t="$total" -v s="$seconds" -v l="$latency_sum" \
        'BEGIN { if (s == 0 || t == 0) { print "0 0" } else { printf "%.0f %.3f\n", t / s, 1000 * l / t } }'
}

# --- main ---------------------------------------------------------------------

packages
DB=$(find_geoip_db)
write_inputs "$DB"

if [[ " ${SERVER_LIST[*]} " == *" makiatto"* && -z ${MAKIATTO_BIN:-} ]]; then
    log "building makiatto (release)"
    (cd "$REPO" && cargo build --release --bin makiatto >&2)
    MAKIATTO_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/makiatto"
fi

declare -A QPS LATENCY
for server in "${SERVER_LIST[@]}"; do
    port=$(free_port udp)
    case "$server" in
        makiatto) start_makiatto "$port" node.toml ;;
        makiatto-rrl) start_makiatto "$port" node-rrl.toml ;;
        knot) start_knot "$port" "$DB" ;;
        pdns) start_pdns "$port" "$DB" ;;
    esac
    if ! wait_ready "$port" "$SERVER_PID" "$server"; then
        stop_server "$SERVER_PID"
        SERVER_PID=""
        continue
    fi
    check_answers "$server" "$port"
    log "measuring $server (3 × ${DURATION}s)"
    read -r qps latency < <(measure "$port")
    QPS[$server]=$qps
    LATENCY[$server]=$latency
    stop_server "$SERVER_PID"
    SERVER_PID=""
done

printf '\n%-13s %12s %14s\n' server "queries/s" "latency (ms)"
for server in "${SERVER_LIST[@]}"; do
    printf '%-13s %12s %14s\n' "$server" "${QPS[$server]:-failed}" "${LATENCY[$server]:--}"
done
if [[ -n ${QPS[makiatto]:-} ]]; then
    echo
    for anchor in knot pdns; do
        if [[ -n ${QPS[$anchor]:-} && ${QPS[$anchor]} != 0 ]]; then
            awk -v m="${QPS[makiatto]}" -v a="${QPS[$anchor]}" -v n="$anchor" \
                'BEGIN { printf "makiatto / %-5s %.2fx queries/s\n", n, m / a }'
        fi
    done
fi
if [[ -n ${QPS[makiatto]:-} && ${QPS[makiatto]} != 0 && -n ${QPS[makiatto-rrl]:-} ]]; then
    awk -v r="${QPS[makiatto-rrl]}" -v m="${QPS[makiatto]}" \
        'BEGIN { printf "RRL on / off   %.2fx queries/s\n", r / m }'
fi
