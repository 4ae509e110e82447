"""Fixtures for tests against the real services that infra/services.sh starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from flows.cli import write_stream
from flows.synthetic import GeneratorConfig
from tests.oracle import oracle_totals

REPO = Path(__file__).resolve().parents[2]
END = datetime(2026, 11, 20, tzinfo=UTC)
NEEDED = ("KAFKA_BOOTSTRAP", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
          "BURNWATCH_S3_BUCKET")


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    missing = [k for k in NEEDED if not os.environ.get(k)]
    if missing:
        pytest.skip(f"services not started (run via infra/test.sh); missing {missing}")
    for k in ("KAFKA_BOOTSTRAP", "AWS_ENDPOINT_URL"):
        assert "127.0.0.1" in os.environ[k], f"{k} must point at this machine's loopback"
    return {k: os.environ[k] for k in NEEDED}


@pytest.fixture
def s3_out(services) -> str:
    return f"s3://{services['BURNWATCH_S3_BUCKET']}/it-{uuid.uuid4().hex[:8]}"


def services_sh(*args: str) -> None:
    subprocess.run(["bash", str(REPO / "infra" / "services.sh"), *args], check=True,
                   stdout=subprocess.DEVNULL, timeout=180)


def create_topic(bootstrap: str, partitions: int = 3) -> str:
    name = f"usage-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def run_args(services, topic: str, out: str, recovery: Path, *extra: str) -> list[str]:
    """Arguments of `burnwatch run` on the test services."""
    return ["--brokers", services["KAFKA_BOOTSTRAP"], "--topic", topic, "--out", out,
            "--recovery-dir", str(recovery), *extra]


class Job:
    """`burnwatch run` as a separate process, as a deployment would run it."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log: Path) -> None:
        self.log = log
        full_env = {**os.environ, "BURNWATCH_EPOCH_INTERVAL": "1s", "BURNWATCH_METRICS_PORT": "0",
                    **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "--log-level", "INFO", "run", *args],
            env=full_env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_until(predicate, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def make_stream(tmp_path_factory, name: str, **generator) -> tuple[Path, list[bytes], dict]:
    """A generated stream (1% dups and late, 0.2% conflicts, 0.1% bad): path, lines,
    and the dead letters it must produce by reason."""
    path = tmp_path_factory.mktemp(name) / "events.jsonl"
    manifest = write_stream(
        GeneratorConfig(dup_rate=0.01, conflict_rate=0.002, late_rate=0.01, bad_rate=0.001,
                        end=END, **generator),
        path,
    )
    return path, path.read_bytes().splitlines(), dict(manifest.dead_letters)


@pytest.fixture(scope="module")
def oracle(stream):
    """The DuckDB oracle's totals for the module's `stream` fixture."""
    return oracle_totals([stream[0]], now=datetime.now(UTC))
