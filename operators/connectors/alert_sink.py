"""Deliver alerts to webhooks without stalling the flow, and record each outcome.

``write_batch`` only queues: a background thread per partition posts each
alert to each target, retrying connection errors, timeouts, 429 and 5xx with
exponential backoff and full jitter (honouring ``Retry-After``); any other
4xx is not retried. Every outcome (``delivered`` or ``failed``, with attempts
and the last error) becomes a row of ``alerts/``, written by the same
idempotent Parquet partition as the other datasets. Deliveries still queued
are part of the snapshot and are queued again on resume: delivery is at least
once, with the same ``webhook-id`` on every attempt.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import orjson
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from operators import metrics
from operators.alerting.alerts import Alert
from operators.alerting.webhooks import WebhookTarget, alert_document, build_request
from operators.connectors.parquet_sink import ParquetSink
from operators.records import partition_key, to_us

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered | failed
    attempts: int
    http_status: int | None
    error: str | None


def retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def deliver(
    client: httpx.Client,
    target: WebhookTarget,
    alert: Alert,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Post one alert to one target, retrying what is worth retrying."""
    delay = target.backoff_s
    status, error = None, None
    for attempt in range(1, target.max_attempts + 1):
        body, headers = build_request(target, alert)  # fresh timestamp and signature per try
        wait = None
        try:
            resp = client.post(target.url, content=body, headers=headers,
                               timeout=target.timeout_s)
            status = resp.status_code
            if 200 <= status < 300:
                return Outcome("delivered", attempt, status, None)
            error = f"HTTP {status}"
            if status not in RETRY_STATUS:
                return Outcome("failed", attempt, status, error)
            wait = retry_after_s(resp.headers.get("retry-after"))
        except httpx.TransportError as ex:  # connection refused, timeout, reset ...
            status, error = None, _scrub(f"{type(ex).__name__}: {ex}", target)
        if attempt < target.max_attempts:
            backoff = random.uniform(0, delay)  # full jitter
            sleep(min(target.max_backoff_s, wait) if wait is not None else backoff)
            delay = min(delay * 2, target.max_backoff_s)
    return Outcome("failed", target.max_attempts, status, error)


def _scrub(text: str, target: WebhookTarget) -> str:
    for secret in (target.url, target.secret, target.routing_key):
        if secret:
            text = text.replace(secret, "***")
    return text


def alert_row(alert: Alert, sink: str, outcome: Outcome, at_us: int) -> tuple:
    return (alert.alert_id, alert.dedup_key, alert.kind, alert.tenant, alert.meter,
            alert.severity, alert.action, alert.opened_at_us, alert.at_us, alert.summary,
            orjson.dumps(alert_document(alert)).decode(), sink, outcome.status,
            outcome.attempts, outcome.error, outcome.http_status, at_us)


class AlertSink(FixedPartitionedSink[list[Alert], tuple]):
    """Takes ``(partition_key(0), [Alert, ...])``; one partition keeps alerts in order."""

    def __init__(self, targets: list[WebhookTarget], records: ParquetSink) -> None:
        self.targets = targets
        self.records = records

    def list_parts(self) -> list[str]:
        return [partition_key(0)]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: tuple | None):
        pending, records_state = resume_state if resume_state is not None else ([], None)
        records = self.records.build_part(step_id, for_part, records_state)
        return _AlertPartition(self.targets, records, pending)


class _AlertPartition(StatefulSinkPartition[list[Alert], tuple]):
    def __init__(self, targets: list[WebhookTarget], records, pending: list) -> None:
        self.targets = {t.name: t for t in targets}
        self.records = records
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[Alert, str]] = {}  # queued or in flight, by ticket
        self.done: list[tuple] = []
        self.next_ticket = 0
        self.tasks: queue.Queue = queue.Queue()
        self.client = httpx.Client()
        self.thread = threading.Thread(target=self._work, name="alert-delivery", daemon=True)
        self.thread.start()
        for alert, name in pending:
            self._queue(alert, name)

    def _queue(self, alert: Alert, target_name: str) -> None:
        with self.lock:
            ticket = self.next_ticket
            self.next_ticket += 1
            self.pending[ticket] = (alert, target_name)
        self.tasks.put(ticket)

    def _work(self) -> None:
        while True:
            ticket = self.tasks.get()
            with self.lock:
                alert, name = self.pending[ticket]
            outcome = deliver(self.client, self.targets[name], alert)
            log.info("alert delivery alert_id=%s action=%s sink=%s status=%s attempts=%d",
                     alert.alert_id, alert.action, name, outcome.status, outcome.attempts)
            metrics.ALERT_DELIVERIES.labels(name, outcome.status).inc()
            with self.lock:
                del self.pending[ticket]
                self.done.append(alert_row(alert, name, outcome, _now_us()))
            self.tasks.task_done()

    def write_batch(self, values: list[list[Alert]]) -> None:
        for alerts in values:
            for alert in alerts:
                log.info("alert %s kind=%s tenant=%s severity=%s: %s", alert.action,
                            alert.kind, alert.tenant, alert.severity, alert.summary)
                if not self.targets:
                    self.done.append(alert_row(alert, "", Outcome("recorded", 0, None, None),
                                               _now_us()))
                for name in self.targets:
                    self._queue(alert, name)
        self._record()

    def _record(self) -> None:
        with self.lock:
            rows, self.done = self.done, []
        self.records.write_batch([rows])

    def snapshot(self) -> tuple:
        self._record()
        with self.lock:
            pending = [self.pending[k] for k in sorted(self.pending)]
        return (pending, self.records.snapshot())

    def close(self) -> None:
        self.tasks.join()  # end of input: finish (or fail) every delivery first
        self._record()
        self.records.close()
        self.client.close()


def _now_us() -> int:
    return to_us(datetime.now(UTC))
