#!/usr/bin/env python3
"""BGP figures for BENCHMARKS.md, against real peers on loopback:

1. our N announcements (default 10,000 IPv6 /48s) stored, session to BIRD started:
   time until BIRD has them all;
2. GoBGP holding M routes (default 100,000 and 1,000,000; 85 % IPv4 /24, 15 % IPv6 /48,
   AS paths from a pool of 50,000, 0-4 communities) sends them to us: time from `start`
   until `prefixes_received` = M, our CPU time, RSS before/after (bytes per route held);
3. the same M routes from GoBGP into BIRD 2 as the anchor (`birdc enable`, imported count,
   BIRD's RSS).

    cargo build --release && python3 bench/bgp.py [--ours 10000] [--routes 100000,1000000] [--rounds 2]

Needs bird2, gobgpd/gobgp, python3. Every process it starts is killed on exit.
"""

import argparse
import ipaddress
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

from benchlib import (Service, cpu_secs, free_port, kill_all, require_binary, spawn,
                      status_kib, wait)


class Ours(Service):
    """ipv6wgm as AS 65001."""

    def __init__(self, tmp, name):
        super().__init__(tmp, name, "[bgp]\nlocal_asn = 65001\nconnect_retry_secs = 1\n")

    def session(self, sid):
        return self.call("GET", f"/bgp/sessions/{sid}")


# ---- GoBGP and BIRD ----

def mrt_file(path, n, v6_share=0.15, paths=50000):
    """A TABLE_DUMP_V2 file `gobgp mrt inject` reads: n routes from AS 65003."""
    rnd = random.Random(1)
    pool = []
    for _ in range(paths):
        asns = [65003] + [rnd.randint(1, 400000) for _ in range(rnd.randint(1, 5))]
        comms = [rnd.getrandbits(32) for _ in range(rnd.choice([0, 0, 1, 2, 4]))]
        pool.append((asns, comms))

    def rec(sub, body):
        return struct.pack(">IHHI", 1795300000, 13, sub, len(body)) + body

    def attr(flags, typ, val):
        return struct.pack(">BBB", flags, typ, len(val)) + val

    nh6 = ipaddress.IPv6Address("2001:db8::3").packed
    n6 = int(n * v6_share)
    # `gobgp mrt inject` drops its last batch: the first routes are repeated at the end
    # (the same paths again, no change) so that the real ones all land.
    filler = []
    with open(path, "wb") as f:
        peer = struct.pack(">B4s4sI", 2, bytes([127, 0, 0, 3]), bytes([127, 0, 0, 3]), 65003)
        f.write(rec(1, bytes([127, 0, 0, 3]) + struct.pack(">HH", 0, 1) + peer))
        for i in range(n):
            asns, comms = pool[rnd.randrange(paths)]
            a = attr(0x40, 1, b"\x00")
            a += attr(0x40, 2, struct.pack(">BB", 2, len(asns)) + struct.pack(f">{len(asns)}I", *asns))
            if comms:
                a += attr(0xC0, 8, struct.pack(f">{len(comms)}I", *comms))
            if i < n - n6:  # 1.0.0.0/24 onwards
                pfx, sub = struct.pack(">BI", 24, ((1 << 16) + i) << 8)[:4], 2
                a = attr(0x40, 3, bytes([127, 0, 0, 3])) + a
            else:  # 2a00:0:j::/48
                j = i - (n - n6)
                pfx, sub = struct.pack(">B", 48) + ((0x2A00 << 32) | j).to_bytes(6, "big"), 4
                a = attr(0x80, 14, struct.pack(">HBB", 2, 1, 16) + nh6 + b"\x00") + a
            r = rec(sub, struct.pack(">I", i) + pfx + struct.pack(">HHIH", 1, 0, 1795300000, len(a)) + a)
            f.write(r)
            if i < 2000:
                filler.append(r)
        f.write(b"".join(filler))


