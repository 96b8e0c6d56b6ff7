#!/usr/bin/env bash
# Builds the guest fixtures in tests/wasm/src into the committed
# components in tests/wasm/*.wasm. The tests use the committed files, so
# this runs only when a fixture changes.
#
# Needs: clang with wasi-libc (Debian: clang lld wasi-libc
# libclang-rt-14-dev-wasm32), `cargo install wit-bindgen-cli wasm-tools`,
# and the WASI preview1 adapter and wasi:http WIT that cargo has already
# downloaded for this project (`cargo fetch` brings them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"

find_one() {
    local found
    found="$(ls -d $1 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$found" ]]; then
        echo "build.sh: $2 not found under $registry; run \`cargo fetch\` in $repo first" >&2
        exit 1
    fi
    printf '%s\n' "$found"
}
adapter="$(find_one "$registry/*/wasi-preview1-component-adapter-provider-*/artefacts/wasi_snapshot_preview1.reactor.wasm" "the WASI preview1 reactor adapter")"
http_wit="$(find_one "$registry/*/wasmtime-wasi-http-*/wit/deps" "the wasi:http WIT definitions")"

for tool in clang wit-bindgen wasm-tools; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (see the top of this script)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Bindings per world.
wit-bindgen c "$repo/wit/http" --world http --out-dir "$work/http" >/dev/null
wit-bindgen c "$repo/wit/transform" --world transform --out-dir "$work/transform" >/dev/null
mkdir -p "$work/ssrf-wit/deps/makiatto-http"
cp "$here/wit/ssrf.wit" "$work/ssrf-wit/"
cp "$repo/wit/http/world.wit" "$work/ssrf-wit/deps/makiatto-http/"
cp "$http_wit"/*.wit "$work/ssrf-wit/deps/"
wit-bindgen c "$work/ssrf-wit" --world ssrf --out-dir "$work/ssrf" >/dev/null

# build NAME WORLD: src/NAME.c against WORLD's bindings → NAME.wasm
build() {
    local name="$1" world="$2"
    clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Werror \
        -Wno-unused-function \
        -I "$work/$world" -I "$here/src" \
        "$here/src/$name.c" "$work/$world/$world.c" "$work/$world/${world}_component_type.o" \
        -o "$work/$name.core.wasm"
    wasm-tools component new "$work/$name.core.wasm" \
        --adapt "wasi_snapshot_preview1=$adapter" -o "$here/$name.wasm"
    wasm-tools validate "$here/$name.wasm"
    echo "built tests/wasm/$name.wasm ($(stat -c %s "$here/$name.wasm") bytes)"
}

for name in hello geo echo spin bomb files; do
    build "$name" http
done
build ssrf ssrf
for name in inject stamp broken; do
    build "$name" transform
done
