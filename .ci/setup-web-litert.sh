#!/usr/bin/env bash
# Set up the LiteRT.js runtime a `--web-runtime litert` web bundle ships (idempotent; called by setup-web.sh).
#
#   .tools/npm-web-litert/runtime/litert-runtime.js     @litertjs/core 2.5.3 + @litertjs/wasm-utils 2.5.3 bundled
#       by esbuild as one ES module (.ci/web-litert/entry.mjs): core's dist/index.js imports wasm-utils by bare name
#   .tools/npm-web-litert/runtime/litert_wasm_internal.{js,wasm}          single-thread relaxed-SIMD build (what
#       current Chromium loads), and litert_wasm_compat_internal.{js,wasm} (browsers without relaxed SIMD)
#   .tools/npm-web-litert/runtime/versions.json, stamp
#
# Installed with `npm ci --ignore-scripts` from .ci/web-litert/package-lock.json (exact versions, integrity hashes).
# A folder of its own (npm-web-litert): the tf.js runtime's npm-web/ is left as it is. Threaded and JSPI builds
# are not shipped (threads need cross-origin isolation; JSPI is for WebNN / partitioned WebGPU).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tools="${PACKAGER_TOOLS:-$root/.tools}"
dest_root="$tools/npm-web-litert"
mkdir -p "$dest_root"
log() { printf '[setup-web-litert] %s\n' "$*" >&2; }

LITERTJS_VERSION=2.5.3
rt="$dest_root/runtime"
stamp=$(cat "$here/web-litert/package-lock.json" "$here/web-litert/entry.mjs" | sha256sum | cut -c1-16)
if [ -s "$rt/litert-runtime.js" ] && [ "$(cat "$rt/stamp" 2>/dev/null)" = "$stamp" ]; then
  log "runtime: present"
  exit 0
fi
log "runtime: npm ci + esbuild (@litertjs/core $LITERTJS_VERSION)"
work="$dest_root/runtime-build"
rm -rf "$work" "$rt.tmp"; mkdir -p "$work" "$rt.tmp"
cp "$here/web-litert/package.json" "$here/web-litert/package-lock.json" "$here/web-litert/entry.mjs" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
"$work/node_modules/.bin/esbuild" "$work/entry.mjs" --bundle --format=esm --minify --platform=browser \
  --target=es2020 --legal-comments=none --log-level=warning --outfile="$rt.tmp/litert-runtime.js"
for f in litert_wasm_internal.js litert_wasm_internal.wasm litert_wasm_compat_internal.js \
         litert_wasm_compat_internal.wasm; do
  cp "$work/node_modules/@litertjs/core/wasm/$f" "$rt.tmp/"
done
v=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$work/node_modules/@litertjs/core/package.json" | head -n 1)
[ "$v" = "$LITERTJS_VERSION" ] || { log "runtime: @litertjs/core $v, expected $LITERTJS_VERSION"; exit 1; }
printf '{"litertjs": "%s"}\n' "$v" > "$rt.tmp/versions.json"
echo "$stamp" > "$rt.tmp/stamp"
rm -rf "$rt"; mv "$rt.tmp" "$rt"; rm -rf "$work"
log "done: $rt"
