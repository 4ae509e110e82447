"""Webhook delivery against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import logging
import socket

import httpx
import orjson
import pytest
from standardwebhooks import Webhook
from werkzeug import Response

from operators.alerting.alerts import Alert
from operators.alerting.webhooks import WebhookTarget
from operators.connectors.alert_sink import AlertSink, deliver
from operators.connectors.parquet_sink import ParquetSink
from operators.records import partition_key
from operators.schemas import ALERTS
from tests.oracle import read_dataset

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALERT = Alert("a1b2", "budget_burn:acme:*", "budget_burn", "acme", "*", "page", "trigger",
              1_795_000_000_000_000, 1_795_000_300_000_000, "acme: spending 20.0x",
              {"burn_rates": {"1h": 20.0}})


def target(url: str, retries: int = 5, **kw) -> WebhookTarget:
    return WebhookTarget("oncall", url, "standard", secret=SECRET,
                         retry_schedule=(0.01,) * retries, **kw)


def answers(*statuses: int):
    """A handler answering the given statuses in turn (then 200)."""
    seen: list = []

    def handler(request):
        seen.append(request)
        status = statuses[len(seen) - 1] if len(seen) <= len(statuses) else 200
        return Response("", status=status)

    return handler, seen


def test_signed_retried_until_delivered_with_one_webhook_id(httpserver):
    handler, seen = answers(500, 500, 500, 200)
    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    with httpx.Client() as client:
        outcome = deliver(client, target(httpserver.url_for("/hook")), ALERT)
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("delivered", 4, 200)
    assert len(seen) == 4
    assert len({r.headers["webhook-id"] for r in seen}) == 1
    for request in seen:  # every attempt verifies with the package, not our code
        payload = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
        assert payload["data"]["alert_id"] == "a1b2"
        assert payload["type"] == "burnwatch.alert.opened"


def test_client_errors_are_not_retried(httpserver):
    handler, seen = answers(404)
    httpserver.expect_request("/hook").respond_with_handler(handler)
    with httpx.Client() as client:
        outcome = deliver(client, target(httpserver.url_for("/hook")), ALERT)
    assert (outcome.status, outcome.attempts, outcome.error) == ("failed", 1, "HTTP 404")
    assert len(seen) == 1


@pytest.mark.parametrize(("retry_after", "schedule", "waits"), [
    ("0.25", (10.0,), [0.25]),  # sooner than the schedule: honoured
    ("120", (5.0, 300.0), [5.0]),  # later: up to the schedule's next step
    ("Thu, 01 Jan 2099 00:00:00 GMT", (300.0,), [300.0]),  # an HTTP date, far away
    ("Thu, 01 Jan 1970 00:00:00 GMT", (300.0,), [0.0]),  # ... in the past: now
    ("soon", (7.0,), [7.0]),  # unreadable: the schedule
])
def test_retry_after_is_honoured_up_to_the_next_step(httpserver, retry_after, schedule, waits):
    calls = []
    httpserver.expect_ordered_request("/hook").respond_with_response(
        Response("", status=429, headers={"Retry-After": retry_after}))
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    hook = WebhookTarget("oncall", httpserver.url_for("/hook"), "standard", secret=SECRET,
                         retry_schedule=schedule)
    with httpx.Client() as client:
        outcome = deliver(client, hook, ALERT, sleep=calls.append)
    assert (outcome.status, outcome.attempts) == ("delivered", 2)
    assert calls == pytest.approx(waits, abs=1e-6)


def test_the_standard_schedule_is_the_default_and_the_retries_follow_it(httpserver):
    calls = []
    httpserver.expect_request("/hook").respond_with_data("", status=503)
    hook = WebhookTarget("oncall", httpserver.url_for("/hook"), "standard", secret=SECRET)
    with httpx.Client() as client:
        outcome = deliver(client, hook, ALERT, sleep=calls.append)
    # Standard Webhooks: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    assert calls == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("failed", 8, 503)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_receiver_leaves_the_alert_failed_in_alerts_dataset(tmp_path, caplog):
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    records = ParquetSink(str(tmp_path), ALERTS, run_key="t", partitions=1)
    sink = AlertSink([target(url, retries=2)], records)
    part = sink.build_part("deliver_alerts", partition_key(0), None)
    with caplog.at_level(logging.DEBUG):
        part.write_batch([[ALERT]])
        part.close()
    rows = read_dataset(str(tmp_path), "alerts").to_pylist()
    assert [(r["alert_id"], r["status"], r["attempts"], r["sink"]) for r in rows] == [
        ("a1b2", "failed", 3, "oncall")]
    assert "ConnectError" in rows[0]["last_error"]
    assert SECRET not in caplog.text and url not in caplog.text
    assert SECRET not in str(rows) and url not in str(rows)


def test_slack_and_pagerduty_bodies(httpserver):
    bodies = {}

    def keep(name):
        def handler(request):
            bodies[name] = orjson.loads(request.get_data())
            return Response("", status=202)
        return handler

    httpserver.expect_request("/slack").respond_with_handler(keep("slack"))
    httpserver.expect_request("/pd").respond_with_handler(keep("pd"))
    with httpx.Client() as client:
        assert deliver(client, WebhookTarget("s", httpserver.url_for("/slack"), "slack"),
                       ALERT).status == "delivered"
        assert deliver(client, WebhookTarget("p", httpserver.url_for("/pd"), "pagerduty",
                                             routing_key="RK"), ALERT).status == "delivered"
    assert "acme: spending 20.0x" in bodies["slack"]["text"]
    assert bodies["slack"]["blocks"][0]["type"] == "section"
    pd = bodies["pd"]
    assert (pd["routing_key"], pd["event_action"], pd["dedup_key"]) == (
        "RK", "trigger", "budget_burn:acme:*")
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "burnwatch"
    assert pd["payload"]["custom_details"] == {"burn_rates": {"1h": 20.0}}


@pytest.mark.parametrize("fmt", ["standard", "slack", "pagerduty"])
def test_target_repr_hides_secrets(fmt):
    t = WebhookTarget("n", "https://hooks.example/SECRETPATH", fmt, secret=SECRET,
                      routing_key="RK")
    assert "SECRETPATH" not in repr(t) and SECRET not in repr(t)
