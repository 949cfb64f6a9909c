#!/usr/bin/env bash
# Runs a cross-built ipv6wgm on its target ISA under qemu-user and drives it over HTTP:
# start with a temp data dir, log in, create a user and read it back, check health, stop
# with SIGTERM and expect a clean exit. This is where endianness and 32-bit bugs show up;
# every feature that has byte-level code (BGP, prefixes, WireGuard) extends it.
#
#   cross/smoke.sh TARGET       (binary from cross/build.sh: target/cross/TARGET/ipv6wgm)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${1:?usage: cross/smoke.sh TARGET}
BIN=${BIN:-$ROOT/target/cross/$T/ipv6wgm}
[ -x "$BIN" ] || { echo "no binary at $BIN (run cross/build.sh $T)" >&2; exit 1; }
case $T in
  x86_64-*) QEMU=() ;;
  aarch64-*) QEMU=(qemu-aarch64-static) ;;
  armv7-*) QEMU=(qemu-arm-static) ;;
  mipsel-*) QEMU=(qemu-mipsel-static) ;;
  mips-*) QEMU=(qemu-mips-static) ;;
  *) echo "unknown target $T" >&2; exit 1 ;;
esac
if [ ${#QEMU[@]} -gt 0 ] && ! command -v "${QEMU[0]}" >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
fi
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

PORT=${PORT:-$((20000 + RANDOM % 20000))}
API=http://127.0.0.1:$PORT/api/v1
DIR=$(mktemp -d)
PW=smoke-admin-password
fail() { echo "SMOKE FAIL [$T]: $*" >&2; echo "--- server log:" >&2; cat "$DIR/log" >&2; exit 1; }
IPV6WGM_ADMIN_PASSWORD=$PW "${QEMU[@]}" "$BIN" --listen 127.0.0.1:$PORT --data-dir "$DIR/data" 2>"$DIR/log" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
started=$(date +%s.%N)
for _ in $(seq 600); do curl -sf $API/status/live >/dev/null && break; sleep 0.1; done
curl -sf $API/status/live >/dev/null || fail "server did not come up"
ready=$(date +%s.%N)

json() { python3 -c 'import sys, json; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
t0=$(date +%s.%N)
LOGIN=$(curl -s $API/auth/login -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$PW\"}")
t1=$(date +%s.%N)
TOKEN=$(echo "$LOGIN" | json 'd["data"]["access_token"]') || fail "login: $LOGIN"
AUTH="Authorization: Bearer $TOKEN"
[ "$(curl -s $API/auth/me -H "$AUTH" | json 'd["data"]["permissions"]')" = "['*']" ] || fail "auth/me"
CREATED=$(curl -s $API/users -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"username":"smoke","password":"smoke-password-1","email":"s@example.com","role":"viewer"}')
ID=$(echo "$CREATED" | json 'd["data"]["id"]') || fail "create user: $CREATED"
GOT=$(curl -s $API/users/$ID -H "$AUTH")
[ "$(echo "$GOT" | json 'd["data"]["username"] + "/" + d["data"]["role"]')" = smoke/viewer ] || fail "read back: $GOT"
[ "$(curl -s -o /dev/null -w '%{http_code}' $API/auth/login -H 'Content-Type: application/json' \
      -d '{"username":"smoke","password":"wrong-password"}')" = 401 ] || fail "wrong password accepted"
curl -s $API/auth/login -H 'Content-Type: application/json' -d '{"username":"smoke","password":"smoke-password-1"}' \
  | json 'd["data"]["user"]["username"]' | grep -qx smoke || fail "new user cannot log in"
[ "$(curl -s $API/status/health/detailed -H "$AUTH" | json 'd["data"]["components"]["database"]["status"]')" = healthy ] \
  || fail "health"
# pools: added with the prefix-pool feature (create a pool, allocate, read back).

# WireGuard crypto on this ISA (endianness): RFC 7748 §6.1's key pair, and a fresh key
# round trip.
PUB=$(echo dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= | "${QEMU[@]}" "$BIN" pubkey)
[ "$PUB" = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo= ] || fail "X25519 public key: $PUB"
KEY=$("${QEMU[@]}" "$BIN" genkey)
[ ${#KEY} = 44 ] && "${QEMU[@]}" "$BIN" pubkey <<<"$KEY" >/dev/null || fail "genkey/pubkey"

kill -TERM $PID
for _ in $(seq 150); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
kill -0 $PID 2>/dev/null && fail "did not stop on SIGTERM"
wait $PID && rc=0 || rc=$?
[ $rc = 0 ] || fail "exit status $rc after SIGTERM"
grep -q stopped "$DIR/log" || fail "no clean shutdown message"
awk -v t="$T" -v b="$(stat -c %s "$BIN")" -v s="$started" -v r="$ready" -v a="$t0" -v z="$t1" -v q="${QEMU[0]:-native}" \
  'BEGIN { printf "SMOKE OK [%s] %s bytes: up in %.1f s, login %.0f ms (under %s)\n", t, b, r - s, (z - a) * 1000, q }'
