#!/usr/bin/env python3
"""Issue 12 attacks on the HTTP layer, measured: VmRSS of the server and whether
/status/live still answers (from another address) while each attack runs.

    python3 tests/bench/http_attacks.py target/debug/ipv6wgm [port]

Starts the binary on 127.0.0.1 with a temporary data dir; the attacker talks from
127.0.0.2, the probe from 127.0.0.1. Loopback only; stops everything it starts.
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 18777
PW = "bench-password-1"


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return -1


def conn(src="127.0.0.2", timeout=10):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout, source_address=(src, 0))
    return s


def request(raw, src="127.0.0.1", timeout=10):
    s = conn(src, timeout)
    s.sendall(raw)
    out = b""
    try:
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    return out


def probe():
    t = time.time()
    try:
        out = request(b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout=5)
        ok = out.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return "answers in %.0f ms" % ((time.time() - t) * 1000) if ok else "NO ANSWER within 5 s"


def token():
    body = json.dumps({"username": "admin", "password": PW}).encode()
    out = request(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return json.loads(out.split(b"\r\n\r\n", 1)[1])["data"]["access_token"]


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def hold(n, first, rest=b"", src="127.0.0.2"):
    """n connections sending first + rest; src "spread" = each from its own address."""
    socks = []
    for i in range(n):
        addr = f"127.0.{1 + i // 250}.{1 + i % 250}" if src == "spread" else src
        try:
            s = conn(addr, timeout=2)
        except OSError:
            continue
        socks.append(s)
        try:
            s.sendall(first + rest)
        except OSError:
            pass  # refused or answered early: what the server does about it is measured
    return socks


def main():
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "c.toml")
    open(cfg, "w").write("[logs]\nmax_size_mb = 64\nmax_entries = 100000\n")
    env = dict(os.environ, IPV6WGM_ADMIN_PASSWORD=PW, IPV6WGM_LOG="warn")
    p = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{PORT}", "--data-dir", d + "/data",
                          "--config", cfg], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                request(b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                break
            except OSError:
                time.sleep(0.1)
        print(f"binary: {BIN}")
        print(f"idle RSS: {rss(p.pid)} MiB")

        # Item 2: 300 stalled login bodies (one byte of a 1 MiB body).
        head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1048576\r\n\r\n")
        socks = hold(300, head + b"{")
        time.sleep(2)
        print(f"300 stalled login bodies: /status/live {probe()}, RSS {rss(p.pid)} MiB")
        close_all(socks)
        time.sleep(2)
        # … filled to ~1 MiB each.
        socks = hold(300, head, b"x" * ((1 << 20) - 1))
        time.sleep(3)
        print(f"300 login bodies of ~1 MiB: /status/live {probe()}, RSS {rss(p.pid)} MiB")
        close_all(socks)
        time.sleep(2)

        # The same from 300 addresses (no per-address cap helps): what each connection costs.
        socks = hold(300, head, b"x" * ((1 << 20) - 1), src="spread")
        time.sleep(3)
        print(f"… from 300 addresses: /status/live {probe()}, RSS {rss(p.pid)} MiB")
        close_all(socks)
        time.sleep(2)
        socks = hold(300, b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n1000\r\n" + b"x" * 4096 + b"\r\n", src="spread")
        time.sleep(3)
        print(f"300 chunked login bodies stalled after 4 KiB, 300 addresses: /status/live {probe()}, "
              f"RSS {rss(p.pid)} MiB")
        close_all(socks)
        time.sleep(2)

        # Item 3: 256 unfinished heads of ~390 KB.
        socks = hold(256, b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 390_000)
        time.sleep(3)
        print(f"256 unfinished 390 KB heads: /status/live {probe()}, RSS {rss(p.pid)} MiB")
        close_all(socks)
        time.sleep(2)
        socks = hold(256, b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 390_000, src="spread")
        time.sleep(3)
        print(f"… from 256 addresses: /status/live {probe()}, RSS {rss(p.pid)} MiB")
        close_all(socks)
        time.sleep(2)

        # Item 5: 24 slow readers of a ~16 MB export.
        tok = token()
        req = ("DELETE /api/v1/users/" + "9" * 1000 + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
               + tok + "\r\nUser-Agent: " + "u" * 250 + "\r\n\r\n").encode()
        s = conn("127.0.0.1", 60)
        f = s.makefile("rb")
        for _ in range(48):
            s.sendall(req * 100)
            for _ in range(100):
                f.readline()
                n = 0
                while True:
                    h = f.readline()
                    if h == b"\r\n":
                        break
                    if h.lower().startswith(b"content-length"):
                        n = int(h.split(b":")[1])
                f.read(n)
        s.close()
        out = request(f"GET /api/v1/logs/export?format=json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      f"Authorization: Bearer {tok}\r\n\r\n".encode(), timeout=60)
        data = json.loads(out.split(b"\r\n\r\n", 1)[1])["data"]
        url, size = data["download_url"], data["file_size"]
        before = rss(p.pid)
        socks = []
        for _ in range(24):
            c = conn("127.0.0.2")
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(f"GET {url} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {tok}\r\n\r\n".encode())
            socks.append(c)
        time.sleep(5)
        print(f"24 slow readers of a {size / 1e6:.1f} MB export: RSS {before} -> {rss(p.pid)} MiB, "
              f"/status/live {probe()}")
        close_all(socks)
        time.sleep(2)

        # Item 7: 256 WebSockets without a token, then a real user.
        ws = ("GET /api/v1/ws/connect HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
        socks = []
        for _ in range(256):
            try:
                c = conn("127.0.0.2")
                socks.append(c)
                c.sendall(ws)
                c.recv(1024)
            except OSError:
                pass  # refused: over the address's connection cap
        out = request(f"GET /api/v1/ws/system/status?token={tok} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode(), timeout=2)
        status = out.split(b"\r\n", 1)[0].decode() or "no answer"
        print(f"256 WebSockets without a token, then one with: {status}")
        close_all(socks)
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


main()
