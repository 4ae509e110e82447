"""On S3 too, an output root is a literal path: a root that looks like a glob never
reaches the job it matches, neither when a writer lists its files nor when it removes them."""

import subprocess
import sys

import fsspec
import pytest


def burnwatch(*args):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("other", "globby"), [("job-a", "job-*"), ("g1", "g[1]")])
def test_a_glob_looking_s3_out_leaves_the_job_it_matches_alone(s3_out, tmp_path, other, globby):
    events = tmp_path / "e.jsonl"
    res = burnwatch("generate", "--out", str(events), "--tenants", "3", "--hours", "2",
                    "--end", "2026-11-20T00:00:00")
    assert res.returncode == 0, res.stderr
    fs, _ = fsspec.core.url_to_fs(s3_out)

    def files(url):
        fs.invalidate_cache()
        root = fsspec.core.url_to_fs(url)[1]
        return sorted(p.removeprefix(root) for p in fs.find(root))

    first = f"{s3_out}/{other}"
    assert burnwatch("replay", str(events), "--out", first).returncode == 0
    before = files(first)
    assert any("/rollups/date=" in p for p in before)
    # The same input into the glob-looking root, twice: the second run replaces its own
    # files (removing them first), which is where a glob would reach the other job.
    for _ in range(2):
        res = burnwatch("replay", str(events), "--out", f"{s3_out}/{globby}")
        assert res.returncode == 0, res.stderr
        assert files(first) == before
    assert files(f"{s3_out}/{globby}") == before
