"""The README's LLM-gateway example runs as written, and its figures are the events' own."""

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]


def readme_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("### Example: an LLM gateway", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_llm_gateway_example_runs_and_meters_tokens_by_model(tmp_path):
    bindir = str(Path(sys.executable).parent)
    script = readme_block().replace(".venv/bin/", bindir + "/")
    script = script.replace(f"{bindir}/pip install -q duckdb && ", "")  # installed for tests
    script = script.replace("infra/config/", f"{REPO}/infra/config/")
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stderr
    assert "customer-0" in res.stdout and "events counted           3,000" in res.stdout

    # The same figures, restated from the events by hand.
    tokens, users = defaultdict(float), defaultdict(set)
    for line in (tmp_path / "prompts.jsonl").read_text().splitlines():
        e = json.loads(line)
        d = e["data"]
        tokens[(e["subject"], f"llm_tokens_{d['type']}", d["model"])] += d["tokens"]
        users[e["subject"]].add(d["user_id"])
    rollups = f"read_parquet('{tmp_path}/llm-out/rollups/**/*.parquet', hive_partitioning=1)"
    got = duckdb.sql(f"""SELECT tenant, meter, dimensions['model'], sum(quantity) FROM {rollups}
                         WHERE meter LIKE 'llm_tokens_%' GROUP BY ALL""").fetchall()
    assert {(t, m, model): q for t, m, model, q in got} == dict(tokens)
    got = duckdb.sql(f"""SELECT tenant, sum(quantity) FROM {rollups}
                         WHERE meter = 'active_users' GROUP BY ALL""").fetchall()
    assert dict(got) == {t: len(u) for t, u in users.items()}
