#!/usr/bin/env bash
# HTTP benchmarks, each interleaved with the axum hello-world baseline on the same machine in
# the same minute, reported as medians and as ratios to the baseline (the ratio is what holds
# on a noisy machine). Usage: bench/run.sh [ROUNDS=3 DURATION=10s CONNECTIONS=64 WRK_THREADS=2 DURABILITY=full SERVER_BIN=]
# FLOOD=1 also runs the list and vote loads of each round under a flood (bench/src/bin/flood.rs:
# FLOOD_IDLE=2000 sockets that send nothing and FLOOD_STREAMS=1000 live streams, from 8
# loopback addresses, each reopened as soon as the server closes it) and reports them as
# ratios to the same loads without it. The streams follow the event the loads vote on (every
# vote is pushed to all of them); FLOOD_STREAMS_EVENT=other points them at a quiet event, to
# tell the cost of holding the connections from the cost of the pushes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2} # wrk shares the two cores with the server; 1 leaves the server more of them
DURABILITY=${DURABILITY:-full}
FLOOD=${FLOOD:-0}
FLOOD_IDLE=${FLOOD_IDLE:-2000}
FLOOD_STREAMS=${FLOOD_STREAMS:-1000}
FLOOD_STREAMS_EVENT=${FLOOD_STREAMS_EVENT:-same}
TARGET=${CARGO_TARGET_DIR:-target}
SERVER_BIN=${SERVER_BIN:-$TARGET/release/wewerewondering} # another build of the server, for before/after pairs
command -v wrk >/dev/null || { echo "wrk is needed (Debian package wrk)"; exit 1; }
cargo build --release -q -p wewerewondering -p wewerewondering-bench

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$TARGET/release/hello-world" --listen 127.0.0.1:3100 >/dev/null & pids+=($!)
RUST_LOG=error "$SERVER_BIN" serve --no-demo --listen 127.0.0.1:3200 \
  --db "$work/bench.db" --durability "$DURABILITY" --static "$work/none" --no-rate-limits >/dev/null 2>&1 & ours=$!; pids+=($ours)
base=http://127.0.0.1:3200
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:3100/ >/dev/null && curl -sf $base/healthz >/dev/null && break
  sleep 0.1
done
event=$(curl -sf -X POST $base/api/event)
eid=$(echo "$event" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
secret=$(echo "$event" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
for i in $(seq 1 100); do
  curl -sf -X POST -H 'content-type: application/json' -d "{\"body\":\"benchmark question number $i\",\"asker\":null}" "$base/api/event/$eid" >/dev/null
done
until [ "$(curl -sf "$base/api/event/$eid/questions" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 100 ]; do sleep 0.1; done
qids=$(curl -sf "$base/api/event/$eid/questions" | python3 -c 'import json,sys; print(",".join(q["qid"] for q in json.load(sys.stdin)))')
texts=$(echo "$qids" | cut -d, -f1-20)
first=$(echo "$qids" | cut -d, -f1)

results="$work/results.tsv"
run() { # name url [script]
  local name=$1 url=$2 script=${3:-}
  local out
  out=$(QIDS="$qids" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency ${script:+-s "$script"} "$url")
  local rps p99
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  local non2xx
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%s\t%s\t%s\t%s\n' "$name" "$rps" "$p99" "${non2xx:-0}" >>"$results"
  echo "$name: $rps req/s, p99 $p99${non2xx:+, non-2xx $non2xx}"
}

streamed=$eid
if [ "$FLOOD_STREAMS_EVENT" = other ]; then
  streamed=$(curl -sf -X POST $base/api/event | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
fi
flood_on() {
  "$TARGET/release/flood" --target 127.0.0.1:3200 --event "$streamed" --idle "$FLOOD_IDLE" --streams "$FLOOD_STREAMS" \
    --seconds 3600 2>>"$work/flood.log" & floodpid=$!; pids+=($floodpid)
  sleep 8 # every socket opened, and the first header deadlines passed: the flood at steady state
  tail -n 1 "$work/flood.log"
}
flood_off() { kill -INT "$floodpid" 2>/dev/null || true; wait "$floodpid" 2>/dev/null || true; tail -n 1 "$work/flood.log"; }

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  run hello_get http://127.0.0.1:3100/
  run list_get "$base/api/event/$eid/questions"
  run hello_post http://127.0.0.1:3100/vote bench/wrk/post.lua
  run vote_post "$base/" bench/wrk/vote.lua
  run hello_get http://127.0.0.1:3100/
  run texts_get "$base/api/questions/$texts"
  if [ "$FLOOD" = 1 ]; then
    flood_on
    run list_get_flood "$base/api/event/$eid/questions"
    run vote_post_flood "$base/" bench/wrk/vote.lua
    flood_off
  fi
done

echo "lag under a vote load of 16 connections"
QIDS="$qids" wrk -t1 -c16 -d40s -s bench/wrk/vote.lua "$base/" >/dev/null & loadpid=$!; pids+=($loadpid)
sleep 2
"$TARGET/release/lag" --base "$base" --event "$eid" --secret "$secret" --question "$first" --samples 300 | tee "$work/lag.txt"
kill $loadpid 2>/dev/null || true
echo "idle lag"
"$TARGET/release/lag" --base "$base" --event "$eid" --secret "$secret" --question "$first" --samples 200 | tee "$work/lag-idle.txt"
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ours/status)
records=$(curl -sf "$base/metrics" | awk '/^aggregator_records_total/ {print $2}' | head -1)

python3 - "$results" "$rss_kb" "${records:-?}" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def ms(v):
    v = v.strip()
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[:-len(unit)]) * f
    return float("nan")
by = {}
for name, rps, p99, non2xx in rows:
    by.setdefault(name, []).append((float(rps), ms(p99), int(non2xx or 0)))
med = {k: (statistics.median(r for r, _, _ in v), statistics.median(p for _, p, _ in v), sum(n for _, _, n in v)) for k, v in by.items()}
print()
print("| figure | median req/s | median p99 | baseline req/s | ratio | non-2xx |")
print("|---|---|---|---|---|---|")
for name, base in (("vote_post", "hello_post"), ("list_get", "hello_get"), ("texts_get", "hello_get"),
                   ("list_get_flood", "list_get"), ("vote_post_flood", "vote_post")):
    if name not in med:
        continue
    r, p, n = med[name]
    b = med[base][0]
    print(f"| {name} | {r:,.0f} | {p:.2f} ms | {b:,.0f} ({base}) | {r / b:.2f}x | {n} |")
print(f"\npeak RSS of serve: {int(sys.argv[2]) / 1024:.1f} MiB; records folded by the aggregator: {sys.argv[3]}")
PY
