"""Alert payloads for on-call receivers: Standard Webhooks, Slack, PagerDuty Events v2.

Pure formatting: a request is (body bytes, headers). Signing uses the
``standardwebhooks`` package: ``webhook-signature: v1,<base64 HMAC-SHA256 of
id.timestamp.body>`` under the ``whsec_`` secret. The ``webhook-id`` is the
same on every retry of one delivery, so a receiver can drop repeats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import orjson
import xxhash
from standardwebhooks import Webhook

from operators.alerting.alerts import TRIGGER, Alert
from operators.alerting.escape import plain_field, slack_text
from operators.records import to_datetime

FORMATS = ("standard", "slack", "pagerduty")
PAGERDUTY_SEVERITY = {"page": "critical", "ticket": "warning", "warning": "warning"}
# Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 h in all).
STANDARD_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
PAGERDUTY_SUMMARY_CHARS = 1024  # Events API v2 limit
PAGERDUTY_FIELD_CHARS = 255  # component, group, dedup_key


@dataclass(frozen=True)
class WebhookTarget:
    name: str
    url: str
    format: str = "standard"
    secret: str | None = None  # whsec_... for `standard`
    routing_key: str | None = None  # for `pagerduty`
    timeout_s: float = 5.0
    # Seconds to wait before each retry; attempts = len + 1. Standard Webhooks' schedule.
    retry_schedule: tuple[float, ...] = STANDARD_RETRY_SCHEDULE

    def __repr__(self) -> str:  # never print the URL, secret or routing key
        return f"WebhookTarget(name={self.name!r}, format={self.format!r})"


def message_id(alert: Alert) -> str:
    return f"msg_{alert.alert_id}_{alert.action}"


def alert_document(alert: Alert) -> dict:
    doc = asdict(alert)
    doc["opened_at"] = _iso(doc.pop("opened_at_us"))
    doc["at"] = _iso(doc.pop("at_us"))
    return doc


def _iso(us: int) -> str:
    return to_datetime(us).isoformat().replace("+00:00", "Z")


def standard_request(alert: Alert, secret: str, now: datetime) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({
        "type": f"burnwatch.alert.{'opened' if alert.action == TRIGGER else 'resolved'}",
        "timestamp": _iso(alert.at_us),
        "data": alert_document(alert),
    })
    msg_id = message_id(alert)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def slack_request(alert: Alert) -> tuple[bytes, dict[str, str]]:
    opened = alert.action == TRIGGER
    icon = ":rotating_light:" if opened and alert.severity == "page" else (
        ":warning:" if opened else ":white_check_mark:")
    # Every value from the alert is escaped: a tenant named "<!channel>" must not ping.
    esc = slack_text
    facts = [f"*Tenant*\n{esc(alert.tenant)}", f"*Severity*\n{esc(alert.severity)}",
             f"*Kind*\n{esc(alert.kind)}", f"*Since*\n{_iso(alert.opened_at_us)}"]
    summary = esc(alert.summary)
    body = {
        "text": f"{icon} {summary}",  # what a phone notification shows
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{summary}*"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
            {"type": "context", "elements": [
                {"type": "mrkdwn",
                 "text": f"burnwatch · `{esc(alert.dedup_key)}` · {esc(alert.alert_id)}"}
            ]},
        ],
    }
    return orjson.dumps(body), {"content-type": "application/json"}


def pagerduty_request(alert: Alert, routing_key: str) -> tuple[bytes, dict[str, str]]:
    body = {
        "routing_key": routing_key,
        "event_action": "trigger" if alert.action == TRIGGER else "resolve",
        "dedup_key": pagerduty_dedup_key(alert.dedup_key),
        "payload": {
            # Shown as plain text: one line each, within PagerDuty's lengths.
            "summary": plain_field(alert.summary, PAGERDUTY_SUMMARY_CHARS),
            "source": "burnwatch",
            "severity": PAGERDUTY_SEVERITY.get(alert.severity, "error"),
            "timestamp": _iso(alert.at_us),
            "component": plain_field(alert.tenant, PAGERDUTY_FIELD_CHARS),
            "group": plain_field(alert.kind, PAGERDUTY_FIELD_CHARS),
            # JSON values, which PagerDuty shows as text and never as markup.
            "custom_details": alert.details,
        },
    }
    return orjson.dumps(body), {"content-type": "application/json"}


def pagerduty_dedup_key(key: str) -> str:
    """The key, or if longer than PagerDuty takes, its start and a hash of the whole
    (stable, so a resolve still finds its trigger)."""
    if len(key) <= PAGERDUTY_FIELD_CHARS:
        return key
    return f"{key[:PAGERDUTY_FIELD_CHARS - 17]}#{xxhash.xxh3_64_hexdigest(key.encode())}"


def build_request(target: WebhookTarget, alert: Alert, now: datetime | None = None):
    now = now or datetime.now(UTC)
    if target.format == "standard":
        return standard_request(alert, target.secret or "", now)
    if target.format == "slack":
        return slack_request(alert)
    if target.format == "pagerduty":
        return pagerduty_request(alert, target.routing_key or "")
    raise ValueError(f"webhook {target.name}: unknown format {target.format!r}")