class GoBgp:
    def __init__(self, tmp, neighbors):
        """neighbors: [(address, as)]; GoBGP only listens (on 127.0.0.3:self.port)."""
        self.grpc, self.port = free_port(), free_port()
        conf = os.path.join(tmp, "gobgp.toml")
        with open(conf, "w") as f:
            f.write(f'[global.config]\n  as = 65003\n  router-id = "127.0.0.3"\n  port = {self.port}\n'
                    '  local-address-list = ["127.0.0.3"]\n')
            for addr, asn in neighbors:
                f.write(f'[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "{addr}"\n'
                        f'    peer-as = {asn}\n  [neighbors.transport.config]\n'
                        f'    local-address = "127.0.0.3"\n    passive-mode = true\n')
                for fam in ("ipv4-unicast", "ipv6-unicast"):
                    f.write(f'  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n'
                            f'      afi-safi-name = "{fam}"\n')
        self.proc = spawn([shutil.which("gobgpd") or "/usr/sbin/gobgpd", "-f", conf, "-p",
                           "--api-hosts", f"127.0.0.1:{self.grpc}", "--pprof-disable", "--log-plain",
                           "-l", "warn"], os.path.join(tmp, "gobgpd.log"))
        wait("gobgpd", lambda: "AS" in self.cli("global"), 30)

    def cli(self, *args):
        r = subprocess.run(["gobgp", "-p", str(self.grpc), *args], capture_output=True, text=True)
        return r.stdout

    def count(self):
        total = 0
        for fam in ("ipv4", "ipv6"):
            for line in self.cli("global", "rib", "summary", "-a", fam).splitlines():
                if line.startswith("Destination:"):
                    total += int(line.split()[1].rstrip(","))
        return total

    def load(self, mrt, n):
        # `gobgp mrt inject` can return before its last batch is applied.
        for _ in range(3):
            subprocess.run(["gobgp", "-p", str(self.grpc), "mrt", "inject", "global", mrt],
                           capture_output=True)
            if wait("GoBGP's table", lambda: self.count() or None, 60) == n:
                return
            time.sleep(2)
            if self.count() == n:
                return
        sys.exit(f"GoBGP holds {self.count()} routes, not {n}")


class Bird:
    def __init__(self, tmp, body):
        self.dir = os.path.join(tmp, "bird")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "bird.conf")
        with open(conf, "w") as f:
            f.write("router id 127.0.0.2;\nprotocol device {}\n" + body)
        self.ctl = os.path.join(self.dir, "bird.ctl")
        self.proc = spawn([shutil.which("bird") or "/usr/sbin/bird", "-f", "-c", conf, "-s", self.ctl,
                           "-P", os.path.join(self.dir, "bird.pid")], os.path.join(self.dir, "out.log"))
        wait("BIRD", lambda: os.path.exists(self.ctl), 30)

    def birdc(self, *args):
        return subprocess.run(["birdc", "-s", self.ctl, *args], capture_output=True, text=True).stdout

    def imported(self, proto):
        total = 0
        for line in self.birdc("show", "protocols", "all", proto).splitlines():
            line = line.strip()
            if line.startswith("Routes:"):
                total += int(line.split()[1])
        return total


# ---- the measurements ----

class Established:
    """Remembers when a session was first seen Established (polled every 50 ms)."""

    def __init__(self):
        self.at = None

    def see(self, session):
        if self.at is None and session["status"] == "established":
            self.at = time.monotonic()
        return self.at is not None

    def see_bird(self, protocols):
        if self.at is None and "Established" in protocols:
            self.at = time.monotonic()
        return self.at is not None


def ours_to_bird(tmp, n):
    our_port, bird_port = free_port(), free_port()
    bird = Bird(tmp, f"""protocol bgp peer1 {{
  local 127.0.0.2 port {bird_port} as 65002; neighbor 127.0.0.1 port {our_port} as 65001;
  multihop 2; connect retry time 1;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
""")
    o = Ours(tmp, "to-bird")
    sid = o.call("POST", "/bgp/sessions", {
        "name": "bird", "neighbor": "127.0.0.2", "remote_as": 65002, "enabled": False,
        "local_address": "127.0.0.1", "local_port": our_port, "remote_port": bird_port,
        "next_hop_ipv6": "2001:db8::1"})["id"]
    t = time.monotonic()
    for i in range(n):
        o.call("POST", "/bgp/announcements", {"prefix": f"2a0f:{i >> 8:x}:{(i & 255) << 8:x}::/48",
                                              "community": "65001:100"})
    api_secs = time.monotonic() - t
    rss_before = status_kib(o.proc.pid, "VmRSS")
    t = time.monotonic()
    o.call("POST", f"/bgp/sessions/{sid}/start", {})
    wait("established", lambda: o.session(sid)["status"] == "established", 60)
    t_est = time.monotonic() - t
    wait(f"{n} routes in BIRD", lambda: bird.imported("peer1") >= n, 600, 0.02)
    secs = time.monotonic() - t
    out = {"n": n, "api_create_secs": round(api_secs, 2), "established_secs": round(t_est, 3),
           "all_in_bird_secs": round(secs, 3), "ours_rss_kib_before": rss_before,
           "ours_rss_kib_after": status_kib(o.proc.pid, "VmRSS")}
    # One more: a single new announcement on the established session.
    t = time.monotonic()
    o.call("POST", "/bgp/announcements", {"prefix": "2a0e::/48"})
    wait("one more route in BIRD", lambda: bird.imported("peer1") >= n + 1, 30, 0.01)
    out["one_more_secs"] = round(time.monotonic() - t, 3)
    for p in (o.proc, bird.proc):
        p.kill()
        p.wait()
    return out


