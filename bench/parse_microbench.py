"""How fast is parsing, against the floor of decoding the JSON alone? In-process.

    .venv/bin/python bench/parse_microbench.py FILE.jsonl [--lines 1000000] [--batch 10000]

Times, per event, on the same lines in batches of ``--batch``:

* ``orjson.loads only``: decoding each record into a dict and nothing else;
* ``msgspec decode only``: decoding each record into the typed shape ``parse_batch``
  tries first (``operators.usage.parse._Shape``), nothing else (the floor for a parser that
  stays in Python);
* ``parse_batch``: ``operators.usage.parse.parse_batch`` (decode and check into columns,
  times by Arrow, hashes, the columnar ``EventBatch``), with the GC thresholds
  ``burnwatch`` sets at start-up;
* ``parse_batch, gc off``: the same with the cyclic GC disabled.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flows.cli import GC_THRESHOLDS  # noqa: E402
from operators.records import RawBatch  # noqa: E402
from operators.usage.parse import _decode_shape, parse_batch  # noqa: E402


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
        # Results are dropped batch by batch, as in the job.
        started = time.perf_counter()
        for b in batches:
            fn(b)
        elapsed = time.perf_counter() - started
        print(f"{label:<22} {elapsed / n * 1e6:6.2f} µs/event  ({n / elapsed:>10,.0f} events/s)")

    def parse(b: list[bytes]) -> None:
        parse_batch(RawBatch(b, "bench", None, range(len(b))), now_us=now_us,
                    max_clock_skew_us=600_000_000)

    def decode(b: list[bytes]) -> None:
        for x in b:
            try:
                orjson.loads(x)
            except orjson.JSONDecodeError:
                pass

    def decode_shape(b: list[bytes]) -> None:
        for x in b:
            try:
                _decode_shape(x)
            except ValueError:  # msgspec's errors are ValueErrors
                pass

    gc.set_threshold(*GC_THRESHOLDS)
    timed("orjson.loads only", decode)
    timed("msgspec decode only", decode_shape)
    timed("parse_batch", parse)
    gc.collect()
    gc.disable()
    timed("parse_batch, gc off", parse)


if __name__ == "__main__":
    main()
