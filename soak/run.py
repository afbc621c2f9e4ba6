#!/usr/bin/env python3
"""Soak: spendgate under a mixed load for a while (default 10 minutes), memory and open
files sampled as it goes, then every admitted request checked to be settled once.

  python3 soak/run.py --bin target/release/spendgate [--minutes 10] [--workers 8]

The load, by request number: answered chats, streams read to the end, streams the
client hangs up on after the first chunk, provider errors (500, retried by the gateway),
and bad input (400, never admitted). Afterwards the key's total_requests must equal the
requests that were admitted, the request log must hold one record for each, its costs
must add up to the key's total_spend, the mock must have seen every hung-up stream
cancelled, and /metrics must agree (requests by status, spend, nothing open or queued).
Prints a table of the samples and the checks (for soak/RESULTS.md)."""
import argparse, http.client, json, os, socket, subprocess, sys, tempfile, threading, time
from decimal import Decimal

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port}")

def call(port, method, path, key, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=None if body is None else json.dumps(body),
              headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, (json.loads(data) if data else None)

def rss_and_fds(pid):
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="spendgate-soak-")
    db = f"sqlite://{work}/soak.db"
    mock_port, port = free_port(), free_port()
    procs = [subprocess.Popen([a.bin, "mock-provider", "--listen", f"127.0.0.1:{mock_port}", "--chunk-delay-ms", "5"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(mock_port)
    wallet = json.loads(subprocess.check_output([a.bin, "wallets", "create", "--name", "soak", "--database", db, "--json"]))
    env = dict(os.environ, OPENAI_API_KEY="x", OPENAI_BASE_URL=f"http://127.0.0.1:{mock_port}/v1",
               ANTHROPIC_API_KEY="x", ANTHROPIC_BASE_URL=f"http://127.0.0.1:{mock_port}", SPENDGATE_LOG="warn")
    sg = subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{port}", "--database", db], env=env,
                          stdout=subprocess.DEVNULL, stderr=open(f"{work}/spendgate.log", "w"))
    procs.append(sg)
    wait_port(port)
    try:
        _, k = call(port, "POST", "/v1/spend_keys", wallet["key"],
                    {"name": "soak", "spend_limit": {"amount": "100000", "cycle": "daily"}})
        key, key_id = k["key"], k["spend_key_id"]
        counts = {"chat": 0, "stream": 0, "hangup": 0, "provider_error": 0, "bad_input": 0, "unexpected": 0}
        lock, stop = threading.Lock(), time.time() + a.minutes * 60

        def worker(w):
            n = w
            while time.time() < stop:
                n += a.workers
                kind = ["chat", "chat", "chat", "chat", "stream", "stream", "stream", "hangup", "provider_error", "bad_input"][n % 10]
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "[[mock:tokens:24]] hi"}]}
                if kind in ("stream", "hangup"):
                    body["stream"] = True
                if kind == "provider_error":
                    body["messages"][0]["content"] = "[[mock:error:500]]"
                if kind == "bad_input":
                    body["max_tokens"] = -1
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("POST", "/v1/chat/completions", body=json.dumps(body),
                          headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
                r = c.getresponse()
                if kind == "hangup":
                    r.read1(64) if hasattr(r, "read1") else r.read(64)
                    c.sock.shutdown(socket.SHUT_RDWR); c.close()
                    ok = r.status == 200
                else:
                    data = r.read(); c.close()
                    ok = r.status == {"chat": 200, "stream": 200, "provider_error": 500, "bad_input": 400}[kind]
                    if not ok and counts["unexpected"] < 3:
                        print(f"unexpected {kind}: {r.status} {data[:300]!r}", flush=True)
                with lock:
                    counts[kind if ok else "unexpected"] += 1

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.workers)]
        for t in threads:
            t.start()
        samples, started = [], time.time()
        while any(t.is_alive() for t in threads):
            rss, fds = rss_and_fds(sg.pid)
            with lock:
                done = sum(counts.values())
            samples.append((time.time() - started, rss, fds, done))
            time.sleep(min(30, max(1, a.minutes * 6)))
        for t in threads:
            t.join()
        time.sleep(3)
        rss, fds = rss_and_fds(sg.pid)
        samples.append((time.time() - started, rss, fds, sum(counts.values())))

        admitted = counts["chat"] + counts["stream"] + counts["hangup"] + counts["provider_error"]
        _, view = call(port, "GET", f"/v1/spend_keys/{key_id}", wallet["key"])
        records, cost, cursor = 0, Decimal(0), ""
        while True:
            _, page = call(port, "GET", f"/v1/requests?spend_key_id={key_id}&limit=100&cursor={cursor}", wallet["key"])
            records += len(page["data"]); cost += sum(Decimal(r["cost"]) for r in page["data"])
            if not page.get("next_cursor"):
                break
            cursor = page["next_cursor"]
        c = http.client.HTTPConnection("127.0.0.1", mock_port); c.request("GET", "/_mock/stats")
        cancelled = json.loads(c.getresponse().read())["streams_cancelled"]
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/metrics")
        metrics = {}
        for line in c.getresponse().read().decode().splitlines():
            if line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                metrics[series] = float(value)
        m = lambda series: metrics.get(series, 0.0)
        mini = 'format="openai",provider="openai",model="gpt-4o-mini"'
        ok_200 = m("spendgate_requests_total{" + mini + ',status="200"}')
        ok_500 = m("spendgate_requests_total{" + mini + ',status="500"}')
        ok_400 = m('spendgate_requests_total{format="openai",provider="",model="",status="400"}')
        spend = m('spendgate_spend_usd_total{provider="openai",model="gpt-4o-mini"}')

        print(f"soak: {a.minutes:g} min, {a.workers} workers, {sum(counts.values())} requests: {counts}")
        print("\n| elapsed s | RSS MB | open fds | requests done |\n|---|---|---|---|")
        for t, r, f, d in samples:
            print(f"| {t:.0f} | {r:.1f} | {f} | {d} |")
        checks = [
            ("no unexpected status", counts["unexpected"] == 0),
            (f"total_requests {view['total_requests']} == admitted {admitted}", view["total_requests"] == admitted),
            (f"records {records} == admitted {admitted}", records == admitted),
            (f"sum of record costs {cost} == total_spend {view['total_spend']}", cost == Decimal(view["total_spend"])),
            (f"streams cancelled at the provider {cancelled} >= hang-ups {counts['hangup']}", cancelled >= counts["hangup"]),
            ("metrics: no stream open, no record queued after",
             m("spendgate_open_streams") == 0 and m("spendgate_record_queue_depth") == 0),
            (f"metrics: requests 200/500/400 {ok_200:.0f}/{ok_500:.0f}/{ok_400:.0f} as counted",
             (ok_200, ok_500, ok_400) == (counts["chat"] + counts["stream"] + counts["hangup"], counts["provider_error"], counts["bad_input"])),
            (f"metrics: spend {spend:.6f} == total_spend", abs(spend - float(view["total_spend"])) < 1e-6),
        ]
        print()
        for what, ok in checks:
            print(f"- {'ok' if ok else 'FAILED'}: {what}")
        sys.exit(0 if all(ok for _, ok in checks) else 1)
    finally:
        for p in procs:
            p.terminate()

if __name__ == "__main__":
    main()
