#!/usr/bin/env bash
# WireGuard tunnel throughput: iperf3 TCP through a tunnel between two network namespaces
# joined by a veth pair, plus the CPU the two WireGuard processes burn meanwhile. Prints a
# block for BENCHMARKS.md.
#
#   bash bench/wg.sh [wggo]      baseline: wireguard-go server <-> wireguard-go client
#   bash bench/wg.sh ipv6wgm     our server (target/release/ipv6wgm) <-> wireguard-go client
#
# Environment: DURATION (s per run, default 10), RUNS (default 3), UNDERLAY (4 or 6: the
# family of the client's Endpoint over the veth, default 6), REVERSE=1 (server -> client).
# Needs root, /dev/net/tun, iproute2, wireguard-go, wireguard-tools (wg), iperf3, ping.
# Everything it creates (namespaces, interfaces, processes, temp files) is removed on exit,
# including on failure or Ctrl-C.
#
# Topology (same as tests/wg_netns_baseline.rs):
#   ns $NS_S: veth 10.98.0.1/24 fd98::1/64  --  ns $NS_C: veth 10.98.0.2/24 fd98::2/64
#   tunnel:   10.99.0.1/24 fd99::1/64 (server)   10.99.0.2/24 fd99::2/64 (client)
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-wggo}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
UNDERLAY=${UNDERLAY:-6}
REVERSE=${REVERSE:-0}

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "no /dev/net/tun" >&2; exit 1; }
for b in ip wg wireguard-go iperf3 ping ss; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install iproute2 wireguard-tools wireguard-go iperf3 iputils-ping)" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------
# Names (unique per run: the pid) and addresses.
ID=$$
NS_S=wgbench-srv-$ID
NS_C=wgbench-cli-$ID
VETH_S=vbs$ID           # interface names: at most 15 bytes
VETH_C=vbc$ID
IF_S=wbs$ID             # wireguard-go's socket /var/run/wireguard/<if>.sock is shared by
IF_C=wbc$ID             # all namespaces: names must be unique machine-wide
SRV_UL4=10.98.0.1 CLI_UL4=10.98.0.2
SRV_UL6=fd98::1   CLI_UL6=fd98::2
WG_PORT=51820
if [ "$UNDERLAY" = 6 ]; then SRV_ENDPOINT="[$SRV_UL6]:$WG_PORT"; else SRV_ENDPOINT="$SRV_UL4:$WG_PORT"; fi
WORK=$(mktemp -d)
CLK_TCK=$(getconf CLK_TCK)

# Set by server_up_* (see the contract there) and client_up.
SERVER_PID=
SERVER_TUN_IP=
CLIENT_PID=

ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

# Bounded poll: poll TRIES CMD... (every 0.05 s, TRIES times); status of the last try.
poll() {
  local tries=$1; shift
  local i
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}

