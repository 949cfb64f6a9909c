#!/usr/bin/env bash
# Memory of a running WireGuard server by number of configured clients: starts the release
# binary in a private network namespace, creates one server, starts it, and reads VmRSS
# from /proc after 0, 100 and 1000 clients (peers configured on the live device, no
# traffic). Prints a block for BENCHMARKS.md.
#
#   cargo build --release && bash bench/wg-rss.sh
#
# Needs root (network namespace, TUN), curl, python3. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/ipv6wgm}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, TUN)" >&2; exit 1; }
COUNTS=${COUNTS:-"0 100 1000"}

NS=wgrss-$$
IFACE=wgr$$
DIR=$(mktemp -d)
PORT=18$((RANDOM % 900 + 100))
API=http://127.0.0.1:$PORT/api/v1
PW=bench-admin-password
PID=
cleanup() {
  set +e
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }
# `ip netns exec` execs the binary: $! is ipv6wgm itself.
IPV6WGM_ADMIN_PASSWORD=$PW ip netns exec "$NS" "$BIN" --listen 127.0.0.1:$PORT --data-dir "$DIR/data" --log warn 2>"$DIR/log" &
PID=$!
for _ in $(seq 100); do in_ns curl -sf "$API/status/live" >/dev/null && break; sleep 0.1; done

json() { python3 -c 'import sys, json; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
TOKEN=$(in_ns curl -s "$API/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PW\"}" | json 'd["data"]["access_token"]')
post() { in_ns curl -s "$API$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2"; }
SID=$(post /wireguard/servers "{\"name\":\"rss\",\"interface\":\"$IFACE\",\"listen_port\":51899,
  \"ipv4_address\":\"10.240.0.1/20\",\"ipv6_address\":\"fd24::1/64\",\"endpoint\":\"192.0.2.1\"}" | json 'd["data"]["id"]')
post "/wireguard/servers/$SID/start" '{}' | json 'd["data"]["status"]' | grep -qx running

rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }
echo "## WireGuard server memory ($(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| clients (peers on the live device) | VmRSS (KiB) | per client (KiB) |"
echo "|---|---|---|"
have=0
base=
t0=$(date +%s.%N)
for n in $COUNTS; do
  while [ "$have" -lt "$n" ]; do
    have=$((have + 1))
    post /wireguard/clients "{\"server_id\":$SID,\"name\":\"c$have\",\"allowed_ips\":[\"10.240.0.0/20\"]}" >/dev/null
  done
  sleep 1
  r=$(rss)
  [ -z "$base" ] && base=$r
  per=$([ "$n" = 0 ] && echo - || awk -v r="$r" -v b="$base" -v n="$n" 'BEGIN { printf "%.1f", (r - b) / n }')
  echo "| $n | $r | $per |"
done
t1=$(date +%s.%N)
peers=$(in_ns wg show "$IFACE" peers | wc -l)
echo
awk -v n="$have" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d clients created through the API (one curl each, incl. QR code) in %.1f s.\n", n, b - a - 3 }'
echo
echo "(\`wg show $IFACE peers\` lists $peers peers at the end; binary $BIN, $(stat -c %s "$BIN") bytes.)"
