"""The alert policy: hysteresis, paging floor, direction, cooldown, resolve, state."""

import math
import pickle

import pytest

from operators.alerting.policy import NONE, OPEN, RESOLVE, AlertPolicy, ScoreAlerter

H = 3_600_000_000


def feed(alerter, rows, key="acme"):
    """rows of (hour, score, impact) -> the event kinds."""
    return [alerter.feed(key, h * H, s, i).kind for h, s, i in rows]


def test_opens_at_open_at_and_holds_until_below_resolve_below():
    alerter = ScoreAlerter(AlertPolicy(open_at=0.8, resolve_below=0.5))
    kinds = feed(alerter, [(0, 0.79, 10), (1, 0.8, 10), (2, 0.6, 10), (3, 0.5, 10),
                           (4, 0.49, 10), (5, 0.7, 10)])
    #          below open  open  held (hysteresis)  held  resolve  below open again
    assert kinds == [NONE, OPEN, NONE, NONE, RESOLVE, NONE]


def test_open_and_resolve_carry_one_alert_id_and_the_open_time():
    alerter = ScoreAlerter()
    opened = alerter.feed("acme", 5 * H, 0.99, 50.0)
    resolved = alerter.feed("acme", 9 * H, 0.1, 1.0)
    assert (opened.kind, resolved.kind) == (OPEN, RESOLVE)
    assert opened.alert_id == resolved.alert_id and opened.alert_id
    assert resolved.opened_at_us == 5 * H
    assert resolved.key == "acme" and resolved.time_us == 9 * H


def test_tiny_impact_does_not_page():
    alerter = ScoreAlerter(AlertPolicy(min_impact=5.0))
    assert feed(alerter, [(0, 1.0, 4.99), (1, 1.0, 5.0)]) == [NONE, OPEN]


def test_spend_below_expected_does_not_page_by_default():
    assert feed(ScoreAlerter(), [(0, 1.0, -100.0)]) == [NONE]
    down = ScoreAlerter(AlertPolicy(direction="down", min_impact=10))
    assert feed(down, [(0, 1.0, 100.0), (1, 1.0, -100.0)]) == [NONE, OPEN]
    both = ScoreAlerter(AlertPolicy(direction="both"))
    assert feed(both, [(0, 1.0, -100.0)]) == [OPEN]


def test_an_open_alert_resolves_when_the_impact_changes_side():
    alerter = ScoreAlerter()
    assert feed(alerter, [(0, 1.0, 100.0), (1, 1.0, -100.0)]) == [OPEN, RESOLVE]


def test_cooldown_keeps_a_flapping_key_quiet_then_lets_it_open_again():
    alerter = ScoreAlerter(AlertPolicy(cooldown_us=6 * H))
    kinds = feed(alerter, [(0, 0.9, 10), (1, 0.1, 10), (2, 0.9, 10), (6, 0.9, 10),
                           (7, 0.9, 10)])
    assert kinds == [OPEN, RESOLVE, NONE, NONE, OPEN]


def test_keys_are_independent():
    alerter = ScoreAlerter()
    assert alerter.feed("a", 0, 0.9, 10).kind == OPEN
    assert alerter.feed("b", 0, 0.1, 10).kind == NONE
    assert alerter.is_open("a") and not alerter.is_open("b")


def test_a_missing_point_changes_nothing():
    alerter = ScoreAlerter()
    assert feed(alerter, [(0, 0.9, 10), (1, 0.0, math.nan), (2, 0.9, 10)]) == [OPEN, NONE, NONE]


def test_state_survives_a_snapshot_and_old_cooldowns_are_forgotten():
    policy = AlertPolicy(cooldown_us=6 * H)
    alerter = ScoreAlerter(policy)
    feed(alerter, [(0, 0.9, 10), (1, 0.1, 10), (0, 0.9, 10)], key="b")
    feed(alerter, [(2, 0.9, 10)], key="a")
    again = ScoreAlerter(policy, pickle.loads(pickle.dumps(alerter.snapshot())))
    assert feed(again, [(3, 0.1, 10)], key="a") == [RESOLVE]
    assert feed(again, [(4, 0.9, 10)], key="b") == [NONE]  # still cooling down
    again.forget_before(2 * H)
    assert feed(again, [(5, 0.9, 10)], key="b") == [OPEN]


@pytest.mark.parametrize("kwargs", [dict(open_at=0.5, resolve_below=0.5),
                                    dict(open_at=1.1), dict(min_impact=-1),
                                    dict(direction="sideways")])
def test_a_bad_policy_is_refused(kwargs):
    with pytest.raises(ValueError, match="alert policy"):
        AlertPolicy(**kwargs)
