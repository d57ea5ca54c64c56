#!/usr/bin/env bash
# Set up the tools the Android checks use (idempotent; run as root by the main set-up script / CI).
#
#   .tools/kotlin-compiler/package/bin/kotlinc   npm kotlin-compiler@2.4.20 (JetBrains' build, runs on Java 17)
#   .tools/node-tflite/package/...               npm node-tflite@0.0.2: libtensorflowlite_c.so + C API headers
#                                                (TFLite 2.2.0; its install script is never run)
#   .tools/android-api/current.txt               AOSP public API signature file (API 29) from Debian's
#                                                source package android-platform-frameworks-base
#   .tools/android-api/android-stubs.jar         compile-only stubs generated from current.txt
#   .tools/kotlin-compiler/kotlinc.jsa           class-data-sharing archive of kotlinc (JVM start-up cache)
#   .tools/kotlin-compiler/kotlinc-server-*.jsa  the same for the warm kotlinc's JVM (packager/targets/android/host/kotlinc_server.py)
#
# Each step is skipped when its output already exists. Fails loudly on any error.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tools="${PACKAGER_TOOLS:-$root/.tools}"
mkdir -p "$tools"
log() { printf '[setup-android] %s\n' "$*" >&2; }

# shellcheck source=npm-fetch.sh
. "$here/npm-fetch.sh"

# 1. Kotlin compiler.
npm_fetch kotlin-compiler@2.4.20 "$tools/kotlin-compiler" package/bin/kotlinc
chmod +x "$tools/kotlin-compiler/package/bin/"* 2>/dev/null || true

# 2. TFLite C library + headers (x86_64 Linux) for running the JNI core on this host.
npm_fetch node-tflite@0.0.2 "$tools/node-tflite" package/package.json
if [ -z "$(find "$tools/node-tflite" -name libtensorflowlite_c.so -print -quit)" ]; then
  log "node-tflite: libtensorflowlite_c.so not found in the package"; exit 1
fi
if [ -z "$(find "$tools/node-tflite" -path '*tensorflow/lite/c/c_api.h' -print -quit)" ]; then
  log "node-tflite: tensorflow/lite/c/c_api.h not found in the package"; exit 1
fi

# 3. AOSP api/current.txt from Debian's source package.
api="$tools/android-api"
mkdir -p "$api"
if [ ! -s "$api/current.txt" ]; then
  src_list=/etc/apt/sources.list.d/packager-bookworm-src.sources
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    log "adding a deb-src entry for bookworm main ($src_list)"
    cat > "$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
  fi
  tmp=$(mktemp -d)
  chmod 777 "$tmp"
  log "apt-get source --download-only android-platform-frameworks-base (large; a few minutes)"
  (cd "$tmp" && apt-get source -qq --download-only android-platform-frameworks-base)
  orig=$(ls "$tmp"/android-platform-frameworks-base_*.orig.tar.* | head -n 1)
  # The top-level api/current.txt (the tarball may or may not have a leading folder; sub-projects such as
  # nfc-extras/api/current.txt have their own, so take the shortest matching path).
  member=$(tar -tf "$orig" | grep -E '^(\./)?([^/]+/)?api/current\.txt$' | awk '{ print length($0), $0 }' \
           | sort -n | head -n 1 | cut -d' ' -f2-)
  [ -n "$member" ] || { log "api/current.txt not found in $orig"; exit 1; }
  tar -xf "$orig" -C "$tmp" "$member"
  cp "$tmp/$member" "$api/current.txt.tmp" && mv "$api/current.txt.tmp" "$api/current.txt"
  echo "$(basename "$orig")" > "$api/SOURCE"
  rm -rf "$tmp"
fi

# 4. Android API stub jar.
if [ ! -s "$api/android-stubs.jar" ] || [ "$api/current.txt" -nt "$api/android-stubs.jar" ] \
   || [ -n "$(find "$root/packager/targets/android/host/stubs" -name '*.py' -newer "$api/android-stubs.jar")" ]; then
  log "generating android-stubs.jar from current.txt"
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m packager.targets.android.host.stubs \
    "$api/current.txt" "$api/android-stubs.jar"
fi
# 5. A class-data-sharing archive of kotlinc's own classes (a JVM start-up cache: kotlin-compiles takes about
#    1 s less CPU with it). Written by one compile of a small file; rebuilt when kotlinc or the JDK changes. The
#    JVM ignores an archive that does not match, so a stale one only costs that second.
warm_kt() {
  cat <<'KT'
package warm

import android.graphics.Bitmap
import android.content.Context

class Warm(private val context: Context) : AutoCloseable {
    external fun run(input: FloatArray): FloatArray
    fun pixels(b: Bitmap): IntArray = IntArray(b.width * b.height).also { b.getPixels(it, 0, b.width, 0, 0, b.width, b.height) }
    override fun close() { listOf(1, 2, 3).map { it * 2 }.sum() }
}
KT
}
jsa="$tools/kotlin-compiler/kotlinc.jsa"
java_bin=$(readlink -f "$(command -v java)")
if [ ! -s "$jsa" ] || [ "$tools/kotlin-compiler/package/bin/kotlinc" -nt "$jsa" ] || [ "$java_bin" -nt "$jsa" ]; then
  log "writing kotlinc's class-data-sharing archive"
  tmp=$(mktemp -d)
  warm_kt > "$tmp/Warm.kt"
  JAVA_OPTS="-Xss4m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ArchiveClassesAtExit=$jsa.tmp -Xlog:disable" \
    "$tools/kotlin-compiler/package/bin/kotlinc" -jvm-target 17 -cp "$api/android-stubs.jar" -d "$tmp/out" "$tmp/Warm.kt"
  mv "$jsa.tmp" "$jsa"
  rm -rf "$tmp"
fi
# 5b. The same for the warm kotlinc's JVM (packager.targets.android.host.kotlinc_server: its class path differs), by the same
#     compile; written when missing or older than kotlinc or the JDK.
tmp=$(mktemp -d)
warm_kt > "$tmp/Warm.kt"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PACKAGER_TOOLS="$tools" "${PYTHON:-python3}" -c '
import sys
from pathlib import Path
from packager.targets.android.host.kotlinc_server import write_class_archive
print(f"[setup-android] kotlinc server class archive: {write_class_archive(Path(sys.argv[1]))}", file=sys.stderr)
' "$tmp/Warm.kt"
rm -rf "$tmp"
# 6. The JVM runner of the host JNI check (it reaches the module's classes by reflection: compiled once).
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PACKAGER_TOOLS="$tools" "${PYTHON:-python3}" -c '
import sys, tempfile
from pathlib import Path
from packager.targets.android.host.jvm_runner import compile_runner
with tempfile.TemporaryDirectory() as work:
    res, where = compile_runner(Path(work))
    sys.exit(f"javac of the host runner failed: {res.output}" if res.returncode else 0)
'
log "done: $tools"
