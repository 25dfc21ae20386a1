#!/usr/bin/env bash
# Ledger-scale figures: replay speed from SQLite over a 1M-record ledger, and serve's peak
# RSS with that ledger loaded under a list and vote load. Usage: bench/ledger.sh [RECORDS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p wewerewondering -p wewerewondering-bench
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "seeding $RECORDS records"
seeded=$("$TARGET/release/seed-ledger" --db "$work/big.db" --records "$RECORDS")
echo "$seeded"
eid=$(echo "$seeded" | awk '/^event/ {print $2}')
secret=$(echo "$seeded" | awk '/^event/ {print $4}')
ls -la "$work"/big.db | awk '{printf "database file: %.0f MiB\n", $5/1048576}'

for run in 1 2 3; do
  "$TARGET/release/wewerewondering" replay --db "$work/big.db" | head -2
done

RUST_LOG=error "$TARGET/release/wewerewondering" serve --no-demo --listen 127.0.0.1:3400 --db "$work/big.db" \
  --static "$work/none" >/dev/null 2>&1 & pid=$!
until curl -sf http://127.0.0.1:3400/healthz >/dev/null; do sleep 0.1; done
echo "RSS after start: $(awk '/VmRSS/ {print $2}' /proc/$pid/status) KiB"
qids=$(curl -sf "http://127.0.0.1:3400/api/event/$eid/questions" | python3 -c 'import json,sys; print(",".join(q["qid"] for q in json.load(sys.stdin)[:100]))')
wrk -t2 -c64 -d10s "http://127.0.0.1:3400/api/event/$eid/questions/$secret" | grep Requests/sec
QIDS="$qids" wrk -t2 -c64 -d10s -s bench/wrk/vote.lua http://127.0.0.1:3400/ | grep Requests/sec
wrk -t2 -c64 -d10s "http://127.0.0.1:3400/api/questions/$(echo "$qids" | cut -d, -f1-20)" | grep Requests/sec
echo "peak RSS of serve with the ledger loaded: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status)"
