#!/usr/bin/env bash
# Runs a cross-built ipv6wgm on its target ISA under qemu-user and drives it over HTTP:
# start with a temp data dir, log in, create a user and read it back, check health, stop
# with SIGTERM and expect a clean exit. This is where endianness and 32-bit bugs show up;
# every feature that has byte-level code (BGP, prefixes, WireGuard) extends it.
#
# WireGuard: `ipv6wgm selftest` (handshake and data in memory) and the X25519 checks always
# run. As root with /dev/net/tun, ip, wg and wireguard-go (CI), the service also runs in a
# network namespace and a real tunnel comes up: a server and a client are created through
# the API, wireguard-go in a second namespace uses the downloaded .conf, and IPv4 and IPv6
# pings cross the tunnel (handshake, TUN, netlink and UAPI all run on the target ISA).
# Big-endian targets skip the tunnel: qemu-user 7.2 passes the attributes of RTM_SETLINK
# (IFLA_MTU) to the kernel without byte-swapping them, so setting the MTU fails with EINVAL
# under emulation (a real big-endian kernel is not affected).
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

# Can a real tunnel come up here?
WG_SKIP=
if [ "$T" = mips-unknown-linux-musl ]; then WG_SKIP="qemu-user does not byte-swap RTM_SETLINK attributes for big-endian guests"
elif [ "$(id -u)" != 0 ]; then WG_SKIP="not root"
elif [ ! -c /dev/net/tun ]; then WG_SKIP="no /dev/net/tun"
else
  for b in ip wg wireguard-go ping; do
    command -v $b >/dev/null || { WG_SKIP="no $b (apt-get install iproute2 wireguard-tools wireguard-go iputils-ping)"; break; }
  done
fi
NS_S=smoke-s-$$ NS_C=smoke-c-$$ WGIF=smk$$ WGC=smc$$
IN_S=()
cleanup() {
  kill -9 $PID 2>/dev/null || true
  if [ -z "$WG_SKIP" ]; then
    for n in $NS_C $NS_S; do
      pids=$(ip netns pids $n 2>/dev/null || true)
      [ -n "$pids" ] && kill -9 $pids 2>/dev/null
      ip netns del $n 2>/dev/null || true
    done
    rm -f /var/run/wireguard/$WGIF.sock /var/run/wireguard/$WGC.sock
  fi
  rm -rf "$DIR"
}
PID=
trap cleanup EXIT
if [ -z "$WG_SKIP" ]; then
  # veth 10.231.0.1/24 fd23:1::1/64 (service) -- 10.231.0.2/24 fd23:1::2/64 (wireguard-go)
  ip netns add $NS_S && ip netns add $NS_C
  ip -n $NS_S link set lo up && ip -n $NS_C link set lo up
  ip link add vs$$ netns $NS_S type veth peer name vc$$ netns $NS_C
  ip -n $NS_S addr add 10.231.0.1/24 dev vs$$ && ip -n $NS_S addr add fd23:1::1/64 dev vs$$ nodad
  ip -n $NS_C addr add 10.231.0.2/24 dev vc$$ && ip -n $NS_C addr add fd23:1::2/64 dev vc$$ nodad
  ip -n $NS_S link set vs$$ up && ip -n $NS_C link set vc$$ up
  IN_S=(ip netns exec $NS_S)
fi
CURL=$(command -v curl)
curl() { "${IN_S[@]}" "$CURL" --max-time 60 "$@"; }
IPV6WGM_ADMIN_PASSWORD=$PW "${IN_S[@]}" "${QEMU[@]}" "$BIN" --listen 127.0.0.1:$PORT --data-dir "$DIR/data" 2>"$DIR/log" &
PID=$!
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

# Handshake and data exchange in memory, on this ISA.
SELFTEST=$("${QEMU[@]}" "$BIN" selftest) || fail "selftest: $SELFTEST"

