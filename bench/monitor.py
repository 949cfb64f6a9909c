#!/usr/bin/env python3
"""Figures for issue 7 (BENCHMARKS.md), against the release binary on loopback:

1. the collector's cost: CPU time of the idle service over 120 s at a 5 s interval (24
   samples) against the same at a 3600 s interval (one sample), per sample; and the wall
   time of one sample as the service reports it (`collector.last_tick_ms`);
2. the memory of 24 h of history at the default interval (30 s): the history's own size
   (`collector.history_bytes`) and RSS with `history_hours = 24` against `= 1`;
3. WebSockets: RSS with 200 clients connected to `/ws/connect` (channels system, wireguard,
   bgp), and the latency from a change through the API (a new BGP session) to its
   `bgp_status` message at every client, 10 rounds.

    cargo build --release && python3 bench/monitor.py

Needs python3 only (a minimal WebSocket client is below). Every process it starts is
killed on exit.
"""

import base64
import json
import os
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import time

from benchlib import Service, kill_all, require_binary


# ---- a minimal WebSocket client (RFC 6455): text frames in, nothing out but the handshake ----

class Client:
    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        head, self.buf = head.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.sock.setblocking(False)

    def feed(self):
        """Reads what is there; returns the complete text messages."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            data = b""
        if data == b"" and not self.buf:
            return []
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            i = 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, i = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, i = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < i + n:
                break
            payload, self.buf = self.buf[i:i + n], self.buf[i + n:]
            if op == 1:
                out.append(json.loads(payload))
        return out


def collector_cost(tmp):
    out = {}
    for name, interval in (("fast", 5), ("slow", 3600)):
        s = Service(tmp, f"cost-{name}", f"[monitoring]\ninterval_secs = {interval}\n")
        time.sleep(2)
        c0 = s.cpu()
        time.sleep(120)
        out[name] = s.cpu() - c0
        if name == "fast":
            d = s.call("GET", "/monitoring/dashboard")
            out["last_tick_ms"] = d["collector"]["last_tick_ms"]
            out["rss_kib"] = s.kib()
        s.stop()
    samples = 120 / 5
    out["cpu_ms_per_sample"] = round((out["fast"] - out["slow"]) * 1000 / samples, 2)
    return out


def history_memory(tmp):
    out = {}
    for hours in (1, 24):
        s = Service(tmp, f"hist-{hours}", f"[monitoring]\ninterval_secs = 30\nhistory_hours = {hours}\n")
        time.sleep(3)
        d = s.call("GET", "/monitoring/dashboard")["collector"]
        out[hours] = {"rss_kib": s.kib(), "history_bytes": d["history_bytes"],
                      "capacity": d["history_capacity"], "metrics": d["history_metrics"]}
        s.stop()
    return out


def websockets(tmp, n=200, rounds=10):
    s = Service(tmp, "ws", "[monitoring]\ninterval_secs = 30\n")
    time.sleep(2)
    rss0 = s.kib()
    path = f"/api/v1/ws/connect?token={s.token}&channels=system,wireguard,bgp"
    clients = [Client(s.port, path) for _ in range(n)]
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)

    def pump(until, want=None):
        """Reads until `until` (monotonic); with `want`, returns per-client arrival times of
        the first message for which want(msg) holds."""
        got = {}
        while time.monotonic() < until and (want is None or len(got) < n):
            for key, _ in sel.select(timeout=0.05):
                c = key.data
                for m in c.feed():
                    if want and id(c) not in got and want(m):
                        got[id(c)] = time.monotonic()
        return got

    pump(time.monotonic() + 3)  # the initial states
    rss1 = s.kib()
    latencies = []
    for r in range(rounds):
        name = f"bench-{r}"
        t0 = time.monotonic()
        s.call("POST", "/bgp/sessions", {"name": name, "neighbor": f"192.0.2.{r + 1}",
                                         "remote_as": 65002, "local_as": 65001, "passive": True})
        got = pump(t0 + 10, lambda m, name=name: m.get("type") == "bgp_status"
                   and any(x["name"] == name for x in m["data"]["sessions"]))
        if len(got) < n:
            sys.exit(f"round {r}: only {len(got)} of {n} clients got the change")
        latencies += [(t - t0) * 1000 for t in got.values()]
        pump(time.monotonic() + 0.5)
    rss2 = s.kib()
    latencies.sort()
    q = lambda p: round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 2)
    out = {"clients": n, "rss_kib_before": rss0, "rss_kib_connected": rss1,
           "rss_kib_after_rounds": rss2, "hwm_kib": s.kib("VmHWM"),
           "bytes_per_client": round((rss1 - rss0) * 1024 / n),
           "latency_ms": {"p50": q(0.5), "p99": q(0.99), "max": round(latencies[-1], 2),
                          "mean": round(statistics.mean(latencies), 2)},
           "deliveries": len(latencies)}
    for c in clients:
        c.sock.close()
    s.stop()
    return out


def main():
    require_binary()
    tmp = tempfile.mkdtemp(prefix="monitor-bench-")
    try:
        print(json.dumps({"websockets": websockets(tmp)}), flush=True)
        print(json.dumps({"history": history_memory(tmp)}), flush=True)
        print(json.dumps({"collector": collector_cost(tmp)}), flush=True)
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
