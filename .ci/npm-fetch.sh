# Sourced by the .ci/setup-*.sh scripts (which define `log`).
# npm_fetch <name@version> <dest-dir> <file-that-must-exist-after>...
# Fetches a package tarball from the npm registry with `npm pack` (no dependency install, no install
# scripts), unpacks it beside <dest-dir> and moves it into place only when every named file is there.
# Skipped when all the files already exist.
npm_fetch() {
  local spec=$1 dest=$2; shift 2
  local missing=0 f
  for f in "$@"; do [ -s "$dest/$f" ] || missing=1; done
  if [ "$missing" = 0 ]; then log "$spec: present"; return; fi
  log "$spec: npm pack"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  tar -xzf "$tmp"/*.tgz -C "$dest.tmp"
  rm -rf "$tmp"
  for f in "$@"; do
    [ -s "$dest.tmp/$f" ] || { log "$spec: $f missing after unpacking"; exit 1; }
  done
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}
