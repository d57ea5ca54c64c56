#!/usr/bin/env bash
# Install the tools of the consumer apps the web tests build (tests/consumer_apps/<app>/: a Vite + TypeScript
# app, a webpack 5 app) with `npm ci` from their committed package-lock.json (exact versions, integrity hashes).
# Idempotent: each app's node_modules is kept under $PACKAGER_CONSUMER_APPS (default .tools/consumer-apps) in a
# folder keyed by the hash of its package.json + package-lock.json, so a changed lockfile installs afresh and an
# unchanged one never reinstalls. Called by .ci/setup-web.sh and, when the folder is missing, by the tests.
#
#   .ci/setup-consumer-apps.sh            every app
#   .ci/setup-consumer-apps.sh vite_ts    one app; prints the folder holding its node_modules
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
apps="$root/tests/consumer_apps"
cache="${PACKAGER_CONSUMER_APPS:-${PACKAGER_TOOLS:-$root/.tools}/consumer-apps}"
log() { printf '[setup-consumer-apps] %s\n' "$*" >&2; }

install_app() {
  local app=$1 src="$apps/$1" key dest work
  key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
  dest="$cache/$app-$key"
  if [ -d "$dest/node_modules" ]; then
    log "$app: present ($dest)"
  else
    log "$app: npm ci"
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.$app.XXXXXX")
    cp "$src/package.json" "$src/package-lock.json" "$work/"
    (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    mv -T "$work" "$dest" 2>/dev/null || { rm -rf "$work"; [ -d "$dest/node_modules" ]; }  # lost a race: fine
  fi
  printf '%s\n' "$dest"
}

if [ $# -gt 0 ]; then
  for a in "$@"; do install_app "$a"; done
else
  for d in "$apps"/*/; do
    [ -f "$d/package-lock.json" ] && install_app "$(basename "$d")" >/dev/null
  done
fi
