#!/usr/bin/env bash
# Static, stripped release binaries of ipv6wgm for routers, from a fresh Debian machine.
#
#   cross/build.sh [TARGET...]         default: all five targets below
#   → target/cross/<TARGET>/ipv6wgm, and a size table on stdout (size, budget, headroom);
#     exits non-zero when a binary is larger than its budget in cross/size-budget
#
# Targets and how each is built (see ../shared/EMBEDDED.md for why):
#   x86_64-unknown-linux-musl        stable std                      zig linker
#   aarch64-unknown-linux-musl       stable std                      zig linker
#   armv7-unknown-linux-musleabihf   nightly -Zbuild-std (rust-src)  zig linker
#   mipsel-unknown-linux-musl        nightly -Zbuild-std (tier 3)    zig linker, non-PIE
#   mips-unknown-linux-musl          nightly -Zbuild-std (tier 3)    zig linker, non-PIE
#
# Installs what it needs itself: rustup targets, a pinned nightly with rust-src, zig (the
# `ziglang` package from PyPI) and cargo-zigbuild (crates.io). MIPS pitfalls handled here:
#   - no 64-bit atomics on 32-bit MIPS: nothing in the dependency tree may need AtomicU64
#     (the build fails if something does; jwt-simple's coarsetime did, so tokens are ours).
#   - static-PIE binaries crash at start on MIPS (lld): the final binary is linked non-PIE
#     (-Crelocation-model=static for the ipv6wgm package only).
#   - TUN ioctl numbers differ on MIPS: the code uses libc::TUNSETIFF, nothing to do here.
#   - LLVM writes a .pdr section per function on MIPS that strip keeps (~320 KiB): the
#     linker discards it (cross/mips-discard.ld).
# SQLite is built without the extensions we do not use (cross/sqlite-flags).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NIGHTLY=${NIGHTLY:-nightly-2026-05-19}
ALL="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf mipsel-unknown-linux-musl mips-unknown-linux-musl"
TARGETS=${*:-$ALL}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SQLITE_FLAGS=$(grep -v '^#' "$ROOT/cross/sqlite-flags" | xargs)
# Size flags of the nightly (build-std) targets, for std and every crate: no unwind tables
# (panic=abort never unwinds; a panic still prints its message), no file/line/column in
# panic messages, derived Debug prints names only (nothing the service says is derived
# Debug of a struct: see BENCHMARKS.md, "Binary size"). The C code (SQLite) drops its
# unwind tables too. SIZE_FLAGS= SIZE_CFLAGS= in the environment builds without them.
SIZE_FLAGS=${SIZE_FLAGS-"'-Cforce-unwind-tables=no', '-Zlocation-detail=none', '-Zfmt-debug=shallow'"}
SIZE_CFLAGS=${SIZE_CFLAGS-"-fno-asynchronous-unwind-tables -fno-unwind-tables"}
OUT=$ROOT/target/cross
log() { printf '>>> %s\n' "$*" >&2; }

# "static" (what routers need), "static-pie" or "dynamic", from the ELF headers.
linkage() {
  local h
  h=$(readelf -lh "$1" 2>/dev/null)
  if grep -q INTERP <<<"$h"; then echo dynamic
  elif grep -q 'Type:.*DYN' <<<"$h"; then echo static-pie
  else echo static; fi
}

needs_build_std() { case $1 in armv7-*|mips*) return 0 ;; *) return 1 ;; esac; }
is_mips() { case $1 in mips*) return 0 ;; *) return 1 ;; esac; }

ensure_tools() {
  if ! python3 -c 'import ziglang' 2>/dev/null; then
    log "installing zig (PyPI: ziglang)"
    python3 -m pip install -q ziglang 2>/dev/null || python3 -m pip install -q --break-system-packages ziglang
  fi
  if ! command -v cargo-zigbuild >/dev/null; then
    log "installing cargo-zigbuild (crates.io)"
    cargo install -q --locked cargo-zigbuild
  fi
  local t stable=() nightly=0
  for t in $TARGETS; do
    if needs_build_std "$t"; then nightly=1; else stable+=("$t"); fi
  done
  if [ ${#stable[@]} -gt 0 ]; then
    rustup target add "${stable[@]}" >/dev/null
  fi
  if [ $nightly = 1 ]; then
    local sysroot
    sysroot=$(rustup run "$NIGHTLY" rustc --print sysroot 2>/dev/null || true)
    if [ -z "$sysroot" ] || [ ! -d "$sysroot/lib/rustlib/src/rust/library" ]; then
      log "installing $NIGHTLY with rust-src"
      rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src >/dev/null
    fi
  fi
}

build() {
  local t=$1 args=() toolchain=() cflags=()
  if needs_build_std "$t"; then
    toolchain=(+"$NIGHTLY")
    # zig brings the C runtime objects; rustc must not add its own.
    # ${SIZE_FLAGS} (below) only here: they are nightly flags, and std is rebuilt with them.
    args+=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size --config "target.$t.rustflags=['-Clink-self-contained=no'${SIZE_FLAGS:+, $SIZE_FLAGS}]")
    cflags=(env "CFLAGS_${t//-/_}=${SIZE_CFLAGS:-}")
  fi
  if is_mips "$t"; then
    args+=(-Zprofile-rustflags --config "profile.release.package.ipv6wgm.rustflags=['-Crelocation-model=static', '-Clink-arg=-Wl,-T,$ROOT/cross/mips-discard.ld']")
  fi
  log "building $t"
  # RUSTFLAGS from the environment would override the per-target flags above.
  "${cflags[@]}" env -u RUSTFLAGS LIBSQLITE3_FLAGS="$SQLITE_FLAGS" cargo "${toolchain[@]}" zigbuild --locked --release --target "$t" "${args[@]}"
  mkdir -p "$OUT/$t"
  cp "$TARGET_DIR/$t/release/ipv6wgm" "$OUT/$t/ipv6wgm"
}

# The budget of target $1 in bytes from cross/size-budget, or nothing.
budget() { awk -v t="$1" '$1 == t { print $2 }' "$ROOT/cross/size-budget"; }

ensure_tools
for t in $TARGETS; do build "$t"; done

over=()
printf '\n%-34s %12s %8s %12s %12s  %s\n' target bytes MiB budget headroom linkage
for t in $TARGETS; do
  f=$OUT/$t/ipv6wgm
  size=$(stat -c %s "$f")
  kind=$(linkage "$f")
  max=$(budget "$t")
  room=-
  if [ -n "$max" ]; then
    room=$((max - size))
    [ "$room" -ge 0 ] || over+=("$t")
  fi
  printf '%-34s %12s %8s %12s %12s  %s\n' "$t" "$size" "$(awk -v b="$size" 'BEGIN {printf "%.2f", b/1048576}')" \
    "${max:--}" "$room" "${kind:-?}"
done
if [ ${#over[@]} -gt 0 ]; then
  echo "cross/build.sh: over the size budget (cross/size-budget): ${over[*]}" >&2
  exit 1
fi