def receive_ours(tmp, g, m, n):
    o = Ours(tmp, f"from-gobgp-{m}-{n}")
    sid = o.call("POST", "/bgp/sessions", {
        "name": "gobgp", "neighbor": "127.0.0.3", "remote_as": 65003, "enabled": False,
        "local_address": "127.0.0.1", "remote_port": g.port, "max_prefixes": 4_000_000})["id"]
    time.sleep(1)
    rss0, cpu0 = status_kib(o.proc.pid, "VmRSS"), cpu_secs(o.proc.pid)
    o.call("POST", f"/bgp/sessions/{sid}/start", {})
    est = Established()
    wait(f"{m} routes in ipv6wgm",
         lambda: est.see(o.session(sid)) and o.session(sid)["prefixes_received"] >= m, 1200, 0.05)
    res = measured(o.proc.pid, est, rss0, cpu0, m)
    res["status"] = o.session(sid)["status"]
    o.proc.kill()
    o.proc.wait()
    return res


def receive_bird(tmp, g, m):
    bird = Bird(tmp, f"""protocol bgp gobgp {{
  local 127.0.0.2 as 65002; neighbor 127.0.0.3 port {g.port} as 65003;
  multihop 2; disabled;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
""")
    time.sleep(1)
    rss0, cpu0 = status_kib(bird.proc.pid, "VmRSS"), cpu_secs(bird.proc.pid)
    bird.birdc("enable", "gobgp")
    est = Established()
    wait(f"{m} routes in BIRD",
         lambda: est.see_bird(bird.birdc("show", "protocols", "gobgp")) and bird.imported("gobgp") >= m,
         1200, 0.05)
    res = measured(bird.proc.pid, est, rss0, cpu0, m)
    bird.proc.kill()
    bird.proc.wait()
    return res


def measured(pid, est, rss0, cpu0, m):
    secs = time.monotonic() - est.at
    time.sleep(1)
    rss1 = status_kib(pid, "VmRSS")
    return {"secs_from_established": round(secs, 2), "cpu_secs": round(cpu_secs(pid) - cpu0, 2),
            "rss_kib_before": rss0, "rss_kib_after": rss1, "hwm_kib": status_kib(pid, "VmHWM"),
            "bytes_per_route": round((rss1 - rss0) * 1024 / m, 1)}


def gobgp_to_receivers(tmp, m, rounds):
    """GoBGP loads m routes once; then, `rounds` times, ipv6wgm and BIRD each take the full
    table from it in turn (one at a time, so they do not share GoBGP's CPU)."""
    mrt = os.path.join(tmp, f"routes-{m}.mrt")
    mrt_file(mrt, m)
    g = GoBgp(tmp, [("127.0.0.1", 65001), ("127.0.0.2", 65002)])
    t = time.monotonic()
    g.load(mrt, m)
    res = {"routes": m, "mrt_bytes": os.path.getsize(mrt),
           "gobgp_load_secs": round(time.monotonic() - t, 1), "ours": [], "bird": []}
    for n in range(rounds):
        res["ours"].append(receive_ours(tmp, g, m, n))
        res["bird"].append(receive_bird(tmp, g, m))
    g.proc.kill()
    g.proc.wait()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", type=int, default=10000)
    ap.add_argument("--routes", default="100000,1000000")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    require_binary()
    for tool in ("bird", "birdc", "gobgpd", "gobgp"):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            sys.exit(f"{tool} is not installed")
    tmp = tempfile.mkdtemp(prefix="bgp-bench-")
    try:
        if args.ours:
            print(json.dumps({"ours_to_bird": ours_to_bird(tmp, args.ours)}), flush=True)
        for m in filter(None, args.routes.split(",")):
            print(json.dumps({"gobgp_to": gobgp_to_receivers(tmp, int(m), args.rounds)}), flush=True)
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
