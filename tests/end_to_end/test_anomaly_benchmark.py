"""The labelled anomaly benchmark's CI preset meets the targets (seeded, not timed)."""

import json
import subprocess
import sys

from bench.anomaly_benchmark import DEADLINE_H, FALSE_ALERTS_TARGET, RECALL_TARGET


def test_small_preset_meets_the_targets():
    res = subprocess.run([sys.executable, "-m", "bench.anomaly_benchmark", "--small", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    (report,) = json.loads(res.stdout)
    for kind in DEADLINE_H:
        assert report[kind]["n"] >= 30
        assert report[kind]["recall_in_time"] >= RECALL_TARGET, (kind, report[kind])
    assert report["false_alerts_per_tenant_month"] <= FALSE_ALERTS_TARGET
    assert report["legit_change"]["n"] >= 30
    assert report["legit_change"]["max_quiet_after_h"] <= 48
    assert report["meets_targets"]
