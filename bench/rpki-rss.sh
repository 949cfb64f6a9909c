#!/usr/bin/env bash
# Memory of the service with a large VRP table: writes a JSON export with N random VRPs
# (80 % IPv4 /8–/24, 20 % IPv6 /29–/48; default 500,000), starts the release binary with
# `[rpki] vrp_file` pointing at it, waits for the load, and reads VmRSS before (no RPKI) and
# after, plus the table's own size from /status/health/detailed. Prints a block for
# BENCHMARKS.md.
#
#   cargo build --release && bash bench/rpki-rss.sh [N]
#
# Needs curl and python3. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/ipv6wgm}
N=${1:-500000}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
DIR=$(mktemp -d)
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT

python3 - "$N" "$DIR/vrps.json" <<'PY'
import json, random, sys, ipaddress
n, out = int(sys.argv[1]), sys.argv[2]
random.seed(1)
roas = []
for i in range(n):
    if i % 5 == 4:
        ln = random.randint(29, 48)
        net = ipaddress.IPv6Network(((0x2000 << 112) | (random.getrandbits(64) << 64), ln), strict=False)
        roas.append({"prefix": str(net), "maxLength": ln + random.randint(0, 7), "asn": "AS%d" % random.randint(64512, 114511), "ta": "bench"})
    else:
        ln = random.randint(8, 24)
        net = ipaddress.IPv4Network((random.getrandbits(32) | 0x01000000, ln), strict=False)
        roas.append({"prefix": str(net), "maxLength": ln + random.randint(0, 3), "asn": "AS%d" % random.randint(64512, 114511), "ta": "bench"})
json.dump({"roas": roas}, open(out, "w"))
PY
SIZE=$(stat -c %s "$DIR/vrps.json")

rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
start() { # start NAME PORT [config]
  local port=$2
  [ -n "${3:-}" ] && printf '%s\n' "$3" >"$DIR/$1.toml"
  IPV6WGM_ADMIN_PASSWORD=bench-admin-password "$BIN" --listen 127.0.0.1:$port --data-dir "$DIR/$1" --log warn \
    ${3:+--config "$DIR/$1.toml"} 2>"$DIR/$1.log" &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/v1/status/live" >/dev/null && break; sleep 0.1; done
}
start plain 18501
sleep 2
PLAIN=$(rss "${PIDS[0]}")
t0=$(date +%s.%N)
start rpki 18502 "[rpki]
vrp_file = \"$DIR/vrps.json\""
TOKEN=$(curl -s http://127.0.0.1:18502/api/v1/auth/login -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"bench-admin-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
for _ in $(seq 600); do
  H=$(curl -s http://127.0.0.1:18502/api/v1/status/health/detailed -H "Authorization: Bearer $TOKEN")
  echo "$H" | grep -q '"vrp_count":[1-9]' && break
  sleep 0.1
done
t1=$(date +%s.%N)
sleep 2
WITH=$(rss "${PIDS[1]}")
PEAK=$(hwm "${PIDS[1]}")
COUNT=$(echo "$H" | sed 's/.*"vrp_count":\([0-9]*\).*/\1/')
MEM=$(echo "$H" | sed 's/.*"memory_bytes":\([0-9]*\).*/\1/')
echo "## RPKI table memory in the service ($(date -u +%F), $(nproc) cores)"
echo
echo "| figure | value |"
echo "|---|---|"
echo "| VRP export | $N VRPs, $(awk -v s="$SIZE" 'BEGIN { printf "%.1f", s / 1048576 }') MiB of JSON |"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "| start-up to table loaded | %.1f s |\n", b - a }'
echo "| VRPs in the table | $COUNT |"
echo "| table entries | $(awk -v m="$MEM" 'BEGIN { printf "%.1f MiB", m / 1048576 }') |"
echo "| VmRSS without RPKI / with the table | $PLAIN KiB / $WITH KiB |"
echo "| peak RSS (VmHWM) while loading | $PEAK KiB |"
