"""Score a CSV series with the anomaly model the dataflow uses.

    python -m flows.score --period-hours 24 < series.csv      one score in [0, 1] a line

The input has a header naming a ``timestamp`` and a ``value`` column (other
columns are ignored) and one row per point at a regular interval, 5 minutes
to a day; the interval is the median step between timestamps. Timestamps are
RFC 3339 / ISO 8601 (naive ones are taken as UTC) or numbers: Unix seconds,
milliseconds or microseconds by size, and small integers (1, 2, 3, ...) as
hour indices. An empty or non-numeric value is a missing point (score 0).
Each row's score uses that row and the rows before it in time only; scores
come out in input order (rows out of time order are scored in time order).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

import numpy as np

from operators.alerting.anomaly import DEFAULT_MODEL, AnomalyScorer, ModelConfig, Score
from operators.alerting.anomaly_models import MODELS
from operators.records import HOUR_US, US_PER_SECOND, to_datetime, to_us

TIME_COLUMNS = ("timestamp", "time", "date", "datetime", "ds")
VALUE_COLUMNS = ("value", "y")


def score_csv(
    source: str | TextIO, period_hours: float | None = 24.0, *, model: str = DEFAULT_MODEL
) -> Iterator[float]:
    """One anomaly score in [0, 1] per data row of ``source`` (CSV text or a text stream).

    ``period_hours`` is the seasonal period (None: 24; 0: none); a weekly period is
    added once there are two weeks of points. Raises ValueError on a bad header or
    timestamp, naming the line.
    """
    for s in score_rows(source, period_hours, model=model):
        yield s.score


def score_rows(
    source: str | TextIO, period_hours: float | None = 24.0, *, model: str = DEFAULT_MODEL
) -> Iterator[Score]:
    """As :func:`score_csv`, with expected value, band, impact and model per row."""
    times, values = read_series(io.StringIO(source) if isinstance(source, str) else source)
    if not times:
        return
    step = infer_step(times)
    hours = 24.0 if period_hours is None else period_hours
    config = ModelConfig(model=model, step_us=step, period_hours=hours or None)
    scorer = AnomalyScorer(config)
    order = sorted(range(len(times)), key=times.__getitem__)
    in_order = all(a < b for a, b in zip(order, order[1:], strict=False))
    scores: dict[int, Score] = {}
    last = None
    for i in order:
        k = round(times[i] / step)
        k = k if last is None or k > last else last + 1  # a repeated time: the next step
        last = k
        s = scorer.update(k * step, values[i])
        if in_order:
            yield s
        else:
            scores[i] = s
    if not in_order:
        yield from (scores[i] for i in range(len(times)))


def read_series(stream: TextIO) -> tuple[list[int], list[float]]:
    """Timestamps (microseconds) and values (NaN when missing) of a CSV with a header."""
    rows = csv.reader(stream)
    header = next(rows, None)
    if header is None:
        return [], []
    names = [h.strip().lower() for h in header]
    t_col = _column(names, TIME_COLUMNS, 0)
    v_col = _column(names, VALUE_COLUMNS, 1)
    if t_col is None or v_col is None:
        raise ValueError(f"line 1: need a header with timestamp and value columns, got {header}")
    times, values = [], []
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            times.append(parse_time(row[t_col]))
        except (ValueError, IndexError) as ex:
            raise ValueError(f"line {line}: bad timestamp {row[t_col:t_col + 1]}") from ex
        values.append(_number(row[v_col]) if v_col < len(row) else math.nan)
    return times, values


def _column(names: list[str], wanted: tuple[str, ...], fallback: int) -> int | None:
    for w in wanted:
        if w in names:
            return names.index(w)
    if len(names) > fallback and not any(n in names for n in TIME_COLUMNS + VALUE_COLUMNS):
        return fallback  # unnamed columns: timestamp first, value second
    return None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_time(text: str) -> int:
    """Microseconds since the epoch, UTC."""
    text = text.strip()
    try:
        x = float(text)
    except ValueError:
        dt = datetime.fromisoformat(text)
        return to_us(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    if abs(x) >= 1e14:  # microseconds
        return round(x)
    if abs(x) >= 1e11:  # milliseconds
        return round(x * 1000)
    if abs(x) >= 1e8:  # seconds (after 1973)
        return round(x * US_PER_SECOND)
    return round(x * HOUR_US)  # a step index: hours


def infer_step(times: list[int]) -> int:
    """The median positive step between sorted timestamps, to the second (1 h if none)."""
    t = np.unique(np.asarray(times, np.int64))
    if len(t) < 2:
        return HOUR_US
    step = int(np.median(np.diff(t)))
    return max(US_PER_SECOND, round(step / US_PER_SECOND) * US_PER_SECOND)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score a timestamp,value CSV from stdin.")
    ap.add_argument("file", nargs="?", help="CSV file (default: stdin)")
    ap.add_argument("--period-hours", type=float, default=24.0,
                    help="seasonal period in hours (0: none); weekly is added with 2 weeks")
    ap.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODELS))
    ap.add_argument("--details", action="store_true",
                    help="print CSV: timestamp,actual,expected,lower,upper,score,impact,model")
    args = ap.parse_args(argv)
    with open(args.file, newline="") if args.file else sys.stdin as stream:
        try:
            rows = score_rows(stream, args.period_hours, model=args.model)
            out = sys.stdout
            if args.details:
                out.write("timestamp,actual,expected,lower,upper,score,impact,model\n")
                for s in rows:
                    stamp = to_datetime(s.time_us).isoformat().replace("+00:00", "Z")
                    out.write(f"{stamp},{s.actual:.6g},{s.expected:.6g},{s.lower:.6g},"
                              f"{s.upper:.6g},{s.score:.6f},{s.impact:.6g},{s.model}\n")
            else:
                for s in rows:
                    out.write(f"{s.score:.6f}\n")
        except ValueError as ex:
            print(f"error: {ex}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
