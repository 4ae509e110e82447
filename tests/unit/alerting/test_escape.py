"""A hostile tenant name in Slack, PagerDuty and log lines."""

import subprocess
import sys

import orjson

from operators.alerting.alerts import Alert
from operators.alerting.webhooks import WebhookTarget, build_request

EVIL = "<!channel> <https://evil.example/login|ack> & <@U123>\n2026-01-01 ERROR forged"
ALERT = Alert("a1", f"budget_burn:{EVIL}:*", "budget_burn", EVIL, "*", "page", "trigger",
              1_795_000_000_000_000, 1_795_000_300_000_000, f"{EVIL}: spending 20.0x", {})


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_slack_text_and_blocks_neither_ping_nor_link():
    body, _ = build_request(WebhookTarget("s", "https://hooks.slack.example/x", "slack"), ALERT)
    texts = strings(orjson.loads(body))
    mentioning = [t for t in texts if "<" in t or ">" in t]
    assert mentioning == []  # Slack's control sequences all start with "<"
    # ... and what was escaped reads back as the tenant's name (Slack's three entities).
    section = orjson.loads(body)["blocks"][1]["fields"][0]["text"]
    tenant = section.removeprefix("*Tenant*\n")
    assert tenant.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == EVIL


def test_pagerduty_fields_are_one_line_and_within_limits():
    long = Alert(**{**ALERT.__dict__, "summary": EVIL * 100})
    body, _ = build_request(WebhookTarget("p", "https://pd.example/x", "pagerduty",
                                          routing_key="RK"), long)
    payload = orjson.loads(body)["payload"]
    for key in ("summary", "component", "group"):
        assert "\n" not in payload[key] and "\r" not in payload[key]
    assert len(payload["summary"]) <= 1024
    assert payload["component"].startswith("<!channel>")  # plain text: kept, not mangled


def test_a_long_pagerduty_dedup_key_is_cut_to_a_stable_one_within_the_limit():
    target = WebhookTarget("p", "https://pd.example/x", "pagerduty", routing_key="RK")
    long = Alert(**{**ALERT.__dict__, "dedup_key": "budget_burn:" + "t" * 300 + ":*"})
    other = Alert(**{**long.__dict__, "dedup_key": long.dedup_key[:-1] + "m"})
    resolve = Alert(**{**long.__dict__, "action": "resolve"})
    keys = [orjson.loads(build_request(target, a)[0])["dedup_key"]
            for a in (long, resolve, other)]
    assert all(len(k) <= 255 for k in keys)
    assert keys[0] == keys[1] != keys[2]


def test_a_logged_newline_does_not_forge_a_line():
    code = ("import logging\nfrom flows.cli import _main\n"
            "_main('INFO')\n"  # the command's own logging set-up
            "logging.getLogger('burnwatch').info('alert tenant=%s', " + repr(EVIL) + ")\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert " INFO " in lines[0] and lines[0].endswith("<@U123>\\n2026-01-01 ERROR forged")
