#!/usr/bin/env bash
# Profiles spendgate on one lane of the benchmark: bench/profile.sh [chat|stream|messages|cross] [SECONDS]
# Builds the `profiling` profile (release + line tables + frame pointers), runs the canned
# upstream and spendgate pinned like bench/run.py does, loads it with wrk at 32
# connections, and records with `perf record --call-graph fp`. Prints the top of the
# report; the data stays in $WORK/perf.data for `perf report -i`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lane=${1:-chat}
secs=${2:-10}
RUSTFLAGS="-C force-frame-pointers=yes" cargo build --profile profiling -p spendgate -q
bin=$PWD/target/profiling/spendgate
work=$(mktemp -d /tmp/spendgate-profile-XXXX)
chmod 755 "$work"
cleanup() { kill $(jobs -p) 2>/dev/null || true; }
trap cleanup EXIT

"$bin" mock-provider --listen 127.0.0.1:19501 >"$work/mock.log" 2>&1 &
sleep 0.5
mkdir -p "$work/canned/json/v1/chat" "$work/canned/stream/v1/chat"
q='{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"user","content":"Say hello in a friendly way."}]'
a='{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[{"role":"user","content":"Say hello in a friendly way."}]'
curl -s 127.0.0.1:19501/v1/chat/completions -H 'authorization: Bearer x' -d "$q}" >"$work/canned/json/v1/chat/completions"
curl -s 127.0.0.1:19501/v1/chat/completions -H 'authorization: Bearer x' -d "$q,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >"$work/canned/stream/v1/chat/completions"
curl -s 127.0.0.1:19501/v1/messages -H 'x-api-key: x' -d "$a}" >"$work/canned/json/v1/messages"
curl -s 127.0.0.1:19501/v1/messages -H 'x-api-key: x' -d "$a,\"stream\":true}" >"$work/canned/stream/v1/messages"
kill %1
cat >"$work/upstream.conf" <<EOF
worker_processes 1; pid $work/upstream.pid; error_log $work/upstream-error.log; daemon off;
events { worker_connections 8192; }
http { access_log off; server { listen 127.0.0.1:19201 reuseport; keepalive_requests 10000000; root $work/canned;
  location /json/ { default_type application/json; error_page 405 =200 \$uri; }
  location /stream/ { default_type text/event-stream; error_page 405 =200 \$uri; } } }
EOF
taskset -c 0 nginx -c "$work/upstream.conf" &
kind=json; [ "$lane" = stream ] && kind=stream
"$bin" wallets create --name p --database "sqlite://$work/db" --json >"$work/wallet.json"
wk=$(python3 -c "import json;print(json.load(open('$work/wallet.json'))['key'])")
OPENAI_API_KEY=x ANTHROPIC_API_KEY=x OPENAI_BASE_URL=http://127.0.0.1:19201/$kind/v1 ANTHROPIC_BASE_URL=http://127.0.0.1:19201/$kind \
  taskset -c 1 "$bin" serve --listen 127.0.0.1:19401 --database "sqlite://$work/db" >"$work/spendgate.log" 2>&1 &
sg=$!
until curl -sf 127.0.0.1:19401/healthz >/dev/null; do sleep 0.05; done
shape=openai; [ "$lane" = messages ] && shape=anthropic
key=$(curl -s 127.0.0.1:19401/v1/spend_keys -H "authorization: Bearer $wk" -d "{\"name\":\"p\",\"request_shape\":\"$shape\",\"spend_limit\":{\"amount\":\"100000\",\"cycle\":\"monthly\"},\"request_limit\":{\"count\":1000000000,\"cycle\":\"monthly\"},\"rate_limit\":{\"rpm\":10000000}}" | python3 -c "import json,sys;print(json.load(sys.stdin)['key'])")
case $lane in
  chat) path=/v1/chat/completions body="$q}" auth="Authorization: Bearer $key" ;;
  stream) path=/v1/chat/completions body="$q,\"stream\":true}" auth="Authorization: Bearer $key" ;;
  messages) path=/v1/messages body="$a}" auth="x-api-key: $key" ;;
  cross) path=/v1/chat/completions body="$a}" auth="Authorization: Bearer $key" ;;
esac
cat >"$work/lane.lua" <<EOF
wrk.method = "POST"
wrk.body = [[$body]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["$(echo "$auth" | cut -d: -f1)"] = "$(echo "$auth" | cut -d' ' -f2-)"
EOF
taskset -c 0 wrk -t1 -c${CONNS:-32} -d"$((secs + 2))s" -s "$work/lane.lua" "http://127.0.0.1:19401$path" >"$work/wrk.txt" &
sleep 1
if [ -n "${STRACE:-}" ]; then
  # System calls instead of samples: how many writes, reads and wake-ups per request.
  timeout "$secs" strace -c -f -p "$sg" -o "$work/strace.txt" || true
  wait %4 2>/dev/null || true
  grep -E "Requests/sec|requests in|Non-2xx" "$work/wrk.txt" || true
  head -20 "$work/strace.txt"
  exit 0
fi
perf record -e cpu-clock -F 1999 --call-graph fp -p "$sg" -o "$work/perf.data" -- sleep "$secs" 2>/dev/null
wait %4 2>/dev/null || true
grep -E "Requests/sec|Non-2xx" "$work/wrk.txt" || true
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40
echo "perf data: $work/perf.data"
