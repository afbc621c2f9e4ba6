#!/usr/bin/env python3
"""spendgate's benchmark (run it with bench/run.sh).

Core 0 runs the load generator (wrk) and a canned upstream (nginx answering every
request with a recorded provider answer, so it is never the bottleneck); core 1 runs
the proxy under test: spendgate (auth, checks, limits, metering and the record writer
all on, SQLite on disk) or nginx as a plain reverse proxy (the reference). Every lane is
measured direct (no proxy), through nginx and through spendgate, in the same run.

Also: time to first token added on a slow stream, RSS idle / with 2,000 open streams /
after load, start-up time and memory with 1M keys, admission cost with 10k and 1M keys.
Prints one table and writes it to a file (default bench/results/latest.md).
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOAD_CORE, PROXY_CORE = "0", "1"
UPSTREAM_PORT, NGINX_PORT, SPENDGATE_PORT, MOCK_PORT, FLOOR_PORT = 19200, 19300, 19400, 19500, 19600
TICK = os.sysconf("SC_CLK_TCK")
PROMPT = "Say hello in a friendly way."
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def chat(model, stream):
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
    return body


# name, client path, body, key format, upstream kind, upstream path (direct lane)
LANES = [
    ("openai chat", "/v1/chat/completions", chat("gpt-4o-mini", False), "openai", "json", "/json/v1/chat/completions"),
    ("openai chat, stream", "/v1/chat/completions", chat("gpt-4o-mini", True), "openai", "stream", "/stream/v1/chat/completions"),
    ("anthropic messages", "/v1/messages", chat("claude-sonnet-4-20250514", False), "anthropic", "json", "/json/v1/messages"),
    ("anthropic messages, stream", "/v1/messages", chat("claude-sonnet-4-20250514", True), "anthropic", "stream", "/stream/v1/messages"),
    ("openai client on claude", "/v1/chat/completions", chat("claude-sonnet-4-20250514", False), "openai", "json", "/json/v1/messages"),
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def pinned(core, cmd):
    return ["taskset", "-c", core] + cmd


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def wait_http(port, path="/healthz", timeout=120):
    """Until the server answers HTTP (it listens before it has loaded its keys)."""
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"no HTTP answer on port {port}")


def post(port, path, body, headers):
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST")
    for k, v in headers.items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def client_headers(fmt, key):
    if fmt == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    return {"authorization": f"Bearer {key}", "content-type": "application/json"}


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.dir = Path(tempfile.mkdtemp(prefix="spendgate-bench-"))
        self.dir.chmod(0o755)  # nginx's workers read the canned answers as another user
        self.procs = []
        self.rows = []
        self.notes = []

    # --- the parts ---------------------------------------------------------------

    def start(self, cmd, log, env=None, core=None):
        full = pinned(core, cmd) if core else cmd
        p = subprocess.Popen(full, stdout=open(self.dir / log, "w"), stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        self.procs.remove(p)

    def record_canned(self):
        """Real answers of the project's mock, recorded once, served by nginx."""
        mock = self.start([self.bin, "mock-provider", "--listen", f"127.0.0.1:{MOCK_PORT}"], "mock-record.log")
        wait_port(MOCK_PORT)
        canned = self.dir / "canned"
        for kind in ("json", "stream"):
            (canned / kind / "v1" / "chat").mkdir(parents=True, exist_ok=True)
            body = chat("gpt-4o-mini", kind == "stream")
            if kind == "stream":
                body["stream_options"] = {"include_usage": True}  # what spendgate asks OpenAI for
            (canned / kind / "v1" / "chat" / "completions").write_bytes(
                post(MOCK_PORT, "/v1/chat/completions", body, client_headers("openai", "x"))
            )
            body = chat("claude-sonnet-4-20250514", kind == "stream")
            (canned / kind / "v1" / "messages").write_bytes(
                post(MOCK_PORT, "/v1/messages", body, client_headers("anthropic", "x"))
            )
        self.stop(mock)
        return canned

    def nginx(self, name, port, core, server_block):
        conf = self.dir / f"{name}.conf"
        conf.write_text(
            f"""worker_processes 1;
pid {self.dir}/{name}.pid;
error_log {self.dir}/{name}-error.log;
daemon off;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  {server_block.replace("PORT", str(port))}
}}
"""
        )
        p = self.start([NGINX, "-c", str(conf)], f"{name}.log", core=core)
        wait_port(port)
        return p

    def start_upstream(self, canned):
        return self.nginx(
            "upstream",
            UPSTREAM_PORT,
            LOAD_CORE,
            f"""server {{
    listen 127.0.0.1:PORT reuseport backlog=8192;
    keepalive_requests 10000000;
    root {canned};
    location /json/ {{ default_type application/json; error_page 405 =200 $uri; }}
    location /stream/ {{ default_type text/event-stream; error_page 405 =200 $uri; }}
  }}""",
        )

    def start_reference(self):
        return self.nginx(
            "reference",
            NGINX_PORT,
            PROXY_CORE,
            f"""upstream up {{ server 127.0.0.1:{UPSTREAM_PORT}; keepalive 512; }}
  server {{
    listen 127.0.0.1:PORT reuseport backlog=8192;
    keepalive_requests 10000000;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }}
  }}""",
        )

    def spendgate(self, name, db, upstream_base=None, anthropic_base=None):
        env = dict(os.environ)
        env.update(
            {
                "SPENDGATE_LOG": self.args.log_level,
                "OPENAI_API_KEY": "sk-bench",
                "ANTHROPIC_API_KEY": "sk-ant-bench",
                "OPENAI_BASE_URL": upstream_base or f"http://127.0.0.1:{MOCK_PORT}/v1",
                "ANTHROPIC_BASE_URL": anthropic_base or f"http://127.0.0.1:{MOCK_PORT}",
            }
        )
        started = time.perf_counter()
        p = self.start(
            [self.bin, "serve", "--listen", f"127.0.0.1:{SPENDGATE_PORT}", "--database", f"sqlite://{db}"],
            f"{name}.log",
            env=env,
            core=PROXY_CORE,
        )
        wait_http(SPENDGATE_PORT)
        return p, time.perf_counter() - started

    def wallet(self, db):
        out = run([self.bin, "wallets", "create", "--name", "bench", "--database", f"sqlite://{db}", "--json"])
        return json.loads(out.stdout)["key"]

    def spend_key(self, wallet_key, fmt):
        body = {
            "name": f"bench {fmt}",
            "request_shape": fmt,
            # Every check on: a spend cap, a request cap and a rate limit, none of them hit.
            "spend_limit": {"amount": "100000", "cycle": "monthly"},
            "request_limit": {"count": 1000000000, "cycle": "monthly"},
            "rate_limit": {"rpm": 10000000, "burst": 1000000},
        }
        out = post(SPENDGATE_PORT, "/v1/spend_keys", body, {"authorization": f"Bearer {wallet_key}", "content-type": "application/json"})
        return json.loads(out)["key"]

    # --- measuring ---------------------------------------------------------------

    def wrk(self, url, body, headers, conns, seconds, rate=None):
        script = self.dir / "lane.lua"
        lua = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
        lua += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
        if rate:
            # Open-loop-ish pacing: each connection waits so that all together send ~rate/s.
            lua.append(f"function delay() return {conns * 1000.0 / rate:.3f} end")
        script.write_text("\n".join(lua) + "\n")
        out = run(pinned(LOAD_CORE, ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script), url])).stdout
        return parse_wrk(out)

    def lane(self, label, port, path, body, headers, conns, pids, extra=None):
        url = f"http://127.0.0.1:{port}{path}"
        self.wrk(url, body, headers, conns, 1)  # warm-up (connections, caches)
        before = cpu_seconds(pids) if pids else 0
        r = self.wrk(url, body, headers, conns, self.args.seconds)
        if r["non2xx"]:
            raise RuntimeError(f"{label}: {r['non2xx']} answers were not 2xx")
        cpu = (cpu_seconds(pids) - before) if pids else None
        r["cpu_us"] = cpu * 1e6 / r["requests"] if cpu is not None and r["requests"] else None
        r["rss"] = max(rss_mb(p) for p in pids) if pids else None
        r.update(extra or {})
        return r

    def throughput(self, canned):
        upstream = self.start_upstream(canned)
        reference = self.start_reference()
        ref_pids = children(reference.pid) or [reference.pid]
        db = self.dir / "lanes.db"
        wallet = self.wallet(db)
        results = {}
        for kind in ("json", "stream"):
            base = f"http://127.0.0.1:{UPSTREAM_PORT}/{kind}"
            sg, _ = self.spendgate(f"spendgate-{kind}", db, f"{base}/v1", base)
            keys = {fmt: self.spend_key(wallet, fmt) for fmt in ("openai", "anthropic")}
            for name, path, body, fmt, lane_kind, direct_path in LANES:
                if lane_kind != kind or (self.args.lane and self.args.lane not in name):
                    continue
                direct_body = body  # the canned upstream answers whatever it is asked
                up_fmt = "anthropic" if direct_path.endswith("/messages") else "openai"
                for c in self.args.conns:
                    d = self.lane(f"{name} direct", UPSTREAM_PORT, direct_path, direct_body, client_headers(up_fmt, "x"), c, [])
                    # nginx and spendgate in turns, the median run of each: this machine's
                    # speed drifts from minute to minute, so the two are measured together.
                    runs = {"nginx": [], "spendgate": []}
                    for _ in range(self.args.rounds):
                        runs["nginx"].append(
                            self.lane(f"{name} nginx", NGINX_PORT, direct_path, direct_body, client_headers(up_fmt, "x"), c, ref_pids)
                        )
                        runs["spendgate"].append(
                            self.lane(f"{name} spendgate", SPENDGATE_PORT, path, body, client_headers(fmt, keys[fmt]), c, [sg.pid])
                        )
                    n, s = median_run(runs["nginx"]), median_run(runs["spendgate"])
                    results[(name, c)] = (d, n, s)
                    self.print_row(name, c, d, n, s)
            # Latency at half of spendgate's best throughput on this lane (paced load).
            if kind == "json" and not self.args.quick and not self.args.lane:
                name, path, body, fmt = LANES[0][0], LANES[0][1], LANES[0][2], LANES[0][3]
                best = max(results[(name, c)][2]["rps"] for c in self.args.conns)
                half = best / 2
                p = self.wrk(f"http://127.0.0.1:{SPENDGATE_PORT}{path}", body, client_headers(fmt, keys[fmt]), 64, self.args.seconds, rate=half)
                q = self.wrk(f"http://127.0.0.1:{NGINX_PORT}{LANES[0][5]}", body, client_headers("openai", "x"), 64, self.args.seconds, rate=half)
                self.notes.append(
                    f"openai chat at half of spendgate's best throughput ({half:,.0f} req/s asked, 64 connections): spendgate "
                    f"{p['rps']:,.0f} served, p50 {p['p50']:.3f} ms, p99 {p['p99']:.3f} ms; nginx at the same rate "
                    f"{q['rps']:,.0f} served, p50 {q['p50']:.3f} ms, p99 {q['p99']:.3f} ms"
                )
            self.stop(sg)
        self.stop(reference)
        self.stop(upstream)
        return results

    def print_row(self, name, c, d, n, s):
        def fmt_cpu(x):
            return f"{x:.1f}" if x is not None else "-"

        line = (
            f"| {name} | {c} | {d['rps']:,.0f} | {n['rps']:,.0f} | {s['rps']:,.0f} | {s['rps'] / n['rps']:.2f}x "
            f"| {d['p50']:.3f} / {d['p99']:.3f} | {n['p50']:.3f} / {n['p99']:.3f} | {s['p50']:.3f} / {s['p99']:.3f} "
            f"| {n['p50'] - d['p50']:+.3f} | {s['p50'] - d['p50']:+.3f} | {fmt_cpu(n['cpu_us'])} | {fmt_cpu(s['cpu_us'])} "
            f"| {n['rss']:.0f} | {s['rss']:.0f} |"
        )
        self.rows.append(line)
        print(line, flush=True)

    def ttft(self):
        """Time to first token on a slow stream (64 chunks, 20 ms apart), added by each proxy."""
        mock = self.start(
            [self.bin, "mock-provider", "--listen", f"127.0.0.1:{MOCK_PORT}", "--chunk-delay-ms", "20", "--output-tokens", "64"],
            "mock-slow.log",
            core=LOAD_CORE,
        )
        wait_port(MOCK_PORT)
        reference = self.nginx(
            "reference-slow",
            NGINX_PORT,
            PROXY_CORE,
            f"""upstream up {{ server 127.0.0.1:{MOCK_PORT}; keepalive 64; }}
  server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }} }}""",
        )
        db = self.dir / "ttft.db"
        wallet = self.wallet(db)
        sg, _ = self.spendgate("spendgate-slow", db)
        key = self.spend_key(wallet, "openai")
        body = chat("gpt-4o-mini", True)
        out = {}
        for label, port, headers in (
            ("direct", MOCK_PORT, client_headers("openai", "x")),
            ("nginx", NGINX_PORT, client_headers("openai", "x")),
            ("spendgate", SPENDGATE_PORT, client_headers("openai", key)),
        ):
            samples = [first_token(port, "/v1/chat/completions", body, headers) for _ in range(self.args.ttft_samples)]
            out[label] = (statistics.median(samples), sorted(samples)[int(len(samples) * 0.9)])
        self.stop(sg)
        self.stop(reference)
        self.stop(mock)
        d = out["direct"][0]
        self.notes.append(
            "time to first token, slow stream (64 chunks 20 ms apart), median of "
            f"{self.args.ttft_samples}: direct {d:.3f} ms; nginx {out['nginx'][0]:.3f} ms ({out['nginx'][0] - d:+.3f}); "
            f"spendgate {out['spendgate'][0]:.3f} ms ({out['spendgate'][0] - d:+.3f}); p90 spendgate {out['spendgate'][1]:.3f} ms"
        )
        return out

    def memory(self):
        """RSS idle, with 2,000 open streams, and after."""
        mock = self.start(
            [self.bin, "mock-provider", "--listen", f"127.0.0.1:{MOCK_PORT}", "--chunk-delay-ms", "200", "--output-tokens", "64"],
            "mock-streams.log",
            core=LOAD_CORE,
        )
        wait_port(MOCK_PORT)
        db = self.dir / "memory.db"
        wallet = self.wallet(db)
        sg, startup = self.spendgate("spendgate-memory", db)
        key = self.spend_key(wallet, "openai")
        time.sleep(1)
        idle = rss_mb(sg.pid)
        held = asyncio.run(open_streams(SPENDGATE_PORT, key, self.args.streams, lambda: rss_mb(sg.pid)))
        time.sleep(3)
        after = rss_mb(sg.pid)
        self.stop(sg)
        self.stop(mock)
        self.notes.append(
            f"RSS: idle {idle:.1f} MB; with {self.args.streams:,} open streams {held:.1f} MB; 3 s after they closed {after:.1f} MB; "
            f"start-up (process start to accepting connections, empty database) {startup * 1000:.0f} ms"
        )

    def many_keys(self, canned):
        """Start-up, memory per key and admission cost with 10k and 1M keys in the store.

        Keys are read from the store on first use: start-up reads none. So, per count:
        start-up and RSS; the steady admission cost (one key, in memory); then a run in
        which every request uses a key not used before (a store read each), after which
        RSS gives the memory per key in memory; then the steady cost again, with all
        those keys in memory."""
        upstream = self.start_upstream(canned)
        base = f"http://127.0.0.1:{UPSTREAM_PORT}/json"
        body, lines = chat("gpt-4o-mini", False), []
        for count in self.args.key_counts:
            db = self.dir / f"keys-{count}.db"
            wallet = self.wallet(db)
            seed_keys(db, count)
            sg, startup = self.spendgate(f"spendgate-{count}-keys", db, f"{base}/v1", base)
            time.sleep(0.5)
            rss = rss_mb(sg.pid)
            key = self.spend_key(wallet, "openai")
            steady = self.lane("keys", SPENDGATE_PORT, "/v1/chat/completions", body, client_headers("openai", key), 32, [sg.pid])
            touch = min(count, self.args.touched_keys)
            before = rss_mb(sg.pid)
            first = self.first_use(sg, touch, body)
            time.sleep(0.5)
            per_key = (rss_mb(sg.pid) - before) * 1024 * 1024 / first["keys"]
            loaded = self.lane("keys", SPENDGATE_PORT, "/v1/chat/completions", body, client_headers("openai", key), 32, [sg.pid])
            self.stop(sg)
            lines.append(
                f"{count:,} keys in the store: start-up {startup * 1000:,.0f} ms, RSS {rss:.1f} MB; one key: "
                f"{steady['rps']:,.0f} req/s at 32 connections, {steady['cpu_us']:.1f} µs CPU per request. "
                f"{first['requests']:,} requests using {first['keys']:,} keys, each read from the store on first use: "
                f"{first['rps']:,.0f} req/s, p50 {first['p50']:.3f} ms; then {per_key:.0f} bytes per key in memory, and with "
                f"them all in memory "
                f"{loaded['rps']:,.0f} req/s, {loaded['cpu_us']:.1f} µs CPU per request "
                f"({loaded['cpu_us'] / steady['cpu_us']:.2f}x)"
            )
        self.stop(upstream)
        self.notes.extend(lines)

    def first_use(self, sg, count, body):
        """3 s at 32 connections, each request with the next of `count` seeded keys (each
        used for the first time until all have been)."""
        keys = self.dir / "keys.txt"
        keys.write_text("\n".join(seed_secret(i) for i in range(count)) + "\n")
        script = self.dir / "first-use.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
            'wrk.headers["content-type"] = "application/json"\n'
            f'local keys, i, n = {{}}, 0, 0\nfor line in io.lines("{keys}") do n = n + 1; keys[n] = line end\n'
            "request = function()\n  i = i % n + 1\n"
            '  return wrk.format(nil, nil, {["authorization"] = "Bearer " .. keys[i]})\nend\n'
        )
        url = f"http://127.0.0.1:{SPENDGATE_PORT}/v1/chat/completions"
        out = run(pinned(LOAD_CORE, ["wrk", "-t1", "-c32", "-d3s", "--latency", "-s", str(script), url])).stdout
        r = parse_wrk(out)
        if r["non2xx"]:
            raise RuntimeError(f"first use: {r['non2xx']} answers were not 2xx")
        r["keys"] = min(count, r["requests"])
        return r

    def floor(self, canned):
        """The floor: a bare hyper proxy (bench/examples/floor.rs), next to nginx and
        spendgate on the openai chat lane, in alternating rounds."""
        if not self.args.floor_bin:
            return
        upstream = self.start_upstream(canned)
        reference = self.start_reference()
        ref_pids = children(reference.pid) or [reference.pid]
        base = f"http://127.0.0.1:{UPSTREAM_PORT}/json"
        floor = self.start([self.args.floor_bin, f"127.0.0.1:{FLOOR_PORT}", base], "floor.log", core=PROXY_CORE)
        wait_port(FLOOR_PORT)
        db = self.dir / "floor.db"
        wallet = self.wallet(db)
        sg, _ = self.spendgate("spendgate-floor", db, f"{base}/v1", base)
        key = self.spend_key(wallet, "openai")
        name, path, body, _, _, direct_path = LANES[0]
        for c in self.args.conns[1:]:
            runs = {"nginx": [], "floor": [], "spendgate": []}
            for _ in range(self.args.rounds):
                runs["nginx"].append(self.lane("nginx", NGINX_PORT, direct_path, body, client_headers("openai", "x"), c, ref_pids))
                runs["floor"].append(self.lane("floor", FLOOR_PORT, path, body, client_headers("openai", "x"), c, [floor.pid]))
                runs["spendgate"].append(self.lane("spendgate", SPENDGATE_PORT, path, body, client_headers("openai", key), c, [sg.pid]))
            n, f, s = (median_run(runs[k]) for k in ("nginx", "floor", "spendgate"))
            self.notes.append(
                f"{name}, {c} connections: nginx {n['rps']:,.0f} req/s, {n['cpu_us']:.1f} µs CPU per request; bare hyper proxy "
                f"(the floor) {f['rps']:,.0f} req/s, {f['cpu_us']:.1f} µs; spendgate {s['rps']:,.0f} req/s, {s['cpu_us']:.1f} µs"
            )
        for p in (sg, floor, reference, upstream):
            self.stop(p)

    def cleanup(self):
        for p in list(self.procs):
            self.stop(p)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def median_run(runs):
    """The run with the median requests/s."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def parse_wrk(out):
    def ms(text):
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    r["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    for p in ("50", "99"):
        r[f"p{p}"] = ms(re.search(rf"^\s+{p}%\s+(\S+)", out, re.M).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def first_token(port, path, body, headers):
    """Milliseconds from sending the request to the first content token of the stream."""
    payload = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(payload)}\r\nconnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.perf_counter()
    s.sendall(head.encode() + payload)
    seen = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("stream ended before a token")
        seen += chunk
        if b'"content":"lorem' in seen or b'"content": "lorem' in seen:
            elapsed = (time.perf_counter() - start) * 1000
            s.close()
            return elapsed


async def open_streams(port, key, count, sample):
    """Opens `count` slow streams at once, waits for all to start, samples RSS, closes them."""
    body = json.dumps(chat("gpt-4o-mini", True)).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
        f"authorization: Bearer {key}\r\ncontent-type: application/json\r\n\r\n"
    ).encode()

    async def one():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(head + body)
        await w.drain()
        data = b""
        while b"data:" not in data:
            chunk = await r.read(4096)
            if not chunk:
                raise RuntimeError("stream closed early")
            data += chunk
        return w

    writers = []
    for i in range(0, count, 250):  # in waves, within the listen backlog
        writers += await asyncio.gather(*(one() for _ in range(min(250, count - i))))
    await asyncio.sleep(1)
    rss = sample()
    for w in writers:
        w.close()
    return rss


def seed_secret(i):
    """The secret of the `i`th seeded key (so the benchmark can use them)."""
    return f"lava_sk_seed{i:024d}"


def seed_keys(db, count):
    """`count` spend keys written straight into the store's schema (the bench's fast path)."""
    import hashlib

    con = sqlite3.connect(db)
    wallet = con.execute("SELECT id FROM wallets LIMIT 1").fetchone()[0]
    now = int(time.time() * 1000)
    rows = (
        (f"key_seed{i:08d}", wallet, f"seeded {i}", "active", "openai", None, None, 50_000_000_000, "monthly",
         None, None, None, None, None, hashlib.sha256(seed_secret(i).encode()).digest(), "lava_sk_seed****",
         now, now, None, 1)
        for i in range(count)
    )
    con.executemany(
        "INSERT INTO spend_keys (id, wallet_id, name, status, request_shape, allowed_models, allowed_providers, "
        "spend_limit_nanos, spend_limit_cycle, request_limit_count, request_limit_cycle, rate_limit_rpm, "
        "rate_limit_burst, expires_at, key_hash, key_preview, created_at, updated_at, revoked_at, version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.commit()
    con.close()


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {os.uname().release}"


HEADER = (
    "| lane | conns | direct req/s | nginx req/s | spendgate req/s | sg/nginx | direct p50 / p99 ms | nginx p50 / p99 ms "
    "| spendgate p50 / p99 ms | nginx added p50 ms | spendgate added p50 ms | nginx CPU µs/req | spendgate CPU µs/req "
    "| nginx RSS MB | spendgate RSS MB |\n|" + "---|" * 15
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--floor-bin", help="the bare hyper proxy (bench/examples/floor.rs), measured as the floor")
    ap.add_argument("--quick", action="store_true", help="short runs, fewer lanes' extras (a smoke test)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.md"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    ap.add_argument("--lane", help="only the throughput lanes whose name contains this")
    ap.add_argument("--log-level", default="info", help="spendgate's SPENDGATE_LOG (default info: a line per request)")
    ap.add_argument("--only", choices=["throughput", "floor", "ttft", "memory", "keys"], help="only this part")
    args = ap.parse_args()
    args.seconds = 2 if args.quick else 5
    args.rounds = 1 if args.quick else 3
    args.conns = [1, 32] if args.quick else [1, 32, 128]
    args.ttft_samples = 10 if args.quick else 50
    args.streams = 200 if args.quick else 2000
    args.key_counts = [10_000, 100_000] if args.quick else [10_000, 1_000_000]
    args.touched_keys = 10_000 if args.quick else 100_000
    if os.cpu_count() < 2:
        sys.exit("the benchmark needs 2 cores (load generator and upstream on one, the proxy on the other)")

    b = Bench(args)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"spendgate benchmark, {started}; {machine()}; work dir {b.dir}\n")
    print(HEADER, flush=True)
    try:
        canned = b.record_canned()
        parts = {
            "throughput": lambda: b.throughput(canned),
            "floor": lambda: b.floor(canned),
            "ttft": b.ttft,
            "memory": b.memory,
            "keys": lambda: b.many_keys(canned),
        }
        for name, part in parts.items():
            if args.only in (None, name):
                part()
    finally:
        b.cleanup()
    print()
    for n in b.notes:
        print("- " + n)
    version = run([args.bin, "--version"]).stdout.strip()
    text = f"# spendgate benchmark\n\n{started}; {machine()}; {version}.\n\n"
    text += "Load generator (wrk) and canned upstream (nginx) on core 0, the proxy under test on core 1. "
    text += (
        f"{args.seconds} s per run after a 1 s warm-up; nginx and spendgate in {args.rounds} alternating rounds per row, "
        "the median run of each shown. Latencies in ms as wrk measures them.\n\n"
    )
    text += HEADER + "\n" + "\n".join(b.rows) + "\n\n" + "\n".join("- " + n for n in b.notes) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
