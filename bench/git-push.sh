#!/usr/bin/env bash
# Side-by-side `git push` benchmark: the same repository pushed over SSH on
# loopback to makiatto (russh + receive-pack on gix, deploying on push) and
# to OpenSSH's sshd running git-receive-pack (storing only). A generated
# repository (default 10,000 files, 100 MB, binary) is pushed first, then a
# one-file commit on top. Prints wall time for each push, the ratio, and for
# makiatto the time from push start until the new file is served. With -d,
# the repository holds a copy of a given directory instead (a real site,
# such as the Rust book), and the table adds the bytes makiatto serves for
# the whole tree after the first push: what a browser gets (brotli when
# stored), what a gzip-only client gets, and the files' own size.
#
#   bench/git-push.sh                    # 10,000 files, 100 MB, 3 rounds
#   bench/git-push.sh -n 2000 -m 20      # a smaller repository
#   bench/git-push.sh -d ~/.rustup/toolchains/*/share/doc/rust/html/book
#   MAKIATTO_BIN=path/to/makiatto bench/git-push.sh   # skip the cargo build
#
# Each round starts both servers afresh. Figures are medians over rounds.
# Makiatto's push includes its deploy (every file stored in its CAS and the
# revision activated), which OpenSSH + git-receive-pack does not do.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/git-push.sh [-n FILES] [-m MEGABYTES] [-d DIR] [-r ROUNDS]

  -n FILES       files in the generated repository (default 10000)
  -m MEGABYTES   total size of those files (default 100)
  -d DIR         push a copy of DIR instead of a generated repository, and
                 report the bytes served for its files
  -r ROUNDS      rounds; the table shows medians (default 3)

Environment: MAKIATTO_BIN uses that binary instead of building one with
`cargo build --release --bin makiatto`; CARGO_TARGET_DIR is respected.
EOF
}

FILES=10000
MEGABYTES=100
ROUNDS=3
SITE_DIR=""
while getopts "n:m:d:r:h" opt; do
    case "$opt" in
        n) FILES=$OPTARG ;;
        m) MEGABYTES=$OPTARG ;;
        d) SITE_DIR=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# --- dependencies ------------------------------------------------------------

PACKAGES=(openssh-server openssh-client git curl perl iproute2)

# --- temp dir, processes, cleanup --------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/makiatto-git-bench.XXXXXX")
# The servers of the current round.
MAKI_PID=""
SSHD_PID=""

stop() { stop_pid "$1"; }

