#!/usr/bin/env bash
# Set up the tools the web target uses (idempotent; run as root by the main set-up script / CI).
#
#   .tools/npm-web/tfjs/package/dist/tf.min.js                        npm @tensorflow/tfjs@4.22.0
#   .tools/npm-web/tfjs-backend-wasm/package/dist/tf-backend-wasm.min.js + tfjs-backend-wasm*.wasm
#                                                                     npm @tensorflow/tfjs-backend-wasm@4.22.0
#   .tools/npm-web/runtime/tf-runtime.js + tfjs-backend-wasm{,-simd}.wasm   what a web bundle ships: tfjs-core +
#       tfjs-converter + the cpu/webgl/wasm backends (.ci/web-runtime/entry.mjs), bundled by esbuild as one ES
#       module whose tf.js state (engine, backend, flags, kernel registry) is its own, never window's: an app's own
#       tf.js is left alone (.ci/web-runtime/build.mjs); installed with `npm ci` from
#       .ci/web-runtime/package-lock.json (exact versions, integrity hashes)
#
# Packages are fetched with `npm pack` (tarball only: no dependency install, no install scripts) and
# unpacked; the web target vendors files from their dist/ folders into every bundle (never a CDN).
# Chromium itself is installed by the main set-up script (Debian's `chromium` package).
# Each step is skipped when its output already exists. Fails loudly on any error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tools="${PACKAGER_TOOLS:-$root/.tools}"
dest_root="$tools/npm-web"
mkdir -p "$dest_root"
log() { printf '[setup-web] %s\n' "$*" >&2; }

TFJS_VERSION=4.22.0

# shellcheck source=npm-fetch.sh
. "$here/npm-fetch.sh"

npm_fetch "@tensorflow/tfjs@$TFJS_VERSION" "$dest_root/tfjs" \
  package/dist/tf.min.js
npm_fetch "@tensorflow/tfjs-backend-wasm@$TFJS_VERSION" "$dest_root/tfjs-backend-wasm" \
  package/dist/tf-backend-wasm.min.js \
  package/dist/tfjs-backend-wasm.wasm \
  package/dist/tfjs-backend-wasm-simd.wasm \
  package/dist/tfjs-backend-wasm-threaded-simd.wasm

for d in tfjs tfjs-backend-wasm; do
  v=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dest_root/$d/package/package.json" | head -n 1)
  [ "$v" = "$TFJS_VERSION" ] || { log "$d: version $v, expected $TFJS_VERSION"; exit 1; }
done

# The runtime bundles ship: built from the npm packages pinned in .ci/web-runtime/package-lock.json.
rt="$dest_root/runtime"
stamp=$(cat "$here/web-runtime/package-lock.json" "$here/web-runtime/entry.mjs" "$here/web-runtime/build.mjs" \
  | sha256sum | cut -c1-16)
if [ -s "$rt/tf-runtime.js" ] && [ "$(cat "$rt/stamp" 2>/dev/null)" = "$stamp" ]; then
  log "runtime: present"
else
  log "runtime: npm ci + esbuild"
  work="$dest_root/runtime-build"
  rm -rf "$work" "$rt.tmp"; mkdir -p "$work" "$rt.tmp"
  cp "$here/web-runtime/package.json" "$here/web-runtime/package-lock.json" "$here/web-runtime/entry.mjs" \
     "$here/web-runtime/build.mjs" "$work/"
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  # esbuild, with tf.js's engine and kernel registry kept private to the bundle (build.mjs says why)
  (cd "$work" && node build.mjs "$rt.tmp/tf-runtime.js")
  cp "$work/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm" \
     "$work/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm" "$rt.tmp/"
  v=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$work/node_modules/@tensorflow/tfjs-core/package.json" | head -n 1)
  [ "$v" = "$TFJS_VERSION" ] || { log "runtime: tfjs-core $v, expected $TFJS_VERSION"; exit 1; }
  printf '{"tfjs": "%s"}\n' "$v" > "$rt.tmp/versions.json"
  echo "$stamp" > "$rt.tmp/stamp"
  rm -rf "$rt"; mv "$rt.tmp" "$rt"; rm -rf "$work"
fi

# The LiteRT.js runtime of --web-runtime litert bundles (its own folder, .tools/npm-web-litert).
"$here/setup-web-litert.sh"

# The consumer apps the web tests build (Vite + TypeScript, webpack 5): their pinned tools, once per lockfile.
"$here/setup-consumer-apps.sh"
log "done: $dest_root"
