import os

import pytest

# In CI (`CI=true`, as CI services set it) every service and tool a test needs is provided
# (infra/test.sh), so a test that skips for want of one would pass by accident: it fails.
IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session")
def httpserver_listen_address():
    # The webhook receiver in tests listens on loopback only.
    return ("127.0.0.1", 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"CI=true, so this may not skip: {reason}"