cleanup() {
    stop "$MAKI_PID"
    stop "$SSHD_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# --- the client side ---------------------------------------------------------

KEY=$TMP/id_ed25519
KNOWN=$TMP/known_hosts
export GIT_SSH_COMMAND="ssh -i $KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=$KNOWN -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o LogLevel=ERROR"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

# A repository of $FILES binary files totalling $MEGABYTES MB (no
# makiatto.toml: makiatto serves the whole tree as localhost).
generate_repo() {
    local dir=$1
    mkdir -p "$dir"
    git -C "$dir" init -q -b main
    # No background `git gc --auto` or maintenance after a commit: it holds
    # locks (HEAD.lock) while `round` copies the repository, and it would
    # compete with the pushes being timed.
    git -C "$dir" config gc.auto 0
    git -C "$dir" config maintenance.auto false
    perl -e '
        my ($dir, $n, $total) = @ARGV;
        my $size = int($total / $n);
        open(my $rand, "<:raw", "/dev/urandom") or die "urandom: $!";
        for my $i (0 .. $n - 1) {
            my $sub = sprintf("%s/d%03d", $dir, $i % 100);
            mkdir $sub;
            read($rand, my $bytes, $size) == $size or die "short read";
            open(my $f, ">:raw", "$sub/f$i.bin") or die "$sub/f$i.bin: $!";
            print $f $bytes;
            close $f;
        }
    ' "$dir" "$FILES" "$((MEGABYTES * 1024 * 1024))"
    git -C "$dir" add -A
    git -C "$dir" commit -q -m "generated: $FILES files, $MEGABYTES MB"
}

# A repository holding a copy of directory $1 (without any .git inside).
copy_repo() {
    local src=$1 dir=$2
    [[ -d $src ]] || die "no directory $src"
    mkdir -p "$dir"
    git -C "$dir" init -q -b main
    git -C "$dir" config gc.auto 0
    git -C "$dir" config maintenance.auto false
    (cd "$src" && tar --exclude=.git -cf - .) | tar -C "$dir" -xf -
    git -C "$dir" add -A
    FILES=$(git -C "$dir" ls-files | wc -l)
    local bytes
    bytes=$(git -C "$dir" ls-files -z | xargs -0 -I{} stat -c %s "$dir/{}" | awk '{ s += $1 } END { print s }')
    MEGABYTES=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
    git -C "$dir" commit -q -m "copy of $src"
}

# Prints "browser gzip identity missing": the bytes makiatto on HTTP port $2
# sends for the files of work tree $1, asked with a browser's
# Accept-Encoding, with gzip only, and with none; then how many files did
# not answer 200 (such as dot files, which are not served).
served_bytes() {
    local work=$1 port=$2 config=$TMP/curl.cfg accept total missing
    git -C "$work" ls-files -z | perl -0 -ne '
        chomp;
        next if $_ eq "makiatto.toml";
        s/([^A-Za-z0-9_.~\/-])/sprintf("%%%02X", ord $1)/ge;
        print "url = \"http://127.0.0.1:'"$port"'/$_\"\noutput = \"/dev/null\"\n";
    ' >"$config"
    for accept in "gzip, deflate, br, zstd" "gzip" "identity"; do
        curl -sS -H "Host: localhost" -H "Accept-Encoding: $accept" \
            -w '%{http_code} %{size_download}\n' -K "$config" >"$TMP/sizes"
        missing=$(awk '$1 != 200' "$TMP/sizes" | wc -l)
        total=$(awk '$1 == 200 { s += $2 } END { print s + 0 }' "$TMP/sizes")
        printf '%s ' "$total"
    done
    echo "$missing"
}

# --- makiatto ----------------------------------------------------------------

makiatto_bin() {
    local bin=${MAKIATTO_BIN:-}
    if [[ -z $bin ]]; then
        log "building makiatto (release)"
        (cd "$REPO" && cargo build --release --quiet --bin makiatto) >&2
        bin=${CARGO_TARGET_DIR:-$REPO/target}/release/makiatto
    fi
    [[ -x $bin ]] || die "no makiatto binary at $bin"
    echo "$bin"
}

MAKI_HTTP=""
MAKI_SSH=""
start_makiatto() {
    local data=$TMP/maki-$1
    MAKI_HTTP=$(free_port)
    MAKI_SSH=$(free_port)
    HOME=$TMP "$MAKIATTO" dev --data "$data" --http "127.0.0.1:$MAKI_HTTP" \
        --ssh "127.0.0.1:$MAKI_SSH" --dns 127.0.0.1:0 --authorized-key "$KEY.pub" \
        >"$TMP/maki.out" 2>"$TMP/maki.err" &
    MAKI_PID=$!
    wait_port "$MAKI_SSH"
}

# --- OpenSSH + git-receive-pack ---------------------------------------------

SSHD_PORT=""
start_sshd() {
    local dir=$TMP/sshd-$1
    mkdir -p "$dir"
    SSHD_PORT=$(free_port)
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key"
    cp "$KEY.pub" "$dir/authorized_keys"
    git init -q --bare "$dir/repo.git"
    cat >"$dir/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $dir/sshd.pid
EOF
    # sshd run by root wants its privilege separation directory.
    if ((EUID == 0)); then mkdir -p /run/sshd; fi
    /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
    SSHD_PID=$!
    wait_port "$SSHD_PORT"
    SSHD_REPO=$dir/repo.git
}

# --- one round ---------------------------------------------------------------

# CPU seconds (user + system) process $1 has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# Prints "maki_full maki_one maki_served sshd_full sshd_one maki_cpu".
round() {
    local n=$1 work=$TMP/work-$1
    rm -rf "$work"
    cp -a "$TMP/base" "$work"
    start_makiatto "$n"
    start_sshd "$n"
    local user
    user=$(id -un)
    local maki_url="ssh://git@127.0.0.1:$MAKI_SSH/bench.git"
    local sshd_url="ssh://$user@127.0.0.1:$SSHD_PORT$SSHD_REPO"

    local t0 t1 maki_full sshd_full maki_one sshd_one served maki_cpu
    t0=$(now); git -C "$work" push -q "$maki_url" main 2>"$TMP/push.err" || { cat "$TMP/push.err" >&2; die "push to makiatto failed"; }
    t1=$(now); maki_full=$(elapsed "$t0" "$t1")
    # Startup included; on a shared machine this says more than wall time.
    maki_cpu=$(cpu_seconds "$MAKI_PID")
    if [[ -n $SITE_DIR ]]; then
        served_bytes "$work" "$MAKI_HTTP" >"$TMP/served-$n"
    fi
    t0=$(now); git -C "$work" push -q "$sshd_url" main 2>"$TMP/push.err" || { cat "$TMP/push.err" >&2; die "push to sshd failed"; }
    t1=$(now); sshd_full=$(elapsed "$t0" "$t1")

    echo "round $n" >"$work/new-$n.txt"
    git -C "$work" add -A
    git -C "$work" commit -q -m "one file"
    t0=$(now); git -C "$work" push -q "$maki_url" main 2>"$TMP/push.err" || { cat "$TMP/push.err" >&2; die "push to makiatto failed"; }
    t1=$(now); maki_one=$(elapsed "$t0" "$t1")
    # Poll until the new file is served (the push returns after activation,
    # so this normally answers at once).
    for _ in $(seq 1000); do
        if curl -fsS -H "Host: localhost" "http://127.0.0.1:$MAKI_HTTP/new-$n.txt" 2>/dev/null | grep -q "round $n"; then
            break
        fi
        sleep 0.01
    done
    served=$(elapsed "$t0" "$(now)")
    t0=$(now); git -C "$work" push -q "$sshd_url" main 2>"$TMP/push.err" || { cat "$TMP/push.err" >&2; die "push to sshd failed"; }
    t1=$(now); sshd_one=$(elapsed "$t0" "$t1")

    stop "$MAKI_PID"; MAKI_PID=""
    stop "$SSHD_PID"; SSHD_PID=""
    rm -rf "$work" "$TMP/maki-$n" "$TMP/sshd-$n"
    echo "$maki_full $maki_one $served $sshd_full $sshd_one $maki_cpu"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- main --------------------------------------------------------------------

ensure_packages "${PACKAGES[@]}" -- ssh
MAKIATTO=$(makiatto_bin)
ssh-keygen -q -t ed25519 -N "" -f "$KEY"
if [[ -n $SITE_DIR ]]; then
    log "copying $SITE_DIR"
    copy_repo "$SITE_DIR" "$TMP/base"
else
    log "generating $FILES files, $MEGABYTES MB"
    generate_repo "$TMP/base"
fi

RESULTS=$TMP/results
: >"$RESULTS"
for n in $(seq "$ROUNDS"); do
    log "round $n/$ROUNDS"
    round "$n" >>"$RESULTS"
done

col() { awk -v c="$1" '{ print $c }' "$RESULTS" | median; }
maki_full=$(col 1); maki_one=$(col 2); served=$(col 3); sshd_full=$(col 4); sshd_one=$(col 5)
maki_cpu=$(col 6)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }'; }

printf '\n%-34s %12s %14s %10s\n' "push (median of $ROUNDS)" "makiatto" "openssh+git" "ratio"
printf '%-34s %11ss %13ss %10s\n' "$FILES files, $MEGABYTES MB (first push)" "$maki_full" "$sshd_full" "$(ratio "$maki_full" "$sshd_full")"
printf '%-34s %11ss %13ss %10s\n' "one-file commit on top" "$maki_one" "$sshd_one" "$(ratio "$maki_one" "$sshd_one")"
printf '%-34s %11ss %14s\n' "push start → new file served" "$served" "-"
printf '%-34s %11ss %14s\n' "makiatto CPU until first push done" "$maki_cpu" "-"
if [[ -n $SITE_DIR ]]; then
    read -r browser gzip identity missing <"$TMP/served-1"
    printf '\nbytes served for the %s files after the first push (%s more did not answer 200):\n' \
        "$((FILES - missing))" "$missing"
    printf '  %-44s %12s\n' "Accept-Encoding: gzip, deflate, br, zstd" "$browser"
    printf '  %-44s %12s\n' "Accept-Encoding: gzip" "$gzip"
    printf '  %-44s %12s\n' "identity" "$identity"
fi
printf '\nratio = openssh+git time / makiatto time (above 1: makiatto is faster).\n'
printf 'makiatto times include deploying the revision; openssh+git only stores it.\n'
