#!/usr/bin/env bash
# Makes a copy of the coarsetime crate (pulled in by jwt-simple) that builds on targets
# without 64-bit atomics (32-bit MIPS): its two `static RECENT: AtomicU64` caches become a
# Mutex<u64> with the same new/load/store API. No third-party source is committed; this
# patches what cargo downloaded, into OUT_DIR.
#
#   cross/patch-coarsetime.sh OUT_DIR      → prints the cargo --config argument to use it
set -euo pipefail
OUT=${1:?usage: patch-coarsetime.sh OUT_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(awk '/^name = "coarsetime"/ {getline; gsub(/[" ]/, "", $0); sub(/version=/, "", $0); print}' "$ROOT/Cargo.lock")
[ -n "$VERSION" ] || { echo "coarsetime is not in Cargo.lock" >&2; exit 1; }
(cd "$ROOT" && cargo fetch --locked -q)
SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/coarsetime-"$VERSION" 2>/dev/null | head -n1)
[ -d "$SRC" ] || { echo "coarsetime $VERSION not found in the cargo registry" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
cp -r "$SRC" "$OUT"
chmod -R u+w "$OUT"
SHIM='use std::sync::atomic::Ordering;
/// ipv6wgm cross build: AtomicU64 stand-in for targets without 64-bit atomics.
struct AtomicU64(std::sync::Mutex<u64>);
impl AtomicU64 {
    const fn new(v: u64) -> Self { AtomicU64(std::sync::Mutex::new(v)) }
    fn load(&self, _: Ordering) -> u64 { *self.0.lock().unwrap_or_else(|e| e.into_inner()) }
    fn store(&self, v: u64, _: Ordering) { *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v }
}'
for f in src/clock.rs src/instant.rs; do
  grep -q '^use std::sync::atomic::{AtomicU64, Ordering};' "$OUT/$f" \
    || { echo "coarsetime $VERSION: $f no longer looks as expected; update this script" >&2; exit 1; }
  python3 - "$OUT/$f" "$SHIM" <<'PY'
import sys
path, shim = sys.argv[1], sys.argv[2]
text = open(path).read().replace("use std::sync::atomic::{AtomicU64, Ordering};", shim, 1)
open(path, "w").write(text)
PY
done
echo "--config=patch.crates-io.coarsetime.path=\"$OUT\""
