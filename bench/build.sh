#!/usr/bin/env bash
# Build-on-push benchmark: a generated Hugo site (default 300 pages) pushed
# over SSH on loopback to `makiatto dev`, which builds it with `hugo` in its
# bubblewrap sandbox and serves the output. Prints, per round, the time from
# `git push` starting until the new page is served, the build's share of it
# (the duration `makiatto build-log` recorded), and the anchor: the same
# `hugo` run straight on the same checkout, outside any sandbox, with the
# ratio of the sandboxed build to it.
#
#   bench/build.sh                       # 300 pages, 3 rounds
#   bench/build.sh -n 2000 -r 5
#   MAKIATTO_BIN=path/to/makiatto bench/build.sh   # skip the cargo build
#
# Needs git, ssh, ssh-keygen, curl, hugo and bwrap (Debian: git
# openssh-client curl hugo bubblewrap).
set -euo pipefail

PAGES=300
ROUNDS=3
while getopts "n:r:h" opt; do
    case "$opt" in
        n) PAGES=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        h) sed -n 2,16p "$0"; exit 0 ;;
        *) exit 2 ;;
    esac
done

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
for tool in git ssh ssh-keygen curl hugo bwrap; do
    command -v "$tool" >/dev/null || die "missing $tool (Debian: git openssh-client curl hugo bubblewrap)"
done

MAKIATTO_BIN=$(makiatto_bin)

bench_tmpdir build-bench
NODE_PID=""
stop_node() { stop_pid "$NODE_PID"; }
on_exit stop_node

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# A node running as root builds as nobody, which must reach its data dir.
chmod 711 "$TMP"
ssh-keygen -q -t ed25519 -N "" -f "$TMP/key"
export GIT_SSH_COMMAND="ssh -i $TMP/key -o IdentitiesOnly=yes -o UserKnownHostsFile=$TMP/known_hosts -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o LogLevel=ERROR"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

HOST=bench.example
SITE=$TMP/site
mkdir -p "$SITE/layouts/_default" "$SITE/content/posts"
cat >"$SITE/makiatto.toml" <<EOF
[[domain]]
name = "$HOST"

[build]
command = "hugo"
output = "public"
EOF
printf 'baseURL = "http://%s/"\ntitle = "Bench"\n' "$HOST" >"$SITE/hugo.toml"
echo '<html><body>{{ range .Site.RegularPages }}<a href="{{ .RelPermalink }}">{{ .Title }}</a>{{ end }}</body></html>' >"$SITE/layouts/index.html"
echo '<html><body><h1>{{ .Title }}</h1>{{ .Content }}</body></html>' >"$SITE/layouts/_default/single.html"
for i in $(seq "$PAGES"); do
    printf -- '---\ntitle: "Post %d"\n---\n%s\n' "$i" "$(printf 'Some *words* for post %d. ' "$i" "$i" "$i" "$i")" >"$SITE/content/posts/p$i.md"
done
git -C "$SITE" init -q -b main

mkdir -m 711 "$TMP/data"
"$MAKIATTO_BIN" dev --data "$TMP/data" --http 127.0.0.1:0 --dns 127.0.0.1:0 --ssh 127.0.0.1:0 \
    --authorized-key "$TMP/key.pub" >"$TMP/node.out" 2>"$TMP/node.err" &
NODE_PID=$!
for _ in $(seq 300); do grep -q 'http://' "$TMP/node.out" 2>/dev/null && break; sleep 0.05; done
HTTP=$(grep -o 'http://[0-9.:]*/' "$TMP/node.out" | head -1)
SSH=$(grep -o 'ssh://git@[0-9.:]*/' "$TMP/node.out" | head -1)
[[ -n $HTTP && -n $SSH ]] || die "the node did not start: $(cat "$TMP/node.err")"

printf '%-6s %10s %10s %7s %10s %7s\n' round push→served build share bare-hugo ratio
for round in $(seq "$ROUNDS"); do
    marker="round $round $RANDOM"
    printf -- '---\ntitle: "Marker"\n---\n%s\n' "$marker" >"$SITE/content/posts/marker.md"
    git -C "$SITE" add -A && git -C "$SITE" commit -q -m "round $round"
    start=$(now)
    git -C "$SITE" push -q "${SSH}site.git" main 2>"$TMP/push.err" || die "push failed: $(cat "$TMP/push.err")"
    until curl -sf -H "Host: $HOST" "${HTTP}posts/marker/" | grep -q "$marker"; do sleep 0.01; done
    served=$(elapsed "$start" "$(now)")
    build=$("$MAKIATTO_BIN" build-log site --data "$TMP/data" | head -1 | sed -n 's/.* in \([0-9.]*\) s$/\1/p')
    # The anchor: the same hugo on the same tree, no sandbox, no push.
    rm -rf "$TMP/bare" && git clone -q "$SITE" "$TMP/bare"
    bare_start=$(now)
    (cd "$TMP/bare" && hugo >/dev/null)
    bare=$(elapsed "$bare_start" "$(now)")
    awk -v r="$round" -v s="$served" -v b="$build" -v h="$bare" 'BEGIN {
        printf "%-6s %9.3fs %9.3fs %6.0f%% %9.3fs %6.2fx\n", r, s, b, 100 * b / s, h, b / h }'
done
