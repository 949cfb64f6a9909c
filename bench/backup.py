#!/usr/bin/env python3
"""Figures for issue 14 (BENCHMARKS.md), against the release binary on loopback: a router
with one WireGuard server, 1,000 clients and 10,000 prefix allocations (made through the
API), then

1. a full backup through the API: wall time from the request to `completed` (polled every
   10 ms), the archive's size against the database's, and the service's peak RSS during it
   (VmHWM, reset before through /proc/PID/clear_refs);
2. a restore of that backup: wall time to `completed` — it includes the automatic
   pre-restore backup, so that is timed on its own too — and the peak RSS during it.

    cargo build --release && python3 bench/backup.py

Needs python3 and root (to reset the peak RSS of the service). Every process it starts is
killed on exit.
"""

import os
import shutil
import sys
import tempfile
import time

from benchlib import Service, kill_all, require_binary

CLIENTS = 1000
ALLOCATIONS = 10000


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def until_done(svc, path):
    while True:
        v = svc.call("GET", path)
        if v["status"] != "running":
            return v
        time.sleep(0.01)


def main():
    require_binary()
    tmp = tempfile.mkdtemp(prefix="ipv6wgm-bench-backup-")
    try:
        svc = Service(tmp, "router", "")
        t = time.monotonic()
        server = svc.call("POST", "/wireguard/servers",
                          {"name": "bench", "interface": "wgbench0", "listen_port": 51999,
                           "ipv4_address": "10.96.0.1/16", "ipv6_address": "fd96::1/64"})
        for i in range(CLIENTS):
            svc.call("POST", "/wireguard/clients", {"server_id": server["id"], "name": f"c{i}"})
        pool = svc.call("POST", "/ipv6/pools", {"name": "bench", "prefix": "2001:db8::/32",
                                                 "prefix_length": 64})
        for i in range(ALLOCATIONS):
            svc.call("POST", f"/ipv6/pools/{pool['id']}/allocate", {"client_name": f"site-{i}"})
        setup = time.monotonic() - t
        db = os.path.getsize(os.path.join(tmp, "router", "ipv6wgm.db"))
        print(f"setup: {CLIENTS} clients, {ALLOCATIONS} allocations in {setup:.0f} s; "
              f"database {db / 1e6:.2f} MB (+ WAL)")
        idle = svc.kib("VmRSS")

        reset_peak(svc.proc.pid)
        t = time.monotonic()
        b = svc.call("POST", "/backup/backups/create", {"name": "bench", "backup_type": "full"})
        b = until_done(svc, f"/backup/backups/{b['id']}")
        took = time.monotonic() - t
        assert b["status"] == "completed", b
        peak = svc.kib("VmHWM")
        print(f"backup: {took * 1000:.0f} ms, archive {b['size_bytes'] / 1e6:.2f} MB "
              f"({b['size_bytes'] / db * 100:.0f} % of the database), RSS idle {idle} kB, "
              f"peak during it {peak} kB")

        reset_peak(svc.proc.pid)
        t = time.monotonic()
        r = svc.call("POST", f"/backup/backups/{b['id']}/restore", {})
        r = until_done(svc, f"/backup/restores/{r['id']}")
        took = time.monotonic() - t
        assert r["status"] == "completed", r
        peak = svc.kib("VmHWM")
        pre = svc.call("GET", f"/backup/backups/{r['pre_restore_backup_id']}")
        print(f"restore: {took * 1000:.0f} ms in all (checks, pre-restore backup, swap, "
              f"reload), peak RSS during it {peak} kB; restored: {', '.join(r['restored'])}")
        print(f"  of which the pre-restore backup: {pre['size_bytes'] / 1e6:.2f} MB archive")
        clients = svc.call("GET", "/wireguard/clients?size=1")["pagination"]["total"]
        allocs = svc.call("GET", "/ipv6/allocations?size=1")["pagination"]["total"]
        print(f"after the restore: {clients} clients, {allocs} allocations")
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
