#!/usr/bin/env bash
# Packs a static ipv6wgm binary, the procd init script, the UCI config and the sysupgrade
# keep list (/lib/upgrade/keep.d) into an OpenWrt .ipk (gzip'd tar of debian-binary,
# data.tar.gz, control.tar.gz — what opkg installs).
#
#   openwrt/build-ipk.sh ARCH [BINARY] [OUT_DIR]
#
# ARCH is OpenWrt's package architecture; BINARY defaults to cross/build.sh's output for it:
#   mipsel_24kc → mipsel-unknown-linux-musl      mips_24kc → mips-unknown-linux-musl
#   aarch64_cortex-a53, aarch64_generic → aarch64-unknown-linux-musl
#   arm_cortex-a7_neon-vfpv4, arm_cortex-a9_vfpv3-d16 → armv7-unknown-linux-musleabihf
#   x86_64 → x86_64-unknown-linux-musl
# Output: OUT_DIR (default target/ipk)/ipv6wgm_VERSION-1_ARCH.ipk
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=${1:?usage: openwrt/build-ipk.sh ARCH [BINARY] [OUT_DIR]}
case $ARCH in
  mipsel_*) TRIPLE=mipsel-unknown-linux-musl ;;
  mips_*) TRIPLE=mips-unknown-linux-musl ;;
  aarch64_*) TRIPLE=aarch64-unknown-linux-musl ;;
  arm_*) TRIPLE=armv7-unknown-linux-musleabihf ;;
  x86_64) TRIPLE=x86_64-unknown-linux-musl ;;
  *) echo "unsupported OpenWrt architecture $ARCH" >&2; exit 1 ;;
esac
BIN=${2:-$ROOT/target/cross/$TRIPLE/ipv6wgm}
OUT=${3:-$ROOT/target/ipk}
[ -f "$BIN" ] || { echo "no binary at $BIN (run cross/build.sh $TRIPLE)" >&2; exit 1; }
VERSION=$(awk -F'"' '/^version *=/ {print $2; exit}' "$ROOT/Cargo.toml")
PKG="ipv6wgm_${VERSION}-1_${ARCH}.ipk"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
D=$WORK/data C=$WORK/control
install -d -m 0755 "$D/usr/bin" "$D/etc/init.d" "$D/etc/config" "$D/lib/upgrade/keep.d" "$C"
install -m 0755 "$BIN" "$D/usr/bin/ipv6wgm"
install -m 0755 "$ROOT/openwrt/files/ipv6wgm.init" "$D/etc/init.d/ipv6wgm"
install -m 0600 "$ROOT/openwrt/files/ipv6wgm.config" "$D/etc/config/ipv6wgm"
# What sysupgrade keeps: the UCI file and the newest backup (the init script rewrites it when
# the settings move the backups).
install -m 0644 "$ROOT/openwrt/files/ipv6wgm.keep" "$D/lib/upgrade/keep.d/ipv6wgm"

cat > "$C/control" <<CTRL
Package: ipv6wgm
Version: ${VERSION}-1
Depends: kmod-tun
License: MIT OR Apache-2.0
Section: net
Architecture: ${ARCH}
Installed-Size: $(du -sb "$D" | cut -f1)
Maintainer: ipv6wgm developers
Description: IPv6-over-WireGuard access concentrator with a REST API.
 Userspace WireGuard servers, per-client routed IPv6 prefixes from pools, a small BGP
 speaker and RPKI validation, managed through one REST API. Static binary.
CTRL
echo /etc/config/ipv6wgm > "$C/conffiles"
cat > "$C/postinst" <<'SH'
#!/bin/sh
# Building a firmware image (IPKG_INSTROOT set): nothing to start.
[ -n "${IPKG_INSTROOT}" ] && exit 0
/etc/init.d/ipv6wgm enable
/etc/init.d/ipv6wgm restart
dir=$(uci -q get ipv6wgm.main.data_dir || echo /etc/ipv6wgm)
port=$(uci -q get ipv6wgm.main.port || echo 8000)
echo "ipv6wgm: REST API on port ${port}; user 'admin', initial password in ${dir}/initial-admin-password"
exit 0
SH
cat > "$C/prerm" <<'SH'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
/etc/init.d/ipv6wgm stop
/etc/init.d/ipv6wgm disable
exit 0
SH
chmod 0755 "$C/postinst" "$C/prerm"

# Reproducible archives: fixed order, owner and time.
MTIME=@$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
pack() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$MTIME" -C "$1" -cf - . | gzip -9n > "$2"; }
pack "$D" "$WORK/data.tar.gz"
pack "$C" "$WORK/control.tar.gz"
echo 2.0 > "$WORK/debian-binary"
mkdir -p "$OUT"
tar --owner=0 --group=0 --numeric-owner --mtime="$MTIME" -C "$WORK" \
  -cf - ./debian-binary ./data.tar.gz ./control.tar.gz | gzip -9n > "$OUT/$PKG"
echo "$OUT/$PKG ($(stat -c %s "$OUT/$PKG") bytes)"