# A real tunnel to wireguard-go, served by the binary under test.
WG_RESULT="WireGuard tunnel skipped: $WG_SKIP"
if [ -z "$WG_SKIP" ]; then
  post() { curl -s "$API$1" -H "$AUTH" -H 'Content-Type: application/json' -d "$2"; }
  R=$(post /wireguard/servers "{\"name\":\"smoke\",\"interface\":\"$WGIF\",\"listen_port\":51830,
      \"ipv4_address\":\"10.232.0.1/24\",\"ipv6_address\":\"fd23:2::1/64\",\"endpoint\":\"10.231.0.1\"}")
  SID=$(echo "$R" | json 'd["data"]["id"]') || fail "create WireGuard server: $R"
  R=$(post /wireguard/servers/$SID/start '{}')
  [ "$(echo "$R" | json 'd["data"]["status"]')" = running ] || fail "start WireGuard server: $R"
  R=$(post /wireguard/clients "{\"server_id\":$SID,\"name\":\"phone\",\"allowed_ips\":[\"10.232.0.0/24\",\"fd23:2::/64\"],\"use_preshared_key\":true}")
  CID=$(echo "$R" | json 'd["data"]["id"]') || fail "create WireGuard client: $R"
  curl -sf "$API/wireguard/clients/$CID/config?format=conf" -H "$AUTH" -o "$DIR/phone.conf" || fail "client config"
  ip netns exec $NS_C env WG_PROCESS_FOREGROUND=1 wireguard-go $WGC >"$DIR/wggo.log" 2>&1 &
  for _ in $(seq 100); do [ -S /var/run/wireguard/$WGC.sock ] && break; sleep 0.1; done
  grep -viE '^(Address|DNS|MTU) *=' "$DIR/phone.conf" >"$DIR/phone.setconf"
  ip netns exec $NS_C wg setconf $WGC "$DIR/phone.setconf" || fail "wg setconf: $(cat "$DIR/wggo.log")"
  ip -n $NS_C addr add 10.232.0.2/24 dev $WGC && ip -n $NS_C addr add fd23:2::2/64 dev $WGC nodad
  ip -n $NS_C link set $WGC up
  t2=$(date +%s.%N)
  ip netns exec $NS_C ping -n -q -c 3 -i 0.2 -w 20 10.232.0.1 >/dev/null || fail "IPv4 ping through the tunnel"
  t3=$(date +%s.%N)
  ip netns exec $NS_C ping -n -q -c 3 -i 0.2 -w 10 fd23:2::1 >/dev/null || fail "IPv6 ping through the tunnel"
  R=$(curl -s $API/wireguard/clients/$CID -H "$AUTH")
  [ "$(echo "$R" | json 'd["data"]["status"]')" = active ] || fail "client not active: $R"
  ip netns exec $NS_S wg show $WGIF dump | grep -q "$(echo "$R" | json 'd["data"]["public_key"]')" || fail "wg show"
  WG_RESULT=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "WireGuard tunnel to wireguard-go up, first IPv4 pings in %.1f s", b - a }')
fi

kill -TERM $PID
for _ in $(seq 150); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
kill -0 $PID 2>/dev/null && fail "did not stop on SIGTERM"
wait $PID && rc=0 || rc=$?
[ $rc = 0 ] || fail "exit status $rc after SIGTERM"
grep -q stopped "$DIR/log" || fail "no clean shutdown message"
awk -v t="$T" -v b="$(stat -c %s "$BIN")" -v s="$started" -v r="$ready" -v a="$t0" -v z="$t1" -v q="${QEMU[0]:-native}" \
  'BEGIN { printf "SMOKE OK [%s] %s bytes: up in %.1f s, login %.0f ms (under %s)\n", t, b, r - s, (z - a) * 1000, q }'
echo "SMOKE OK [$T] $SELFTEST"
echo "SMOKE OK [$T] $WG_RESULT"
