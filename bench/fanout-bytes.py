#!/usr/bin/env python3
"""Where a live stream's bytes go: reads a stream recorded by `fanout --record FILE` (one guest,
from the response's first bytes) and, over the benchmark's window, splits what it received into
HTTP chunk framing, SSE framing and the JSON of each kind of message; for a delta stream it also
replays the list (design section 7's rules) and prices other encodings of the same pushes, each
computed exactly from the lists before and after every push:

  merged     one delta per push, from the list the guest had to the list it gets (the server
             sends every version's delta in between, one message each)
  lean       merged, and set items without "hidden":false
  positions  lean, with each move saying the index the question ends at instead of the id of
             the question it follows (a client takes every moved question out, then puts each
             in at its index, in order)
  short ids  lean, with each question named by a small number instead of its 26-character id
  deflate    the stream as sent, or lean, compressed as one deflate stream flushed after every
             push (what a gzip Content-Encoding on the stream would send), with zlib's
             default 32 KiB window, and as sent with a 4 KiB window (less state per stream)

Usage: bench/fanout-bytes.py FILE.jsonl [...]
"""
import json
import sys
import zlib


def lis_members(values):
    """Members of one longest strictly increasing subsequence (as the server's deltas.rs)."""
    tails, previous = [], [None] * len(values)
    for i, value in enumerate(values):
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if values[tails[mid]] < value:
                lo = mid + 1
            else:
                hi = mid
        previous[i] = tails[lo - 1] if lo > 0 else None
        if lo == len(tails):
            tails.append(i)
        else:
            tails[lo] = i
    member = [False] * len(values)
    at = tails[-1] if tails else None
    while at is not None:
        member[at] = True
        at = previous[at]
    return member


def between(old, new, seq, positions=False):
    """The delta from `old` to `new`, as the server's Delta::between builds it."""
    new_ids = {item["qid"] for item in new}
    old_by_id = {item["qid"]: item for item in old}
    delta = {"seq": seq}
    dele = [item["qid"] for item in old if item["qid"] not in new_ids]
    sets = [item for item in new if old_by_id.get(item["qid"]) != item]
    working = [item["qid"] for item in old if item["qid"] in new_ids]
    working += [item["qid"] for item in new if item["qid"] not in old_by_id]
    position = {qid: i for i, qid in enumerate(working)}
    stays = lis_members([position[item["qid"]] for item in new])
    if positions:  # each move as the index the item ends at: all moved items out, then in at theirs
        mv = [[item["qid"], i] for i, item in enumerate(new) if not stays[i]]
    else:
        mv = [[item["qid"], new[i - 1]["qid"] if i > 0 else None] for i, item in enumerate(new) if not stays[i]]
    if dele:
        delta["del"] = dele
    if sets:
        delta["set"] = sets
    if mv:
        delta["mv"] = mv
    return delta


def apply(old, delta):
    """Design section 7: del, then set, then mv."""
    gone = set(delta.get("del", []))
    items = [item for item in old if item["qid"] not in gone]
    for item in delta.get("set", []):
        for i, held in enumerate(items):
            if held["qid"] == item["qid"]:
                items[i] = item
                break
        else:
            items.append(item)
    for qid, after in delta.get("mv", []):
        at = next((i for i, held in enumerate(items) if held["qid"] == qid), None)
        if at is None:
            continue
        item = items.pop(at)
        to = next((i + 1 for i, held in enumerate(items) if held["qid"] == after), 0) if after else 0
        items.insert(to, item)
    return items


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def lean(delta):
    out = dict(delta)
    if "set" in out:
        out["set"] = [{k: v for k, v in item.items() if not (k == "hidden" and v is False)} for item in out["set"]]
    return out


def short_ids(delta, number):
    out = dict(delta)
    if "del" in out:
        out["del"] = [number(q) for q in out["del"]]
    if "set" in out:
        out["set"] = [{**item, "qid": number(item["qid"])} for item in out["set"]]
    if "mv" in out:
        out["mv"] = [[number(q), number(a) if a else None] for q, a in out["mv"]]
    return out


def sse(event, data):
    return f"event: {event}\ndata: {data}\n\n"


def chunked(body_len):
    return len(f"{body_len:x}\r\n") + 2


