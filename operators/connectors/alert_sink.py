"""Deliver alerts to webhooks without stalling the flow, and record each outcome.

``write_batch`` only queues: a background thread per partition posts each due
delivery, one attempt at a time, so a receiver that is down delays only its own
alerts. Connection errors, timeouts, 408, 429 and 5xx are retried on the target's
``retry_schedule`` (Standard Webhooks': 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a
``Retry-After`` (seconds or an HTTP date) shortens a wait, never lengthens it past
the schedule's step. Other statuses are final. Only the status line and headers of
an answer are read: a body that is slow, endless or not the gzip it claims cannot
fail or hang a delivery. Whatever an attempt raises is a failed attempt with its
error (URL and secrets scrubbed) and the thread goes on; should it stop anyway,
``burnwatch_alert_delivery_threads`` drops and the log says so, and the next
batch starts a new one.

Every outcome becomes a row of ``alerts/`` (``delivered``, ``failed``, or at the
end of a replay ``pending``), written by the same idempotent Parquet partition
as the other datasets. Deliveries not finished are part of the snapshot (taken
in one step with the finished ones' rows) and are tried again on resume: delivery
is at least once, with the same ``webhook-id`` on every attempt.
"""

from __future__ import annotations

import heapq
import logging
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

# Configuration errors: trying again cannot help.
FINAL_ERRORS = (httpx.InvalidURL, httpx.UnsupportedProtocol)
_MAX_WAIT_S = 60.0  # the worker re-reads the clock at least this often


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered | failed | pending | recorded
    attempts: int
    http_status: int | None
    error: str | None


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    http_status: int | None
    error: str | None  # None: delivered
    retry: bool = False
    retry_after_s: float | None = None


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` asks for (delta-seconds or an HTTP date); None if unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
        except Exception:  # noqa: BLE001 - any unreadable header is no header
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN: no header


def attempt(client: httpx.Client, target: WebhookTarget, alert: Alert) -> Attempt:
    """One POST of one alert; whatever happens is an ``Attempt``, never an exception."""
    try:
        body, headers = build_request(target, alert)  # fresh timestamp and signature per try
        with client.stream("POST", target.url, content=body, headers=headers,
                           timeout=target.timeout_s) as resp:
            status, retry_after = resp.status_code, resp.headers.get("retry-after")
    except Exception as ex:  # noqa: BLE001 - a delivery can fail in any way; record it
        return Attempt(None, _scrub(f"{type(ex).__name__}: {ex}", target),
                       retry=not isinstance(ex, FINAL_ERRORS))
    if 200 <= status < 300:
        return Attempt(status, None)
    return Attempt(status, f"HTTP {status}", retry=status in (408, 429) or status >= 500,
                   retry_after_s=retry_after_s(retry_after))


def next_wait_s(target: WebhookTarget, attempts: int, result: Attempt) -> float | None:
    """Seconds until the next attempt after ``attempts`` of them, or None: this is final."""
    if result.error is None or not result.retry or attempts > len(target.retry_schedule):
        return None
    step = target.retry_schedule[attempts - 1]
    return step if result.retry_after_s is None else min(step, result.retry_after_s)


def deliver(
    client: httpx.Client,
    target: WebhookTarget,
    alert: Alert,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Post one alert to one target, retrying on its schedule (blocking; the sink does not)."""
    attempts = 0
    while True:
        result = attempt(client, target, alert)
        attempts += 1
        wait = next_wait_s(target, attempts, result)
        if wait is None:
            return _outcome(result, attempts)
        sleep(wait)


def _outcome(result: Attempt, attempts: int) -> Outcome:
    return Outcome("delivered" if result.error is None else "failed", attempts,
                   result.http_status, result.error)


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
    """Takes ``(partition_key(0), [Alert, ...])``; one partition keeps alerts in order.

    At end of input the sink waits up to ``drain_timeout_s`` for deliveries still
    queued; then it records the rest as ``pending`` rows, or with ``keep_pending``
    leaves them in the recovery store for the next start.
    """

    def __init__(self, targets: list[WebhookTarget], records: ParquetSink, *,
                 drain_timeout_s: float = 30.0, keep_pending: bool = False) -> None:
        self.targets = targets
        self.records = records
        self.drain_timeout_s = drain_timeout_s
        self.keep_pending = keep_pending

    def list_parts(self) -> list[str]:
        return [partition_key(0)]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: tuple | None):
        pending, records_state = resume_state if resume_state is not None else ([], None)
        records = self.records.build_part(step_id, for_part, records_state)
        return _AlertPartition(self, records, pending)


@dataclass
class _Delivery:
    alert: Alert
    target: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None

    def state(self) -> tuple:
        return (self.alert, self.target, self.attempts, self.http_status, self.error)


class _AlertPartition(StatefulSinkPartition[list[Alert], tuple]):
    def __init__(self, sink: AlertSink, records, pending: list) -> None:
        self.targets = {t.name: t for t in sink.targets}
        self.drain_timeout_s = sink.drain_timeout_s
        self.keep_pending = sink.keep_pending
        self.records = records
        self.lock = threading.Condition()  # guards everything below; notified on any change
        self.pending: dict[int, _Delivery] = {}  # queued, waiting or in flight, by ticket
        self.due: list[tuple[int, int]] = []  # heap of (next attempt, wall clock µs; ticket)
        self.done: list[tuple] = []  # alerts/ rows not yet handed to the records
        self.next_ticket = 0
        self.closing = False
        self.client = httpx.Client()
        for state in pending:  # (alert, target) before retry schedules; retried at once
            self._queue(_Delivery(*state))
        self.thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._work, name="alert-delivery", daemon=True)
        metrics.ALERT_DELIVERY_THREADS.inc()
        thread.start()
        return thread

    def _queue(self, delivery: _Delivery, due_us: int | None = None) -> None:
        with self.lock:
            ticket = self.next_ticket
            self.next_ticket += 1
            self.pending[ticket] = delivery
            heapq.heappush(self.due, (due_us or 0, ticket))
            metrics.ALERTS_PENDING.set(len(self.pending))
            self.lock.notify_all()

    def _work(self) -> None:
        try:
            while (ticket := self._next_due()) is not None:
                try:
                    self._attempt(ticket)
                except Exception:  # a bug of ours: an unfinished delivery is tried again later
                    log.exception("alert delivery error, retrying in %.0fs", _MAX_WAIT_S)
                    with self.lock:
                        if ticket in self.pending and ticket not in {t for _, t in self.due}:
                            heapq.heappush(self.due,
                                           (_now_us() + int(_MAX_WAIT_S * 1e6), ticket))
        finally:
            metrics.ALERT_DELIVERY_THREADS.dec()
            if not self.closing:
                log.error("alert delivery thread stopped; alerts are not being sent")
            with self.lock:
                self.lock.notify_all()

    def _next_due(self) -> int | None:
        with self.lock:
            while not self.closing:
                if not self.due:
                    self.lock.wait(_MAX_WAIT_S)
                    continue
                wait_s = (self.due[0][0] - _now_us()) / 1e6
                if wait_s <= 0:
                    return heapq.heappop(self.due)[1]
                self.lock.wait(min(wait_s, _MAX_WAIT_S))
            return None

    def _attempt(self, ticket: int) -> None:
        with self.lock:
            delivery = self.pending.get(ticket)
        if delivery is None:
            return
        target = self.targets.get(delivery.target)
        result = (attempt(self.client, target, delivery.alert) if target is not None
                  else Attempt(None, "no webhook of this name is configured any more"))
        with self.lock:
            delivery.attempts += 1
            delivery.http_status, delivery.error = result.http_status, result.error
            wait = next_wait_s(target, delivery.attempts, result) if target else None
            if wait is not None:
                heapq.heappush(self.due, (_now_us() + int(wait * 1e6), ticket))
            else:
                del self.pending[ticket]
                outcome = _outcome(result, delivery.attempts)
                self.done.append(alert_row(delivery.alert, delivery.target, outcome, _now_us()))
                metrics.ALERTS_PENDING.set(len(self.pending))
            self.lock.notify_all()
        alert = delivery.alert
        if wait is not None:
            log.info("alert delivery retry alert_id=%s action=%s sink=%s attempts=%d in=%.1fs "
                     "error=%s", alert.alert_id, alert.action, delivery.target,
                     delivery.attempts, wait, result.error)
            return
        log.info("alert delivery alert_id=%s action=%s sink=%s status=%s attempts=%d",
                 alert.alert_id, alert.action, delivery.target, outcome.status, outcome.attempts)
        metrics.ALERT_DELIVERIES.labels(delivery.target, outcome.status).inc()

    def write_batch(self, values: list[list[Alert]]) -> None:
        if not self.thread.is_alive():
            log.error("alert delivery thread found stopped; starting a new one")
            with self.lock:  # what it had in hand is tried again
                waiting = {t for _, t in self.due}
                for ticket in self.pending.keys() - waiting:
                    heapq.heappush(self.due, (0, ticket))
            self.thread = self._start_thread()
        for alerts in values:
            for alert in alerts:
                log.info("alert %s kind=%s tenant=%s severity=%s: %s", alert.action,
                         alert.kind, alert.tenant, alert.severity, alert.summary)
                if not self.targets:
                    with self.lock:
                        self.done.append(alert_row(alert, "", Outcome("recorded", 0, None, None),
                                                   _now_us()))
                for name in self.targets:
                    self._queue(_Delivery(alert, name))
        self._record()

    def _take(self) -> tuple[list[tuple], list[_Delivery]]:
        """Rows of finished deliveries and the unfinished ones, at one instant."""
        with self.lock:
            rows, self.done = self.done, []
            return rows, [self.pending[k] for k in sorted(self.pending)]

    def _record(self) -> None:
        rows, _ = self._take()
        self.records.write_batch([rows])

    def snapshot(self) -> tuple:
        # One step: a delivery that finishes meanwhile is then in the snapshot's pending
        # list, or its row in the records' state, never in neither.
        rows, pending = self._take()
        self.records.write_batch([rows])
        return ([d.state() for d in pending], self.records.snapshot())

    def close(self) -> None:
        """End of input: wait for queued deliveries, at most the drain timeout."""
        deadline = time.monotonic() + self.drain_timeout_s
        with self.lock:
            while self.pending and self.thread.is_alive():
                left = deadline - time.monotonic()
                idle = len(self.due) == len(self.pending)  # nothing in flight
                if left <= 0 or (idle and self.due[0][0] > _now_us() + left * 1e6):
                    break  # nothing can finish before the deadline
                self.lock.wait(min(left, 1.0))
            self.closing = True
            self.lock.notify_all()
        rows, pending = self._take()
        if pending:
            log.warning("alert deliveries not finished at end of input deliveries=%d %s",
                        len(pending), "kept for the next start" if self.keep_pending
                        else "recorded as pending")
        if not self.keep_pending:
            rows += [alert_row(d.alert, d.target,
                               Outcome("pending", d.attempts, d.http_status, d.error), _now_us())
                     for d in pending]
        self.records.write_batch([rows])
        self.records.close()


def _now_us() -> int:
    return to_us(datetime.now(UTC))
