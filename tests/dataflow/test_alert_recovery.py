"""Alerts queued for a receiver that is down survive a crash and are delivered on resume."""

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main
from werkzeug import Response

from flows.cli import write_stream
from flows.outputs import output_sinks
from flows.settings import BudgetSettings, TenantSettings, WebhookSettings, load_settings
from flows.synthetic import GeneratorConfig
from flows.usage import build_flow, usage_config
from operators.records import RawBatch, to_us
from tests.oracle import read_dataset

END = datetime(2026, 11, 20, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "config" / "burnwatch.example.yaml"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DOWN_FOR = 7  # attempts the receiver refuses before the crash (more than 6: the old budget)


class Receiver:
    """Answers 503 while down, 200 once up; keeps the webhook-id of every request."""

    def __init__(self) -> None:
        self.up = False
        self.lock = threading.Lock()
        self.down_ids: Counter[str] = Counter()
        self.delivered_ids: Counter[str] = Counter()

    def __call__(self, request) -> Response:
        msg_id = request.headers["webhook-id"]
        with self.lock:
            (self.delivered_ids if self.up else self.down_ids)[msg_id] += 1
        return Response("", status=200 if self.up else 503)

    def each_refused(self, times: int) -> bool:
        with self.lock:
            return bool(self.down_ids) and min(self.down_ids.values()) >= times


def test_alerts_queued_at_a_crash_are_delivered_once_after_resume(tmp_path, httpserver):
    receiver = Receiver()
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    path = tmp_path / "events.jsonl"
    write_stream(GeneratorConfig(tenants=4, hours=30, seed=9, end=END, runaway_tenant=1,
                                 runaway_start_hour=20, runaway_hours=2, runaway_factor=80),
                 path)
    lines = path.read_bytes().splitlines()
    batches = [RawBatch(lines[i:i + 300], str(path), None, range(i + 1, i + 301))
               for i in range(0, len(lines), 300)]
    hook = WebhookSettings(name="oncall", url=httpserver.url_for("/hook"), secret=SECRET,
                           # DOWN_FOR quick attempts, then the next is an hour away
                           retry_schedule=[timedelta(milliseconds=10)] * (DOWN_FOR - 1)
                           + [timedelta(hours=1)])
    settings = load_settings(EXAMPLE).model_copy(update={
        "webhooks": [hook],
        "tenants": {"tenant-0001": TenantSettings(budget=BudgetSettings(amount=Decimal("40")))},
    })
    now = to_us(datetime.now(UTC))

    def run(items, out: Path, recovery: Path | None, s=settings) -> None:
        s = s.model_copy(update={"out": str(out)})
        flow = build_flow(usage_config(s, follow_wall_clock=False), TestingSource(items),
                          output_sinks(s, run_key="t", max_delay_s=None), lambda: now)
        run_main(flow, epoch_interval=timedelta(0),
                 recovery_config=RecoveryConfig(str(recovery)) if recovery else None)

    def crash_once_refused(queued: set):
        """The batches, with a crash before the last: once every alert so far was refused
        DOWN_FOR times, one more batch (and the snapshot after it), then the crash. The
        first execution only: a resume skips items by iterating over them."""
        for n, batch in enumerate(batches):
            if n == len(batches) - 2 and not queued:
                deadline = time.monotonic() + 60
                while not receiver.each_refused(DOWN_FOR) and time.monotonic() < deadline:
                    time.sleep(0.01)
                queued |= {i for i, c in receiver.down_ids.items() if c >= DOWN_FOR}
            if n == len(batches) - 1 and queued and not receiver.up:
                yield TestingSource.ABORT()
            yield batch

    clean_out = tmp_path / "clean"
    run(batches, clean_out, None, settings.model_copy(update={"webhooks": []}))
    alerts = {(r["alert_id"], r["action"]) for r in read_dataset(str(clean_out), "alerts")
              .to_pylist()}
    assert alerts, "the runaway tenant should have raised alerts"

    recovery, out = tmp_path / "recovery", tmp_path / "crashed"
    recovery.mkdir()
    init_db_dir(recovery, 1)
    queued_at_crash: set = set()
    run(crash_once_refused(queued_at_crash), out, recovery)  # stops at the ABORT (kill -9)
    assert queued_at_crash and receiver.delivered_ids == Counter()

    receiver.up = True
    run(crash_once_refused(queued_at_crash), out, recovery)

    rows = read_dataset(str(out), "alerts").to_pylist()
    recorded = Counter((r["alert_id"], r["action"], r["sink"], r["status"]) for r in rows)
    assert recorded == Counter({(a, act, "oncall", "delivered"): 1 for a, act in alerts})
    ids = {f"msg_{a}_{act}" for a, act in alerts}
    assert receiver.delivered_ids == Counter({i: 1 for i in ids})  # each once, one id each
    assert queued_at_crash <= ids
    # Those queued at the crash: refused DOWN_FOR times before it, delivered by the next try.
    attempts = {f"msg_{r['alert_id']}_{r['action']}": r["attempts"] for r in rows}
    assert {attempts[i] for i in queued_at_crash} == {DOWN_FOR + 1}
