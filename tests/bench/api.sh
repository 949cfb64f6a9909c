#!/usr/bin/env bash
# API benchmark: binary size, idle RSS, login latency, and wrk throughput of
# GET /api/v1/auth/me with a valid token. Prints a Markdown block for BENCHMARKS.md.
#
#   bash tests/bench/api.sh [BINARY]      (default: builds target/release/ipv6wgm)
#
# Needs curl and wrk (apt-get install curl wrk). Loopback only; stops everything it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=target/release/ipv6wgm
fi
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
PORT=${PORT:-18631}
API=http://127.0.0.1:$PORT/api/v1
DIR=$(mktemp -d)
PW=bench-admin-password
IPV6WGM_ADMIN_PASSWORD=$PW IPV6WGM_LOG=warn "$BIN" --listen 127.0.0.1:$PORT --data-dir "$DIR/data" 2>"$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf $API/status/live >/dev/null && break; sleep 0.1; done
sleep 2
rss() { awk '/VmRSS/ {print $2}' /proc/$PID/status; }
IDLE_RSS=$(rss)

login() { curl -s -o /dev/null -w '%{time_total}\n' $API/auth/login -H 'Content-Type: application/json' \
            -d "{\"username\":\"admin\",\"password\":\"$PW\"}"; }
LOGINS=$(for _ in $(seq 20); do login; done | sort -n)
LOGIN_MED=$(echo "$LOGINS" | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}')
LOGIN_MAX=$(echo "$LOGINS" | tail -1 | awk '{printf "%.1f", $1*1000}')
# Reset the failure counter-free state: successful logins never count against the limit.
TOKEN=$(curl -s $API/auth/login -H 'Content-Type: application/json' \
          -d "{\"username\":\"admin\",\"password\":\"$PW\"}" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

WRK=$(wrk -t2 -c32 -d10s --latency -H "Authorization: Bearer $TOKEN" $API/auth/me)
RPS=$(echo "$WRK" | awk '/Requests\/sec/ {print $2}')
P50=$(echo "$WRK" | awk '$1=="50%" {print $2}')
P99=$(echo "$WRK" | awk '$1=="99%" {print $2}')
NON2XX=$(echo "$WRK" | awk '/Non-2xx/ {print $4}')
LOAD_RSS=$(rss)

cat <<MD
- machine: $(nproc) cores, $(awk '/model name/ {sub(/.*: /,""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM
- binary: $BIN, $(stat -c %s "$BIN") bytes ($(awk -v b="$(stat -c %s "$BIN")" 'BEGIN {printf "%.2f", b/1048576}') MiB)
- idle RSS 2 s after start: ${IDLE_RSS} KiB; after the wrk run: ${LOAD_RSS} KiB
- login (POST /auth/login, PBKDF2 check), 20 sequential: median ${LOGIN_MED} ms, max ${LOGIN_MAX} ms
- \`wrk -t2 -c32 -d10s\` GET /api/v1/auth/me with a valid token: **${RPS} req/s**, p50 ${P50}, p99 ${P99}, non-2xx: ${NON2XX:-0}
MD
