#!/usr/bin/env bash
# Live fan-out (bench/src/bin/fanout.rs): GUESTS live streams of one event of 100 questions
# while votes arrive at VOTES_PER_SECOND, for each number of guests and each stream mode
# (deltas: ?deltas=1, plain: the whole list each push). Every run gets a fresh server on a
# fresh database, so its peak RSS is its own. Prints each run's summary line, then a table of
# the medians over ROUNDS rounds (each round runs every guests × mode once, in turn).
# Usage: bench/fanout.sh [GUESTS="500 2000 5000" MODES="deltas plain" ROUNDS=1 SECONDS_PER_RUN=15
#                         WARMUP=3 VOTES_PER_SECOND=20 JOIN=during-votes PORT=3310 RECORD_DIR=]
# JOIN=before-votes opens every stream before the first vote (their pushes then start in step).
# RECORD_DIR=dir keeps what one guest of each run received (fanout-GUESTS-MODE.jsonl), which
# bench/fanout-bytes.py breaks down: where the bytes go, and what other encodings would send.
set -euo pipefail
cd "$(dirname "$0")/.."
GUESTS=${GUESTS:-500 2000 5000}
MODES=${MODES:-deltas plain}
ROUNDS=${ROUNDS:-1}
JOIN=${JOIN:-during-votes}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
WARMUP=${WARMUP:-3}
VOTES_PER_SECOND=${VOTES_PER_SECOND:-20}
PORT=${PORT:-3310}
RECORD_DIR=${RECORD_DIR:-}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p wewerewondering -p wewerewondering-bench

work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
base=http://127.0.0.1:$PORT

start_server() { # a fresh database, one event of 100 questions; sets server and eid
  rm -f "$work"/bench.db*
  RUST_LOG=error "$TARGET/release/wewerewondering" serve --no-demo --listen 127.0.0.1:$PORT \
    --db "$work/bench.db" --durability normal --static "$work/none" --no-rate-limits >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf $base/healthz >/dev/null && break; sleep 0.1; done
  eid=$(curl -sf -X POST $base/api/event | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for i in $(seq 1 100); do
    curl -sf -X POST -H 'content-type: application/json' -d "{\"body\":\"benchmark question number $i\",\"asker\":null}" "$base/api/event/$eid" >/dev/null
  done
  until [ "$(curl -sf "$base/api/event/$eid/questions" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 100 ]; do sleep 0.1; done
}
stop_server() { kill -INT "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=; }

results="$work/results.txt"
for round in $(seq 1 "$ROUNDS"); do
for guests in $GUESTS; do
  for mode in $MODES; do
    start_server
    echo "round $round: guests $guests, mode $mode" >&2
    "$TARGET/release/fanout" --target 127.0.0.1:$PORT --event "$eid" --guests "$guests" --mode "$mode" \
      --votes-per-second "$VOTES_PER_SECOND" --warmup "$WARMUP" --join "$JOIN" --seconds "$SECONDS_PER_RUN" --server-pid "$server" \
      ${RECORD_DIR:+--record "$RECORD_DIR/fanout-$guests-$mode-$round.jsonl"} | tee -a "$results"
    stop_server
  done
done
done

python3 - "$results" <<'PY'
import statistics, sys
lines = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1]) if line.startswith("fanout ")]
groups = {}
for line in lines:
    groups.setdefault((int(line["guests"]), line["mode"]), []).append(line)
def med(values):
    try:
        return f"{statistics.median(float(v) for v in values):g}"
    except ValueError:
        return values[0]
runs = [{k: med([r[k] for r in rs]) for k in rs[0]} | {"rounds": len(rs)} for _, rs in sorted(groups.items())]
print()
print(f"medians over {max(r['rounds'] for r in runs)} round(s), guests joining {runs[0]['join']}")
print("| guests | mode | held | push latency p50 / p95 / p99 | exact (observers) p50 / p99 | received per guest | pushes (messages) per guest | server peak RSS | server CPU | generator CPU, late p99 | machine idle | vote ack p99, longest push gap |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    print(f"| {int(float(r['guests'])):,} | {r['mode']} | {r['held']} | {r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} ms"
          f" | {r['exact_p50_ms']} / {r['exact_p99_ms']} ms | {float(r['kb_per_guest_s']):.2f} KB/s"
          f" | {r['pushes_per_guest_s']} ({r['messages_per_guest_s']}) /s | {r['server_peak_rss_mib']} MiB"
          f" | {r['server_cpu']} cores | {r['generator_cpu']} cores, {r['generator_late_p99_ms']} ms | {r['machine_idle']} | {r['vote_ack_p99_ms']} ms, {r['push_gap_max_ms']} ms |")
PY
