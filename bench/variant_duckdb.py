"""The same totals as one DuckDB batch query over the JSONL file (aggregation cost alone).

    python bench/variant_duckdb.py --file events.jsonl --out totals.jsonl [--threads N]

DuckDB reads the file itself (``read_csv``, one VARCHAR column per line, insertion
order kept so ``rowid`` is the line number), then runs the oracle's SQL
(tests/oracle.py: validity, max-lateness behind the watermark, first arrival by
line order, 1-minute windows). So its totals check proves only that DuckDB's own
file reader sees the same lines as the oracle's Python reader; what it measures is
what one vectorised engine needs for the whole aggregation, with no streaming.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.oracle import ORACLE_SQL  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: its default)")
    args = ap.parse_args()
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    path = str(args.file).replace("'", "''")
    con.execute(
        f"""CREATE TABLE raw_lines AS SELECT line FROM read_csv('{path}',
            columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(1), quote = '',
            escape = '', auto_detect = false)"""
    )
    con.execute("CREATE VIEW lines AS SELECT rowid + 1 AS line_no, line FROM raw_lines")
    rows = con.execute(ORACLE_SQL, {"now": datetime.now(UTC), "window_us": 60_000_000}).fetchall()
    with args.out.open("wb") as fh:
        for t, m, w, q, n in rows:
            fh.write(orjson.dumps([t, m, w, q, n]) + b"\n")
    print(json.dumps({"windows": len(rows), "elapsed_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
