#!/usr/bin/env bash
# What a large `_redirects` costs the request path: the same makiatto binary
# serves the same files twice, once with a 2,000-rule `_redirects` (1,999
# redirects each under its own first path segment, then the usual SPA
# fallback `/* /index.html 200`) and once with none. The node is pinned to
# CPU 0 and wrk to CPU 1; the two runs alternate for each round. Prints
# requests/s for a file request (which every rule set must let through to the
# file), a redirect matched by the 1,999th rule, and the ratio of the
# file request with rules to without.
#
#   bench/rules.sh                       # debug build of this checkout
#   bench/rules.sh -d 20 -r 5            # longer runs, more rounds
#   MAKIATTO_BIN=path/to/makiatto bench/rules.sh
set -euo pipefail

DURATION=10
CONNECTIONS=50
ROUNDS=3
RULES=2000
while getopts "d:c:r:n:h" opt; do
    case "$opt" in
        d) DURATION=$OPTARG ;;
        c) CONNECTIONS=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        n) RULES=$OPTARG ;;
        h)
            echo "usage: bench/rules.sh [-d SECONDS] [-c CONNECTIONS] [-r ROUNDS] [-n RULES]"
            exit 0
            ;;
        *) exit 2 ;;
    esac
done

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

for tool in wrk curl taskset; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install wrk curl util-linux)"
done

BIN=$(makiatto_bin debug)

bench_tmpdir rules-bench
SERVER_PID=""
stop_current() { stop_pid "$SERVER_PID"; }
on_exit stop_current

# Two sites with the same files; one also has the rule file.
for site in plain rules; do
    mkdir -p "$TMP/$site"
    printf '<!doctype html><title>bench</title><p>index</p>\n' >"$TMP/$site/index.html"
    printf '<!doctype html><title>page</title><p>a page</p>\n' >"$TMP/$site/page.html"
done
{
    echo "# generated: $RULES rules"
    for ((i = 1; i < RULES; i++)); do
        printf '/old-%d/*  /new-%d/:splat  301\n' "$i" "$i"
    done
    echo "/*  /index.html  200"
} >"$TMP/rules/_redirects"
LAST=$((RULES - 1))

# Starts the node on SITE and sets SERVER_PID and URL.
start() {
    local site=$1 port
    port=$(free_port)
    rm -rf "$TMP/data-$site"
    taskset -c 0 "$BIN" dev --site "$TMP/$site" --data "$TMP/data-$site" \
        --http "127.0.0.1:$port" --dns 127.0.0.1:0 --ssh 127.0.0.1:0 \
        >"$TMP/log-$site" 2>&1 </dev/null &
    SERVER_PID=$!
    URL=http://127.0.0.1:$port
    wait_http "$URL/page.html" "$SERVER_PID" makiatto || die "makiatto did not serve: $(tail -5 "$TMP/log-$site")"
}

stop() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

# Requests/s of wrk on URL.
rps() {
    run_wrk "$1" "$DURATION"
    echo "$WRK_RPS"
}

declare -a PLAIN_FILE RULES_FILE RULES_REDIRECT
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS: no rules"
    start plain
    rps "$URL/page.html" >/dev/null # warm-up
    PLAIN_FILE+=("$(rps "$URL/page.html")")
    stop
    log "round $round/$ROUNDS: $RULES rules"
    start rules
    status=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/old-$LAST/x")
    [[ $status == "301 $URL/new-$LAST/x" ]] || die "rule $LAST answered '$status'"
    rps "$URL/page.html" >/dev/null # warm-up
    RULES_FILE+=("$(rps "$URL/page.html")")
    RULES_REDIRECT+=("$(rps "$URL/old-$LAST/x")")
    stop
done

plain=$(printf '%s\n' "${PLAIN_FILE[@]}" | median)
with=$(printf '%s\n' "${RULES_FILE[@]}" | median)
redirect=$(printf '%s\n' "${RULES_REDIRECT[@]}" | median)
printf '\nmedian of %d rounds, %d s each, %d connections, binary %s\n' \
    "$ROUNDS" "$DURATION" "$CONNECTIONS" "$BIN"
printf '%-44s %12s\n' "request" "req/s"
printf '%-44s %12.0f\n' "/page.html, no _redirects" "$plain"
printf '%-44s %12.0f\n' "/page.html, $RULES-rule _redirects" "$with"
printf '%-44s %12.0f\n' "/old-$LAST/x (rule $LAST, 301), same file" "$redirect"
echo "ratio, file request with rules / without: $(ratio "$with" "$plain")"
