"""Synthetic JSONL streams for the memory benchmarks: n events spread evenly over a span."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def write_spread(path: Path, n: int, start_us: int, span_us: int,
                 fields: Callable[[int], str]) -> None:
    """Write event i at start + i * span / n; ``fields(i)`` gives its JSON members but time.

    Written to a temporary name and renamed, so a cut-short run leaves no half file.
    """
    tmp = path.with_name(path.name + ".tmp")
    step = span_us // n
    with tmp.open("w") as fh:
        buf = []
        for i in range(n):
            sec, us = divmod(start_us + i * step, 1_000_000)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            buf.append(f'{{{fields(i)},"time":"{stamp}.{us // 1000:03d}Z"}}\n')
            if len(buf) >= 100_000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))
    tmp.rename(path)
