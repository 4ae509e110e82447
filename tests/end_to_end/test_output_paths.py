"""Output roots are literal paths: a root that looks like a glob never reaches another job."""

import subprocess
import sys

import pytest


def burnwatch(*args):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, timeout=300)


def _parquet(root):
    return sorted(p.relative_to(root) for p in root.rglob("*.parquet"))


@pytest.mark.parametrize(("other", "globby"), [("job-a", "job-*"), ("g1", "g[1]")])
def test_a_glob_looking_out_leaves_the_job_it_matches_alone(tmp_path, other, globby):
    events = tmp_path / "e.jsonl"
    res = burnwatch("generate", "--out", str(events), "--tenants", "3", "--hours", "2",
                    "--end", "2026-11-20T00:00:00")
    assert res.returncode == 0, res.stderr
    # Two jobs over the same input (so the same file names), into different folders.
    first = tmp_path / other
    res = burnwatch("replay", str(events), "--out", str(first))
    assert res.returncode == 0, res.stderr
    before = _parquet(first)
    assert any(p.parts[0] == "rollups" for p in before)
    second = tmp_path / globby
    # Twice: the second run replaces its own files (removing them first).
    for _ in range(2):
        res = burnwatch("replay", str(events), "--out", str(second))
        assert res.returncode == 0, res.stderr
        assert _parquet(first) == before  # the other job's files all survive
    assert _parquet(second) == before  # and this one wrote its own, under the literal name


def test_an_out_with_markup_characters_is_printed_as_it_is(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text('{"id": "1", "tenant": "t", "meter": "m", "quantity": 1, '
                      '"time": "2026-11-19T00:00:00Z"}\n')
    out = tmp_path / "o[/x][red]"
    res = burnwatch("replay", str(events), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert f"output            {out}" in res.stdout
    assert _parquet(out)
