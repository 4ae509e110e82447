"""Replay a file of hostile lines among valid ones: every line is accounted for, the job
does not stop, and the totals of the valid lines equal the DuckDB oracle."""

import json
from datetime import UTC, datetime

import pytest

from flows.replay import replay
from flows.settings import load_settings
from tests.oracle import dead_letter_counts, mismatches, oracle_totals, output_totals, read_dataset


def event(i: int, **over) -> bytes:
    e = {"id": f"e{i}", "tenant": "acme", "meter": "api_calls", "quantity": 2,
         "time": f"2026-11-20T10:{i % 60:02d}:00Z"}
    e.update(over)
    return json.dumps(e, ensure_ascii=False).encode()


HOSTILE = [  # (line, reason it must get)
    (event(1004, time="0001-01-07T00:00:00Z"), "invalid_time"),  # the first line of all
    (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json"),
    (event(1001, quantity=1e25), "invalid_quantity"),
    # two in one window: inf if they were summed
    (event(1002, quantity=1e308, time="2026-11-20T10:02:10Z"), "invalid_quantity"),
    (event(1003, quantity=1e308, time="2026-11-20T10:02:30Z"), "invalid_quantity"),
    (event(1005, time="2026-W47-5T10:00:00Z"), "invalid_time"),
    (event(1006, time="20261120T100000Z"), "invalid_time"),
    (event(1007, time="2026-11-20T10Z"), "invalid_time"),
    (event(1008, tenant="acme\nforged log line"), "invalid_field"),
    (event(1009, tenant="t" * 257), "invalid_field"),
    (event(1010, meter="api\u0000calls"), "invalid_field"),
]
# Three spellings of one tenant: NFC makes them one.
SPELLINGS = ["\u00c5ngstr\u00f6m", "A\u030angstro\u0308m", "\u212bngstr\u00f6m"]


PRICING = [{"meter": "api_calls", "prices": [{"unit_price": "1000000"}]}]  # the highest price


@pytest.mark.parametrize("pricing", [[], PRICING], ids=["unpriced", "priced"])
def test_hostile_lines_become_dead_letters_and_valid_totals_match_the_oracle(tmp_path, pricing):
    lines = [event(i) for i in range(100)]
    lines += [event(200 + i, tenant=SPELLINGS[i % 3], time=f"2026-11-20t10:{i:02d}:00z")
              for i in range(30)]
    for k, (line, _) in enumerate(HOSTILE):
        lines.insert(7 * k, line)  # among the valid lines, the first one first
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"

    summary = replay(load_settings(None, out=str(out), pricing=pricing), [path])

    expected = {}
    for _, reason in HOSTILE:
        expected[reason] = expected.get(reason, 0) + 1
    assert dead_letter_counts(str(out)) == expected == summary.dead_letters
    assert summary.accepted + sum(summary.dead_letters.values()) == len(lines) == summary.read
    dead = read_dataset(str(out), "dead_letter").to_pylist()
    by_line = {line: reason for line, reason in HOSTILE}
    assert {bytes(d["raw"]): d["reason"] for d in dead} == by_line  # raw bytes kept whole

    oracle = oracle_totals([path], now=datetime.now(UTC))
    assert mismatches(oracle, output_totals(str(out))) == []
    tenants = {t for t, _, _ in oracle}
    assert tenants == {"acme", "\u00c5ngstr\u00f6m"}  # the three spellings are one tenant
    if pricing:
        costs = read_dataset(str(out), "rollups").column("cost").to_pylist()
        assert sum(costs) == sum(q for q, _ in oracle.values()) * 1_000_000
