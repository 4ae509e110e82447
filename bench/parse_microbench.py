"""How fast could parsing be? burnwatch's parse_batch against a leaner prototype, in-process.

    .venv/bin/python bench/parse_microbench.py FILE.jsonl [--lines 1000000] [--batch 10000]

Parse is ~50% of burnwatch's time (see docs/throughput.md). This times, per event,
on the same lines in batches of ``--batch``:

* ``current``: ``operators.parse.parse_batch`` (orjson per record, a UsageEvent per
  event, ``datetime.fromisoformat`` + ``to_us``, then ``EventBatch.from_events``: an
  f-string and two xxh3 calls per event written one by one into NumPy arrays);
* ``current, gc frozen``: the same with the cyclic GC disabled (what ``gc.freeze()``
  + a high threshold would buy);
* ``lean``: a prototype that appends straight into column lists (no per-event tuple),
  checks types inline, collects the time strings and converts them all at once with
  Arrow (an RFC 3339 regex, then a cast to ``timestamp[us, UTC]``), hashes ids into a
  list and makes the array once, and hashes content with one ``orjson.dumps`` per event.

The prototype is for measurement only. It checks its accept/reject decisions and its
event times against ``parse_batch`` on the same lines and prints any difference.
Its content hash is a different function of the same fields, so adopting it would
change the hashes in existing recovery stores (they would need a migration or a
format version).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from operators.parse import parse_batch  # noqa: E402
from operators.records import RawBatch  # noqa: E402

RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$"
TS = pa.timestamp("us", tz="UTC")
_h = xxhash.xxh3_64_intdigest
_dumps = orjson.dumps
_SORT = orjson.OPT_SORT_KEYS


def lean_parse(lines: list[bytes], horizon_us: int):
    """Columns of the valid events, and the indices of rejected lines."""
    loads = orjson.loads
    keep, ids, tenants, meters, qty, times, dims = [], [], [], [], [], [], []
    rejected = []
    for i, line in enumerate(lines):
        try:
            o = loads(line)
        except orjson.JSONDecodeError:
            rejected.append(i)
            continue
        if type(o) is not dict:
            rejected.append(i)
            continue
        if "specversion" in o:
            body = o.get("data")
            tenant = o.get("subject")
            if o["specversion"] != "1.0" or type(body) is not dict:
                rejected.append(i)
                continue
        else:
            body = o
            tenant = o.get("tenant")
        eid = o.get("id")
        meter = body.get("meter")
        q = body.get("quantity")
        t = o.get("time")
        tq = type(q)
        d = body.get("dimensions")
        if (type(eid) is str and eid and type(tenant) is str and tenant and not tenant.isspace()
                and type(meter) is str and meter and not meter.isspace()
                and (tq is float or tq is int) and 0 <= q < math.inf and type(t) is str
                and (d is None or type(d) is dict)):
            keep.append(i)
            ids.append(eid)
            tenants.append(tenant)
            meters.append(meter)
            qty.append(q)
            times.append(t)
            dims.append(d)
        else:
            rejected.append(i)
    arr = pa.array(times, pa.string())
    ok = pc.match_substring_regex(arr, RFC3339)
    time_us = np.full(len(times), -1, dtype=np.int64)
    good = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    if good.any():
        idx = np.flatnonzero(good)
        try:
            cast = pc.take(arr, pa.array(idx)).cast(TS)
            time_us[idx] = cast.cast(pa.int64()).to_numpy()
        except pa.ArrowInvalid:  # a well-formed but impossible date: one by one
            from datetime import datetime

            for j in idx.tolist():
                try:
                    time_us[j] = round(datetime.fromisoformat(times[j]).timestamp() * 1e6)
                except ValueError:
                    good[j] = False
    good &= time_us <= horizon_us
    quantity = np.asarray(qty, dtype=np.float64)
    id_hash = np.array([_h(e.encode()) for e in ids], dtype=np.uint64)
    content = np.array(
        [_h(_dumps((a, b, float(c), int(d), e), option=_SORT))
         for a, b, c, d, e in zip(tenants, meters, quantity, time_us, dims, strict=True)],
        dtype=np.uint64,
    )
    sel = np.flatnonzero(good)
    keep_arr = np.asarray(keep, dtype=np.int64)
    rejected.extend(keep_arr[~good].tolist())
    return keep_arr[sel], time_us[sel], id_hash[sel], content[sel], quantity[sel], rejected


def current(lines: list[bytes], now_us: int):
    batch, rejects = parse_batch(RawBatch(lines, "bench", None, range(len(lines))),
                                 now_us=now_us, max_clock_skew_us=600_000_000)
    return batch, rejects


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    lines = []
    with args.file.open("rb") as fh:
        for line in fh:
            lines.append(line.rstrip(b"\r\n"))
            if len(lines) >= args.lines:
                break
    batches = [lines[i:i + args.batch] for i in range(0, len(lines), args.batch)]
    now_us = int(time.time() * 1e6)
    n = len(lines)

    def timed(label: str, fn) -> None:
        # Results are dropped batch by batch, as in the job (kept, they would make the
        # cyclic GC's full collections ever slower).
        started = time.perf_counter()
        for b in batches:
            fn(b)
        elapsed = time.perf_counter() - started
        print(f"{label:<22} {elapsed / n * 1e6:6.2f} µs/event  ({n / elapsed:>10,.0f} events/s)")

    timed("current", lambda b: current(b, now_us))
    gc.collect()
    gc.freeze()
    gc.disable()
    timed("current, gc off", lambda b: current(b, now_us))
    timed("lean prototype, gc off", lambda b: lean_parse(b, now_us + 600_000_000))
    gc.enable()
    gc.unfreeze()
    timed("lean prototype", lambda b: lean_parse(b, now_us + 600_000_000))
    # Same decisions and times as burnwatch?
    diffs = 0
    for b in batches:
        batch, _rejects = current(b, now_us)
        keep, tus, _ih, _ch, _q, _rej = lean_parse(b, now_us + 600_000_000)
        if len(batch) != len(keep) or not np.array_equal(batch.time_us, tus):
            diffs += 1
    print(f"batches where the prototype's accepted events or times differ: {diffs} "
          f"of {len(batches)}")


if __name__ == "__main__":
    main()