# Kill everything inside a namespace (TERM, then KILL after 3 s), then delete it.
ns_destroy() {
  local n=$1 i pids
  ip netns list | grep -qw "^$n" || return 0
  for ((i = 0; i < 120; i++)); do
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    [ -z "$pids" ] && break
    if [ $i = 0 ]; then kill -TERM $pids 2>/dev/null || true
    elif [ $i -ge 60 ]; then kill -KILL $pids 2>/dev/null || true
    fi
    sleep 0.05
  done
  ip netns del "$n" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  ns_destroy "$NS_C"
  ns_destroy "$NS_S"
  # Reap our background children (all were inside the namespaces, so already dead).
  wait 2>/dev/null
  rm -f "/var/run/wireguard/$IF_S.sock" "/var/run/wireguard/$IF_C.sock"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Shared helpers.

# Start wireguard-go for IFACE in NS (foreground mode, so $! is wireguard-go itself) and
# wait for its control socket. Sets WGGO_PID.
wggo_start() {
  local n=$1 iface=$2
  ip netns exec "$n" env WG_PROCESS_FOREGROUND=1 wireguard-go "$iface" >"$WORK/$iface.log" 2>&1 &
  WGGO_PID=$!
  if ! poll 200 test -S "/var/run/wireguard/$iface.sock"; then
    echo "wireguard-go $iface did not create its socket in 10 s:" >&2
    cat "$WORK/$iface.log" >&2
    exit 1
  fi
}

# Apply a wg-quick file CONF to IFACE in NS like wg-quick would (and like WgGoPeer in
# tests/common/netns.rs): wg setconf without the wg-quick-only keys, Address (IPv6 nodad),
# MTU, up, routes for AllowedIPs except the 0.0.0.0/0 and ::/0 defaults.
wg_quick_apply() {
  local n=$1 iface=$2 conf=$3 a p fam mtu
  grep -viE '^[[:space:]]*(Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig)[[:space:]]*=' \
    "$conf" >"$WORK/$iface.setconf" || true
  ns "$n" wg setconf "$iface" "$WORK/$iface.setconf"
  for a in $(sed -nE 's/#.*//; s/^[[:space:]]*[Aa][Dd][Dd][Rr][Ee][Ss][Ss][[:space:]]*=//p' "$conf" | tr ',' ' '); do
    case $a in
      *:*) ns "$n" ip -6 addr add "$a" dev "$iface" nodad ;;
      *) ns "$n" ip -4 addr add "$a" dev "$iface" ;;
    esac
  done
  mtu=$(sed -nE 's/#.*//; s/^[[:space:]]*[Mm][Tt][Uu][[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' "$conf" | tail -1)
  [ -n "$mtu" ] && ns "$n" ip link set dev "$iface" mtu "$mtu"
  ns "$n" ip link set dev "$iface" up
  for p in $(ns "$n" wg show "$iface" allowed-ips | cut -f2- | tr ' ' '\n'); do
    case $p in 0.0.0.0/0 | ::/0 | "(none)" | "") continue ;; esac
    case $p in *:*) fam=-6 ;; *) fam=-4 ;; esac
    [ -n "$(ns "$n" ip $fam route show dev "$iface" match "$p")" ] ||
      ns "$n" ip $fam route add "$p" dev "$iface"
  done
}

# The two namespaces and the veth pair between them (created inside the namespaces).
topology_up() {
  ip netns add "$NS_S"
  ip netns add "$NS_C"
  ns "$NS_S" ip link set lo up
  ns "$NS_C" ip link set lo up
  ip link add "$VETH_S" netns "$NS_S" type veth peer name "$VETH_C" netns "$NS_C"
  ns "$NS_S" ip addr add "$SRV_UL4/24" dev "$VETH_S"
  ns "$NS_S" ip -6 addr add "$SRV_UL6/64" dev "$VETH_S" nodad
  ns "$NS_C" ip addr add "$CLI_UL4/24" dev "$VETH_C"
  ns "$NS_C" ip -6 addr add "$CLI_UL6/64" dev "$VETH_C" nodad
  ns "$NS_S" ip link set "$VETH_S" up
  ns "$NS_C" ip link set "$VETH_C" up
  ns "$NS_C" ping -q -n -c 1 -w 5 "$SRV_UL4" >/dev/null || { echo "veth: no IPv4 ping" >&2; exit 1; }
  ns "$NS_C" ping -q -n -c 1 -w 5 "$SRV_UL6" >/dev/null || { echo "veth: no IPv6 ping" >&2; exit 1; }
}

# ---------------------------------------------------------------------------------------
# Server side. Contract for every server_up_* function:
#   in:  $NS_S (server namespace, veth $VETH_S with $SRV_UL4/$SRV_UL6 up), $NS_C/$CLI_UL*
#        (the client's underlay addresses), $SRV_ENDPOINT (the endpoint the client must
#        use: host:port or [v6]:port, port $WG_PORT), $WORK (temp dir, removed on exit).
#   out: SERVER_PID    the process whose CPU is measured (runs inside $NS_S, so cleanup
#                      kills it with the namespace);
#        SERVER_TUN_IP the server's tunnel address (iperf3/ping target, no prefix);
#        $WORK/client.conf  a wg-quick client config for the client side (wireguard-go).

