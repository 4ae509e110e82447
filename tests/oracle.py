"""The oracle: what the rollups must be, computed by DuckDB from the raw lines.

It shares no code with burnwatch: validity, first arrival, lateness and
windows are re-stated here in SQL, from DESIGN.md.
"""

from __future__ import annotations

import gzip
import math
from datetime import datetime
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

ORACLE_SQL = r"""
WITH parsed AS (
    SELECT line_no, CASE WHEN json_valid(line) THEN line::JSON END AS j FROM lines
),
fields AS (
    SELECT
        line_no,
        j->>'$.id' AS id,
        json_type(j, '$.id') AS id_type,
        coalesce(j->>'$.source', '') AS source,  -- identity is (source, id)
        CASE WHEN j->>'$.specversion' IS NULL THEN j->>'$.tenant' ELSE j->>'$.subject' END
            AS tenant,
        CASE WHEN j->>'$.specversion' IS NULL THEN j->>'$.meter' ELSE j->>'$.data.meter' END
            AS meter,
        CASE WHEN j->>'$.specversion' IS NULL THEN json_type(j, '$.quantity')
             ELSE json_type(j, '$.data.quantity') END AS q_type,
        TRY_CAST(CASE WHEN j->>'$.specversion' IS NULL THEN j->>'$.quantity'
                      ELSE j->>'$.data.quantity' END AS DOUBLE) AS quantity,
        j->>'$.time' AS time_text
    FROM parsed
    WHERE json_type(j) = 'OBJECT'
),
valid AS (  -- README "Input records": identifiers, quantity and time rules
    SELECT * REPLACE (nfc_normalize(tenant) AS tenant, nfc_normalize(meter) AS meter),
           TRY_CAST(upper(time_text) AS TIMESTAMPTZ) AS ts
    FROM fields
    WHERE id_type = 'VARCHAR' AND id <> ''
      AND trim(tenant) <> '' AND trim(meter) <> ''
      AND NOT regexp_matches(tenant || meter, '[\x00-\x1f\x7f-\x9f]')
      AND length(nfc_normalize(tenant)) <= 256 AND length(nfc_normalize(meter)) <= 256
      AND q_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND isfinite(quantity) AND quantity >= 0
      AND quantity <= 1e12
      AND regexp_full_match(time_text,
          '\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-]\d\d:\d\d)')
      AND TRY_CAST(upper(time_text) AS TIMESTAMPTZ) >= TIMESTAMPTZ '1970-01-01 00:00:00+00'
      AND TRY_CAST(upper(time_text) AS TIMESTAMPTZ) < TIMESTAMPTZ '9999-01-01 00:00:00+00'
),
timely AS (  -- not stamped beyond the clock skew
    SELECT * FROM valid WHERE ts <= $now::TIMESTAMPTZ + INTERVAL 10 MINUTE
),
watermarked AS (
    SELECT *, max(ts) OVER (ORDER BY line_no ROWS UNBOUNDED PRECEDING) - INTERVAL 5 MINUTE AS wm
    FROM timely
),
in_time AS (  -- not more than max_lateness behind the watermark
    SELECT * FROM watermarked WHERE ts >= wm - INTERVAL 7 DAY
),
first_arrivals AS (
    SELECT * FROM in_time QUALIFY row_number() OVER (PARTITION BY source, id ORDER BY line_no) = 1
)
SELECT tenant, meter, (epoch_us(ts) // $window_us) * $window_us AS window_start_us,
       sum(quantity) AS quantity, count(*) AS events
FROM first_arrivals
GROUP BY ALL
"""


def read_lines(paths: list[Path]) -> pa.Table:
    lines: list[str] = []
    for path in paths:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as fh:
            lines.extend(line.rstrip(b"\r\n").decode("utf-8", "replace") for line in fh)
    return pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                     "line": pa.array(lines, pa.string())})


def oracle_totals(paths: list[Path], now: datetime, window_us: int = 60_000_000) -> dict:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lines = read_lines(paths)  # noqa: F841 - read by DuckDB by name
    con.register("lines", lines)
    rows = con.execute(ORACLE_SQL, {"now": now, "window_us": window_us}).fetchall()
    return {(t, m, w): (q, n) for t, m, w, q, n in rows}


def read_dataset(out_url: str, name: str) -> pa.Table:
    """A dataset as an analyst opens it: pyarrow.dataset with Hive partitioning, any fsspec URL."""
    fs, root = fsspec.core.url_to_fs(out_url)
    fs.invalidate_cache()  # s3fs caches listings; the job may have written since
    if not fs.exists(f"{root}/{name}"):
        return pa.table({})
    return ds.dataset(f"{root}/{name}", filesystem=fs, format="parquet",
                      partitioning="hive").to_table()


def _query(sql: str, **tables: pa.Table) -> list[tuple]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    return con.execute(sql).fetchall()


def output_totals(out_url: str) -> dict:
    """Rollups as written, summed over revisions."""
    rollups = read_dataset(out_url, "rollups")
    if rollups.num_rows == 0:
        return {}
    rows = _query("""SELECT tenant, meter, epoch_us(window_start), sum(quantity),
                            sum(events)::BIGINT FROM rollups GROUP BY ALL""", rollups=rollups)
    return {(t, m, w): (q, n) for t, m, w, q, n in rows}


def duplicated_rows(out_url: str) -> int:
    """Rows sharing (tenant, meter, window, revision): there must be none."""
    rollups = read_dataset(out_url, "rollups")
    return _query("""SELECT count(*) FROM (SELECT tenant, meter, window_start, revision,
                     count(*) AS n FROM rollups GROUP BY ALL HAVING n > 1)""",
                  rollups=rollups)[0][0]


def correction_rows(out_url: str) -> int:
    """Rollup rows with revision > 0 (usage that reached a window after it was written)."""
    return int(pc.sum(pc.greater(read_dataset(out_url, "rollups")["revision"], 0)).as_py())


def dead_letter_counts(out_url: str) -> dict[str, int]:
    dead = read_dataset(out_url, "dead_letter")
    if dead.num_rows == 0:
        return {}
    return dict(_query("SELECT reason, count(*)::BIGINT FROM dead GROUP BY ALL", dead=dead))


def mismatches(expected: dict, actual: dict) -> list:
    """Keys whose totals differ (quantities to 1e-9 relative: float sums in another order)."""
    bad = []
    for key in expected.keys() | actual.keys():
        e, a = expected.get(key), actual.get(key)
        if e is None or a is None or e[1] != a[1] or not math.isclose(e[0], a[0], rel_tol=1e-9):
            bad.append((key, e, a))
    return bad
