"""In CI a test that would skip for a missing service fails instead."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SERVICES = ("KAFKA_BOOTSTRAP", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "BURNWATCH_S3_BUCKET", "FOCUS_VALIDATOR")


def _pytest_without_services(ci: str | None, *tests: str):
    env = {k: v for k, v in os.environ.items() if k not in SERVICES and k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", *tests],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


TESTS = ("tests/integration/test_kafka_source.py", "tests/end_to_end/test_focus.py")


def test_without_ci_a_missing_service_skips():
    res = _pytest_without_services(None, *TESTS)
    assert res.returncode == 0, res.stdout
    assert " skipped" in res.stdout and " failed" not in res.stdout


def test_in_ci_a_missing_service_fails_naming_what_is_missing():
    res = _pytest_without_services("true", *TESTS)
    assert res.returncode == 1, res.stdout
    assert " skipped" not in res.stdout.splitlines()[-1]
    assert "services not started" in res.stdout  # the integration fixture's reason
    assert "FOCUS_VALIDATOR" in res.stdout or "validator" in res.stdout