# Baseline: a stock wireguard-go server with generated keys.
server_up_wggo() {
  local s_priv s_pub c_priv c_pub
  s_priv=$(wg genkey); s_pub=$(wg pubkey <<<"$s_priv")
  c_priv=$(wg genkey); c_pub=$(wg pubkey <<<"$c_priv")
  cat >"$WORK/server.conf" <<EOF
[Interface]
PrivateKey = $s_priv
Address = 10.99.0.1/24, fd99::1/64
ListenPort = $WG_PORT
MTU = 1420

[Peer]
PublicKey = $c_pub
AllowedIPs = 10.99.0.2/32, fd99::2/128
EOF
  cat >"$WORK/client.conf" <<EOF
[Interface]
PrivateKey = $c_priv
Address = 10.99.0.2/24, fd99::2/64
MTU = 1420

[Peer]
PublicKey = $s_pub
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = $SRV_ENDPOINT
PersistentKeepalive = 25
EOF
  wggo_start "$NS_S" "$IF_S"
  SERVER_PID=$WGGO_PID
  wg_quick_apply "$NS_S" "$IF_S" "$WORK/server.conf"
  SERVER_TUN_IP=10.99.0.1
}

# Our server side: target/release/ipv6wgm (cargo build --release first) inside $NS_S, data
# dir under $WORK; log in, create a WireGuard server and a client through the HTTP API, and
# use the client's downloaded config for the wireguard-go client.
server_up_ipv6wgm() {
  local bin=${BIN:-target/release/ipv6wgm} api token sid cid pw=bench-admin-password i
  [ -x "$bin" ] || { echo "build first: cargo build --release ($bin)" >&2; exit 1; }
  api=http://127.0.0.1:8000/api/v1
  IPV6WGM_ADMIN_PASSWORD=$pw ip netns exec "$NS_S" "$bin" --listen 127.0.0.1:8000 \
    --data-dir "$WORK/data" --log warn >"$WORK/ipv6wgm.log" 2>&1 &
  SERVER_PID=$!
  poll 200 ns "$NS_S" curl -sf "$api/status/live" -o /dev/null ||
    { echo "ipv6wgm did not start:" >&2; cat "$WORK/ipv6wgm.log" >&2; exit 1; }
  token=$(ns "$NS_S" curl -s "$api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  api_post() {
    ns "$NS_S" curl -s "$api$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"
  }
  id_of() { sed -n 's/.*"data":{"id":\([0-9]*\).*/\1/p'; }
  sid=$(api_post /wireguard/servers "{\"name\":\"bench\",\"interface\":\"$IF_S\",\"listen_port\":$WG_PORT,
    \"ipv4_address\":\"10.99.0.1/24\",\"ipv6_address\":\"fd99::1/64\",\"mtu\":1420}" | id_of)
  [ -n "$sid" ] || { echo "cannot create the server" >&2; exit 1; }
  api_post "/wireguard/servers/$sid/start" '{}' | grep -q '"status":"running"' ||
    { echo "cannot start the server:" >&2; cat "$WORK/ipv6wgm.log" >&2; exit 1; }
  cid=$(api_post /wireguard/clients "{\"server_id\":$sid,\"name\":\"bench\",\"persistent_keepalive\":25}" | id_of)
  [ -n "$cid" ] || { echo "cannot create the client" >&2; exit 1; }
  # The config exactly as a user downloads it; only the Endpoint is pointed at the underlay
  # address this topology uses (the server knows no public host here).
  ns "$NS_S" curl -sf "$api/wireguard/clients/$cid/config?format=conf" \
    -H "Authorization: Bearer $token" -o "$WORK/client.conf.orig"
  sed "s|^Endpoint = .*|Endpoint = $SRV_ENDPOINT|" "$WORK/client.conf.orig" >"$WORK/client.conf"
  SERVER_TUN_IP=10.99.0.1
}
# ========================================================================================

# Client side: always stock wireguard-go with $WORK/client.conf.
client_up() {
  local fam
  wggo_start "$NS_C" "$IF_C"
  CLIENT_PID=$WGGO_PID
  wg_quick_apply "$NS_C" "$IF_C" "$WORK/client.conf"
  # A client Address of /32 (full-tunnel configs) leaves the server's tunnel address
  # unrouted once the defaults are skipped: route it explicitly then.
  if ! ns "$NS_C" ip route get "$SERVER_TUN_IP" 2>/dev/null | grep -qw "dev $IF_C"; then
    case $SERVER_TUN_IP in *:*) fam=-6 ;; *) fam=-4 ;; esac
    ns "$NS_C" ip $fam route add "$SERVER_TUN_IP" dev "$IF_C"
  fi
}

