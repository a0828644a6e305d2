#!/usr/bin/env bash
# Packs warrend and warren-perf from a build tree, with every shared library they load except
# glibc's (as `ldd` lists them), into one folder that runs on another Linux machine of the same
# architecture with no package manager: bin/ holds wrappers that set LD_LIBRARY_PATH and exec
# the real binaries in libexec/, lib/ the libraries, bench/ scaling.sh, backlog.sh and lib.sh
# (which find bin/ on their own). --with-glibc also packs glibc and its dynamic loader, and the
# wrappers start the binaries through that loader, for a machine whose glibc is older.
#
# Usage: bench/bundle.sh [--build-dir DIR] [--out DIR] [--with-glibc] [--tar]
#                        [--warrend PATH] [--perf PATH]
#   default --build-dir: the first of build-rel, build-release with both binaries
#   default --out: bench/bundle (git-ignored); --tar also writes OUT.tar.gz
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=""
OUT=$ROOT/bench/bundle
WITH_GLIBC=0
TAR=0
WARREND=""
PERF=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --with-glibc) WITH_GLIBC=1; shift ;;
    --tar) TAR=1; shift ;;
    --warrend) WARREND=$2; shift 2 ;;
    --perf) PERF=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bundle.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
if [ -z "$BUILD" ]; then
  for d in "$ROOT/build-rel" "$ROOT/build-release"; do
    [ -x "$d/bin/warrend" ] && [ -x "$d/bin/warren-perf" ] && { BUILD=$d; break; }
  done
fi
WARREND=${WARREND:-${BUILD:+$BUILD/bin/warrend}}
PERF=${PERF:-${BUILD:+$BUILD/bin/warren-perf}}
for b in "$WARREND" "$PERF"; do
  [ -n "$b" ] && [ -x "$b" ] || { echo "bundle.sh: no binary at '$b' (--build-dir, --warrend, --perf)" >&2; exit 1; }
done

# glibc's own libraries and the loader: left to the target machine unless --with-glibc.
is_glibc() {
  case "$1" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.* | \
    libanl.so.*|libmvec.so.*|ld-linux*.so.*|ld64.so.*) return 0 ;;
    *) return 1 ;;
  esac
}

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/libexec" "$OUT/lib" "$OUT/bench"
LOADER=""
: > "$OUT/lib/MANIFEST"
for pair in "warrend:$WARREND" "warren-perf:$PERF"; do
  name=${pair%%:*} b=${pair#*:}
  cp -L "$b" "$OUT/libexec/$name"
  # "libx.so.1 => /path/libx.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso..."
  ldd "$b" | while read -r first arrow path _; do
    if [ "$arrow" = "=>" ]; then
      lib=$first src=$path
    elif [[ "$first" == /* ]]; then
      lib=$(basename "$first") src=$first
    else
      continue  # the vDSO
    fi
    [ "$src" = "not" ] && { echo "bundle.sh: $name: $lib not found" >&2; exit 1; }
    if is_glibc "$lib" && [ "$WITH_GLIBC" = 0 ]; then continue; fi
    [ -e "$OUT/lib/$lib" ] || { cp -L "$src" "$OUT/lib/$lib"; echo "$lib $src" >> "$OUT/lib/MANIFEST"; }
  done
done
if [ "$WITH_GLIBC" = 1 ]; then
  for f in "$OUT"/lib/ld-linux*.so.* "$OUT"/lib/ld64.so.*; do
    [ -e "$f" ] && { LOADER=$(basename "$f"); break; }
  done
  [ -n "$LOADER" ] || { echo "bundle.sh: no dynamic loader in ldd's output" >&2; exit 1; }
fi

for name in warrend warren-perf; do
  {
    echo '#!/bin/sh'
    echo "# Runs the bundled $name with the bundled libraries (exec keeps the process id)."
    echo 'here=$(cd "$(dirname "$0")/.." && pwd)'
    if [ -n "$LOADER" ]; then
      echo "exec \"\$here/lib/$LOADER\" --library-path \"\$here/lib\" \"\$here/libexec/$name\" \"\$@\""
    else
      echo 'LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"'
      echo 'export LD_LIBRARY_PATH'
      echo "exec \"\$here/libexec/$name\" \"\$@\""
    fi
  } > "$OUT/bin/$name"
  chmod +x "$OUT/bin/$name"
done
cp "$ROOT/bench/scaling.sh" "$ROOT/bench/backlog.sh" "$ROOT/bench/lib.sh" "$OUT/bench/"

glibc_needed=$(objdump -T "$WARREND" "$PERF" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
cat > "$OUT/README" <<EOF
warrend and warren-perf with their shared libraries ($(uname -m)), packed by bench/bundle.sh
from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "an unknown commit").
Libraries packed: lib/MANIFEST. glibc $( [ "$WITH_GLIBC" = 1 ] && echo "packed too" ||
  echo "not packed: the machine needs ${glibc_needed:-a recent glibc} or newer").

  bin/warrend --help
  bench/scaling.sh                      # --workers 1, 2, 4, 8; --pin splits the CPUs
  bench/scaling.sh --rounds 5 --duration 20 --pin
  bench/backlog.sh --count 1000000      # durable backlog, needs disk space
EOF
if [ "$TAR" = 1 ]; then
  tar -C "$(dirname "$OUT")" -czf "$OUT.tar.gz" "$(basename "$OUT")"
  echo "bundle.sh: wrote $OUT.tar.gz" >&2
fi
echo "bundle.sh: $OUT: $(wc -l < "$OUT/lib/MANIFEST") libraries, $(du -sh "$OUT" | cut -f1)" >&2
