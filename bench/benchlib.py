"""Helpers shared by the Python benchmarks: the release binary started on loopback and
driven through its API, /proc figures of a process, and cleanup of what was started."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "target/release/ipv6wgm"))
PASSWORD = "bench-admin-password"
# Every process started here; `kill_all` stops them.
PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, log, env=None):
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(log, "w"),
                         stderr=subprocess.STDOUT, env=env)
    PROCS.append(p)
    return p


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()


def wait(what, f, secs=600, step=0.05):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        v = f()
        if v:
            return v
        time.sleep(step)
    sys.exit(f"timed out waiting for {what}")


def status_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def require_binary():
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: cargo build --release")


class Service:
    """ipv6wgm with `config` (TOML), data in `tmp/name`, logged in as admin."""

    def __init__(self, tmp, name, config):
        self.port = free_port()
        cfg = os.path.join(tmp, f"{name}.toml")
        with open(cfg, "w") as f:
            f.write(config)
        env = dict(os.environ, IPV6WGM_ADMIN_PASSWORD=PASSWORD)
        self.proc = spawn([BIN, "--listen", f"127.0.0.1:{self.port}", "--data-dir",
                           os.path.join(tmp, name), "--config", cfg, "--log", "warn"],
                          os.path.join(tmp, f"{name}.log"), env)
        wait("ipv6wgm", self._live, 30)
        self.token = None
        self.token = self.call("POST", "/auth/login",
                               {"username": "admin", "password": PASSWORD})["access_token"]

    def _live(self):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/status/live", timeout=1)
            return True
        except OSError:
            return False

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v1{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)["data"]

    def kib(self, field="VmRSS"):
        return status_kib(self.proc.pid, field)

    def cpu(self):
        return cpu_secs(self.proc.pid)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
