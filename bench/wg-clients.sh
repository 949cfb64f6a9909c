#!/usr/bin/env bash
# Client list throughput (issue 13, item 9): GET /wireguard/clients?size=100 with 1,000
# clients on one running server, side by side with GET /auth/me, in one run, with wrk.
# The clients are created once through the API (by the first binary); every binary given
# then starts on a copy of that data directory (the server is active, so it is started at
# start-up with its 1,000 peers) and is measured the same way: two walks through every page
# (the first after a start renders each item, the second reads them kept), wrk on /auth/me and
# on the first page, and the RSS at the end. Prints a block for
# BENCHMARKS.md.
#
#   cargo build --release && bash bench/wg-clients.sh [BINARY...]
#       (default: target/release/ipv6wgm; give two to compare before/after)
#
# Environment: CLIENTS (default 1000), DURATION (wrk seconds, default 10).
# Needs root (network namespace, TUN), curl, python3, wrk. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=(target/release/ipv6wgm)
for b in "${BINS[@]}"; do [ -x "$b" ] || { echo "no binary $b (cargo build --release)" >&2; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, TUN)" >&2; exit 1; }
for t in curl python3 wrk ip; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
CLIENTS=${CLIENTS:-1000}
DURATION=${DURATION:-10}

NS=wgcl-$$
IFACE=wgc$$
DIR=$(mktemp -d)
PORT=18$((RANDOM % 900 + 100))
API=http://127.0.0.1:$PORT/api/v1
PW=bench-admin-password
PID=
stop() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  PID=
}
cleanup() {
  set +e
  stop
  ip netns del "$NS" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }
json() { python3 -c 'import sys, json; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# start BINARY DATA_DIR: runs it in the namespace (`ip netns exec` execs: $! is the binary).
start() {
  IPV6WGM_ADMIN_PASSWORD=$PW ip netns exec "$NS" "$1" --listen 127.0.0.1:$PORT --data-dir "$2" \
    --log warn 2>>"$DIR/log" &
  PID=$!
  local i
  for i in $(seq 200); do in_ns curl -sf "$API/status/live" >/dev/null && break; sleep 0.05; done
  TOKEN=$(in_ns curl -s "$API/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PW\"}" | json 'd["data"]["access_token"]')
}
get() { in_ns curl -s "$API$1" -H "Authorization: Bearer $TOKEN"; }
post() { in_ns curl -s "$API$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2"; }

# The data set, once.
start "${BINS[0]}" "$DIR/seed"
SID=$(post /wireguard/servers "{\"name\":\"list\",\"interface\":\"$IFACE\",\"listen_port\":51898,
  \"ipv4_address\":\"10.241.0.1/20\",\"ipv6_address\":\"fd25::1/64\",\"endpoint\":\"192.0.2.1\"}" | json 'd["data"]["id"]')
post "/wireguard/servers/$SID/start" '{}' | json 'd["data"]["status"]' | grep -qx running
seq "$CLIENTS" | xargs -P 4 -I{} ip netns exec "$NS" curl -s -o /dev/null "$API/wireguard/clients" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"server_id\":$SID,\"name\":\"c{}\"}"
stop

# walk: milliseconds to read every page of 100 once, one request after another (the first
# walk after a start renders every item; the second finds them kept).
walk() {
  local p
  for p in $(seq 1 $(((CLIENTS + 99) / 100))); do
    in_ns curl -s -o /dev/null -w '%{time_total}\n' "$API/wireguard/clients?size=100&page=$p" \
      -H "Authorization: Bearer $TOKEN"
  done | awk '{ s += $1 } END { printf "%.1f", s * 1000 }'
}

# wrk_line PATH: "req/s p99" of one wrk run.
wrk_line() {
  local out
  out=$(in_ns wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$API$1")
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}') $(echo "$out" | awk '/Non-2xx/ {print $4}')"
}

echo "### Client list ($(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1 /proc/loadavg) at start)"
echo
echo "$CLIENTS clients on one running server; \`wrk -t2 -c32 -d${DURATION}s --latency\`, loopback in a network namespace."
echo
echo "Walks: every page of 100 read once in turn, right after the start (first) and again (second)."
echo
echo "| binary | bytes | first walk ms | second walk ms | GET /auth/me req/s | p99 | GET /wireguard/clients?size=100 req/s | p99 | non-2xx | RSS after |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for b in "${BINS[@]}"; do
  rm -rf "$DIR/run" && cp -a "$DIR/seed" "$DIR/run"
  start "$b" "$DIR/run"
  st=$(get "/wireguard/servers/$SID" | json 'd["data"]["status"]')
  n=$(get "/wireguard/clients?size=1" | json 'd["data"]["pagination"]["total"]')
  [ "$st" = running ] && [ "$n" = "$CLIENTS" ] || { echo "server $st with $n clients" >&2; exit 1; }
  first=$(walk)
  second=$(walk)
  read -r me_rps me_p99 me_bad <<<"$(wrk_line /auth/me)"
  read -r ls_rps ls_p99 ls_bad <<<"$(wrk_line '/wireguard/clients?size=100')"
  rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$PID/status")
  echo "| $b | $(stat -c %s "$b") | $first | $second | $me_rps | $me_p99 | $ls_rps | $ls_p99 | $((${me_bad:-0} + ${ls_bad:-0})) | $rss |"
  stop
done
