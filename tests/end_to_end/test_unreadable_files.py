"""A file that cannot be read to its end stops only itself: the lines before the failure and
the other files are processed and written (checked against the oracle), the failure is named
by file and line, and the job exits non-zero with one line saying so."""

import gzip
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from flows.cli import write_stream
from flows.synthetic import GeneratorConfig
from tests.oracle import mismatches, oracle_totals, output_totals

END = datetime(2026, 11, 20, tzinfo=UTC)


def _stream(path, seed):
    write_stream(GeneratorConfig(tenants=4, hours=3, seed=seed, end=END, dup_rate=0.01,
                                 late_rate=0.01, bad_rate=0.01), path)
    return path


def _truncated(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _corrupt(src, dst):
    data = bytearray(src.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    dst.write_bytes(bytes(data))


def _readable_lines(path):
    lines = []
    try:
        with gzip.open(path, "rb") as fh:
            lines.extend(fh)
    except (OSError, EOFError):
        pass
    return lines


@pytest.mark.parametrize("damage", [_truncated, _corrupt])
def test_a_damaged_gzip_is_named_and_everything_readable_is_written(tmp_path, damage):
    good = _stream(tmp_path / "good.jsonl", seed=1)
    whole = _stream(tmp_path / "whole.jsonl.gz", seed=2)
    bad = tmp_path / "bad.jsonl.gz"
    damage(whole, bad)
    after = _stream(tmp_path / "after.jsonl", seed=3)
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", "replay", str(good), str(bad), str(after),
         "--out", str(out)], capture_output=True, text=True, timeout=300)

    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(bad) in last, res.stderr
    assert str(good) not in last and str(after) not in last
    # The line it names is the first that was not read; the lines before it were.
    read = int(last.split("cannot read from line ")[1].split(":")[0]) - 1
    assert 0 < read < len(gzip.decompress(whole.read_bytes()).splitlines())
    # gzip checks its CRC only at the end, so what a corrupt stretch decompressed to before
    # the error was read as it came (events or dead letters): the oracle gets the same lines.
    prefix = _readable_lines(bad)
    assert len(prefix) == read
    readable = tmp_path / "readable.jsonl"
    readable.write_bytes(b"".join(prefix))
    expected = oracle_totals([good, readable, after], now=datetime.now(UTC))
    assert mismatches(expected, output_totals(str(out))) == []


def test_a_file_that_is_not_gzip_at_all_is_named_from_line_1(tmp_path):
    good = _stream(tmp_path / "good.jsonl", seed=1)
    bad = tmp_path / "plain.jsonl.gz"
    bad.write_bytes(b'{"not": "gzip"}\n')
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", "replay", str(bad), str(good), "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert f"{bad}: cannot read from line 1" in last
    assert mismatches(oracle_totals([good], now=datetime.now(UTC)),
                      output_totals(str(out))) == []
