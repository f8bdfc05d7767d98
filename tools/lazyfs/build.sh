#!/usr/bin/env bash
# Builds LazyFS (see README.md beside this script) from the vendored tarball, offline except
# for Debian packages, and prints the path of the binary on its last line of stdout.
#
#   bash tools/lazyfs/build.sh [BUILD_DIR]
#
# BUILD_DIR defaults to $LAZYFS_BUILD_DIR, else tools/lazyfs/.build (ignored by git; it
# travels with a copy of the tree, so CI's non-root leg reuses what the root leg built).
# The binary is cached there (BUILD_DIR/bin/lazyfs, with libpcache.so.0 beside it and an
# $ORIGIN rpath, so the directory can be copied) and rebuilt only if the tarball changes.
#
# Exit status: 0 built (or cached): the path is printed;
#              3 skipped: this machine cannot run or build LazyFS; the last line of
#                stdout is "skipped: <why>" (no /dev/fuse, not Debian, packages missing
#                and not root, apt-get failed, e.g. no network);
#              1 the build itself failed (a real error: see BUILD_DIR/build.log).
# Root installs the missing packages with apt-get: libfuse3-dev fuse3 cmake g++
# libtoml11-dev libspdlog-dev (about 30 MB; Debian's toml11 and spdlog replace the copies
# the upstream CMake files would download).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARBALL="$HERE/lazyfs-a47a5ba.tar.gz"
OUT="${1:-${LAZYFS_BUILD_DIR:-$HERE/.build}}"
BIN="$OUT/bin/lazyfs"
PACKAGES=(libfuse3-dev fuse3 cmake g++ libtoml11-dev libspdlog-dev)

skip() {
  echo "lazyfs: skipped: $*" >&2
  echo "skipped: $*"
  exit 3
}

[ -e /dev/fuse ] || skip "no /dev/fuse on this machine (FUSE is not available, e.g. a container without it)"
[ "$(uname -s)" = Linux ] || skip "LazyFS needs Linux"
if [ "$(id -u)" -ne 0 ] && ! { [ -r /dev/fuse ] && [ -w /dev/fuse ]; }; then
  skip "/dev/fuse is not readable and writable by $(id -un) (mode $(stat -c %A /dev/fuse)): FUSE mounts need root here"
fi
if [ "$(id -u)" -ne 0 ] && ! command -v fusermount3 >/dev/null; then
  skip "not root and no fusermount3 (package fuse3) to mount as $(id -un)"
fi

SUM="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
if [ -x "$BIN" ] && [ -f "$OUT/bin/lazyfs.sum" ] && [ "$(cat "$OUT/bin/lazyfs.sum")" = "$SUM" ] && [ -f "$OUT/bin/libpcache.so.0" ]; then
  echo "$BIN"
  exit 0
fi

command -v dpkg-query >/dev/null || skip "not a Debian-like system (no dpkg-query): install ${PACKAGES[*]} equivalents and build by hand"
need=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || skip "Debian packages missing (${need[*]}) and not root to install them"
  command -v apt-get >/dev/null || skip "Debian packages missing (${need[*]}) and no apt-get"
  echo "lazyfs: installing ${need[*]} with apt-get" >&2
  start=$SECONDS
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >&2; then
    skip "apt-get could not install ${need[*]} (no network or no Debian mirror?)"
  fi
  echo "lazyfs: packages installed in $((SECONDS - start)) s" >&2
fi

mkdir -p "$OUT"
# One build at a time per directory (two test files or two legs may ask at once).
exec 9>"$OUT/.lock"
flock 9
if [ -x "$BIN" ] && [ -f "$OUT/bin/lazyfs.sum" ] && [ "$(cat "$OUT/bin/lazyfs.sum")" = "$SUM" ]; then
  echo "$BIN"
  exit 0
fi

LOG="$OUT/build.log"
: >"$LOG"
start=$SECONDS
echo "lazyfs: building in $OUT (log: $LOG)" >&2
rm -rf "$OUT/src" "$OUT/bin" && mkdir -p "$OUT/src"
tar -xzf "$TARBALL" -C "$OUT/src"
SHIM="-DFETCHCONTENT_SOURCE_DIR_TOML=$HERE/shims/toml -DFETCHCONTENT_SOURCE_DIR_SPDLOG=$HERE/shims/spdlog -DFETCHCONTENT_FULLY_DISCONNECTED=ON"
DEFS="-DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL"
JOBS="$(nproc 2>/dev/null || echo 2)"
if ! (
  set -e
  cd "$OUT/src/libs/libpcache" && mkdir -p build && cd build
  cmake $SHIM ..
  cmake --build . -j"$JOBS"
  cd "$OUT/src/lazyfs" && mkdir -p build && cd build
  # No build-tree rpath: the binary finds libpcache.so.0 beside itself ($ORIGIN).
  cmake $SHIM -DLAZYFS_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="$DEFS" -DCMAKE_CXX_STANDARD_LIBRARIES="-lspdlog -lfmt" \
    -DCMAKE_SKIP_BUILD_RPATH=ON '-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath,$ORIGIN' ..
  cmake --build . -j"$JOBS"
) >>"$LOG" 2>&1; then
  tail -30 "$LOG" >&2
  echo "lazyfs: build failed (full log: $LOG)" >&2
  exit 1
fi
mkdir -p "$OUT/bin"
cp "$OUT/src/libs/libpcache/build/libpcache.so.0" "$OUT/bin/"
cp "$OUT/src/lazyfs/build/lazyfs" "$OUT/bin/lazyfs.tmp"
mv "$OUT/bin/lazyfs.tmp" "$BIN"
echo "$SUM" >"$OUT/bin/lazyfs.sum"
rm -rf "$OUT/src"
chmod -R a+rX "$OUT"
echo "lazyfs: built in $((SECONDS - start)) s" >&2
echo "$BIN"
