"""Webhook retry schedules and the alert drain timeout, as a user writes them."""

from datetime import timedelta

import pytest

from flows.settings import ConfigError, load_settings
from flows.usage import webhook_targets

HOOK = {"name": "oncall", "url": "https://hooks.example/x", "secret": "whsec_abc"}


def test_the_default_schedule_is_standard_webhooks_and_drain_waits_30s():
    s = load_settings(webhooks=[HOOK])
    [target] = webhook_targets(s)
    assert target.retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert s.alerts.drain_timeout == timedelta(seconds=30)


def test_a_schedule_of_durations(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("webhooks:\n  - {name: oncall, url: 'https://h.example/x', secret: whsec_a,"
                   " retry_schedule: [500ms, 1m, 2h]}\nalerts: {drain_timeout: 2m}\n")
    s = load_settings(cfg)
    assert webhook_targets(s)[0].retry_schedule == (0.5, 60, 7200)
    assert s.alerts.drain_timeout == timedelta(minutes=2)


@pytest.mark.parametrize(("over", "named"), [
    ({"webhooks": [{**HOOK, "max_attempts": 6}]}, "webhooks.0.max_attempts: Value error, "
                                                  "replaced by retry_schedule"),
    ({"webhooks": [{**HOOK, "backoff": "1s"}]}, "webhooks.0.backoff"),
    ({"webhooks": [{**HOOK, "max_backoff": "30s"}]}, "webhooks.0.max_backoff"),
    ({"webhooks": [{**HOOK, "retry_schedule": ["5s", "soon"]}]}, "webhooks.0.retry_schedule.1"),
    ({"webhooks": [{**HOOK, "timeout": "0s"}]}, "webhooks.0.timeout"),
    ({"alerts": {"drain_timeout": "later"}}, "alerts.drain_timeout"),
])
def test_bad_values_name_the_setting(over, named):
    with pytest.raises(ConfigError) as err:
        load_settings(None, **over)
    assert named in str(err.value)
    assert "hooks.example" not in str(err.value)