def analyse(path):
    lines = open(path).read().splitlines()
    start, end = json.loads(lines[0])["window"]
    reads = [json.loads(line) for line in lines[1:]]
    raw = b""
    body = b""
    headers_done = False
    pending = b""
    items = None
    numbers = {}
    number = lambda qid: numbers.setdefault(qid, len(numbers))
    totals = {k: 0 for k in ("wire", "chunk_framing", "sse_framing", "seq", "set", "mv", "del", "list", "plain", "other")}
    counts = {"pushes": 0, "messages": 0, "set_items": 0, "mv_entries": 0, "hidden_false": 0}
    alt = {"merged": 0, "lean": 0, "lean, moves as positions": 0, "short ids": 0}
    deflate_sent = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflate_lean = zlib.compressobj(6, zlib.DEFLATED, -15)
    # zlib's default state is ~256 KiB per stream; a 4 KiB window with memLevel 4 is ~24 KiB.
    deflate_small = zlib.compressobj(6, zlib.DEFLATED, -12, 4)
    alt_deflate = {"sent": 0, "lean": 0, "sent, 4 KiB window": 0}
    seconds = (end - start) / 1e6
    mode = None
    for read in reads:
        data = read["bytes"].encode()
        in_window = start <= read["at"] < end
        raw += data
        if not headers_done:
            if b"\r\n\r\n" not in raw:
                continue
            _, raw = raw.split(b"\r\n\r\n", 1)
            headers_done = True
        got = b""
        while True:  # chunked transfer coding
            if b"\r\n" not in raw:
                break
            size_line, rest = raw.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                break
            got += rest[:size]
            raw = rest[size + 2 :]
        pending += got
        messages = []
        while b"\n\n" in pending:
            message, pending = pending.split(b"\n\n", 1)
            messages.append(message.decode())
        before = items
        sent_body = ""
        for message in messages:
            event, payload = "message", None
            for line in message.split("\n"):
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    payload = line[5:].lstrip(" ")
            if payload is None:
                continue
            value = json.loads(payload)
            sent_body += message + "\n\n"
            if in_window:
                counts["messages"] += 1
                totals["sse_framing"] += len(message) + 2 - len(payload)
            if event == "list":
                mode = "deltas"
                items = value["list"]
                if in_window:
                    totals["list"] += len(payload)
            elif event == "delta":
                items = apply(items, value)
                if in_window:
                    totals["seq"] += len(compact({"seq": value["seq"]}))
                    for key in ("set", "mv", "del"):
                        if key in value:
                            totals[key] += len(compact(value[key])) + len(f',"{key}":')
                    counts["set_items"] += len(value.get("set", []))
                    counts["mv_entries"] += len(value.get("mv", []))
                    counts["hidden_false"] += sum(1 for i in value.get("set", []) if i.get("hidden") is False)
            elif event == "message":
                mode = "plain"
                items = value
                if in_window:
                    totals["plain"] += len(payload)
            elif in_window:
                totals["other"] += len(payload)
        for item in items or []:
            number(item["qid"])
        if not in_window:
            continue
        totals["wire"] += len(data)
        if not messages:
            continue
        counts["pushes"] += 1
        if sent_body:
            for name, compressor in (("sent", deflate_sent), ("sent, 4 KiB window", deflate_small)):
                alt_deflate[name] += len(compressor.compress(sent_body.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
        if mode == "deltas" and before is not None and items is not None:
            merged = between(before, items, 0)
            by_position = lean(between(before, items, 0, positions=True))
            for name, delta in (
                ("merged", merged),
                ("lean", lean(merged)),
                ("lean, moves as positions", by_position),
                ("short ids", short_ids(lean(merged), number)),
            ):
                message = sse("delta", compact(delta))
                alt[name] += len(message) + chunked(len(message))
            message = sse("delta", compact(lean(merged))).encode()
            alt_deflate["lean"] += len(deflate_lean.compress(message) + deflate_lean.flush(zlib.Z_SYNC_FLUSH))
    body_bytes = sum(totals[k] for k in ("sse_framing", "list", "plain", "other")) + sum(
        totals[k] for k in ("seq", "set", "mv", "del")
    )
    totals["chunk_framing"] = totals["wire"] - body_bytes
    kb = lambda n: f"{n / seconds / 1e3:.2f} KB/s"
    print(f"{path}: {mode}, window {seconds:.1f} s, {counts['pushes'] / seconds:.2f} pushes/s, "
          f"{counts['messages'] / seconds:.2f} messages/s, received {kb(totals['wire'])}")
    print("  where the bytes go:")
    for key in ("chunk_framing", "sse_framing", "seq", "set", "mv", "del", "list", "plain", "other"):
        if totals[key]:
            print(f"    {key:14} {kb(totals[key]):>12}  {100 * totals[key] / totals['wire']:5.1f}%")
    if mode == "deltas":
        print(f"    per second: {counts['set_items'] / seconds:.1f} set items ({counts['hidden_false'] / seconds:.1f} with "
              f"\"hidden\":false), {counts['mv_entries'] / seconds:.1f} moves")
        print("  the same pushes encoded otherwise:")
        for name, n in alt.items():
            print(f"    {name:14} {kb(n):>12}")
    else:
        print("  the same pushes encoded otherwise:")
        del alt_deflate["lean"]
    for name, n in alt_deflate.items():
        print(f"    {'deflate, ' + name:14} {kb(n):>12}")


for path in sys.argv[1:]:
    analyse(path)