# utime+stime (clock ticks, all threads) of PID; fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the (possibly space-containing) command name.
cpu_ticks() {
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) }
  set -- $s
  echo $((${12} + ${13}))
}

# ---------------------------------------------------------------------------------------
case $MODE in
  wggo) server_label="wireguard-go" ;;
  ipv6wgm) server_label="ipv6wgm" ;;
  *) echo "usage: $0 [wggo|ipv6wgm]" >&2; exit 64 ;;
esac

topology_up
"server_up_$MODE"
client_up

if ! ns "$NS_C" ping -q -n -c 3 -i 0.2 -w 10 "$SERVER_TUN_IP" >/dev/null; then
  echo "no ping through the tunnel to $SERVER_TUN_IP" >&2
  ns "$NS_C" wg show "$IF_C" >&2 || true
  exit 1
fi

ns "$NS_S" iperf3 -s >"$WORK/iperf3-server.log" 2>&1 &
poll 200 sh -c "ip netns exec '$NS_S' ss -Hltn 'sport = :5201' | grep -q ." ||
  { echo "iperf3 server did not listen" >&2; exit 1; }

iperf_args=(-c "$SERVER_TUN_IP" -t "$DURATION" -f m)
[ "$REVERSE" = 1 ] && iperf_args+=(-R)

results=()
lines=()
for ((run = 1; run <= RUNS; run++)); do
  s0=$(cpu_ticks "$SERVER_PID"); c0=$(cpu_ticks "$CLIENT_PID"); t0=$(date +%s%N)
  out=$(ns "$NS_C" iperf3 "${iperf_args[@]}")
  t1=$(date +%s%N); s1=$(cpu_ticks "$SERVER_PID"); c1=$(cpu_ticks "$CLIENT_PID")
  # The receiver's summary line: "... <n> Mbits/sec  receiver" (-f m fixes the unit).
  mbit=$(awk '/receiver/ { v = $(NF-2) } END { print v }' <<<"$out")
  [ -n "$mbit" ] || { echo "cannot parse iperf3 output:" >&2; echo "$out" >&2; exit 1; }
  read -r srv_cpu cli_cpu < <(awk -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v ns=$((t1 - t0)) -v hz="$CLK_TCK" \
    'BEGIN { secs = ns / 1e9; printf "%.0f %.0f\n", 100 * s / hz / secs, 100 * c / hz / secs }')
  results+=("$mbit")
  lines+=("| $run | $mbit | $srv_cpu % | $cli_cpu % |")
  echo "run $run/$RUNS: $mbit Mbit/s, server $server_label CPU $srv_cpu %, client wireguard-go CPU $cli_cpu %" >&2
done
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')

cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
cat <<EOF

### WireGuard tunnel throughput — $server_label server ↔ wireguard-go client — $(date -u '+%Y-%m-%d %H:%M UTC')

Command: \`bash bench/wg.sh $MODE\` (DURATION=$DURATION RUNS=$RUNS UNDERLAY=$UNDERLAY REVERSE=$REVERSE).
Machine: $(nproc) cores, $cpu_model, kernel $(uname -r); $(wireguard-go --version 2>/dev/null | head -1), $(iperf3 --version | head -1 | cut -d' ' -f1-2).
Two network namespaces on one veth pair, client Endpoint $SRV_ENDPOINT, tunnel MTU 1420;
iperf3 TCP, one stream, $([ "$REVERSE" = 1 ] && echo "server → client" || echo "client → server"), ${DURATION} s per run. CPU = utime+stime delta of the
process over the run, in % of one core (iperf3 and the kernel share the same cores).

| run | Mbit/s (receiver) | server $server_label CPU | client wireguard-go CPU |
|---|---|---|---|
$(printf '%s\n' "${lines[@]}")

**median: $median Mbit/s**
EOF
