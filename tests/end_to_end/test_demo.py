"""The README's first command, `burnwatch demo`, as a user runs it (on fewer tenants)."""

import re
import subprocess
import sys


def test_the_demo_pages_for_the_runaway_tenant_and_resolves(tmp_path):
    res = subprocess.run([sys.executable, "-m", "flows.cli", "demo", "--out", str(tmp_path),
                          "--tenants", "8"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "generating a week of usage for 8 tenants" in res.stdout
    alerts = re.findall(r"^\s+\S+ \S+ (trigger|resolve)\s+(page|ticket)\s+(.*)$", res.stdout,
                        re.MULTILINE)
    # Only the runaway tenant alerts: it pages, and every page it opened resolves.
    assert {text.removeprefix("resolved: ").split(":")[0] for _, _, text in alerts} == {
        "tenant-0007"}
    pages = [action for action, severity, _ in alerts if severity == "page"]
    assert "trigger" in pages and "resolve" in pages
    assert pages.index("resolve") > pages.index("trigger")  # printed in time order
    assert (tmp_path / "out" / "rollups").is_dir() and "dead letters" in res.stdout
