"""Hostile record content: each case is a dead letter with its reason, never an exception."""

import orjson
import pytest

from operators.records import RawBatch, Reason
from operators.usage.parse import RecordLimits, parse_batch, parse_event

NOW_US = 1_800_000_000 * 10**6  # 2027-01-15


def flat(**over) -> bytes:
    e = {"id": "e1", "tenant": "acme", "meter": "api_calls", "quantity": 3,
         "time": "2026-11-25T10:00:00Z"}
    e.update(over)
    return orjson.dumps(e)


DEFAULT = RecordLimits()


def parse(lines: list[bytes], limits: RecordLimits = DEFAULT):
    return parse_batch(RawBatch(lines, "f", None, range(1, len(lines) + 1)), now_us=NOW_US,
                       max_clock_skew_us=0, limits=limits)


def reasons(lines: list[bytes], limits: RecordLimits = DEFAULT) -> list[str]:
    return [d.reason for d in parse(lines, limits)[1]]


def test_deeply_nested_json_is_a_dead_letter_and_the_rest_of_the_batch_survives():
    deep = b'{"x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    batch, dead = parse([flat(id="a"), deep, flat(id="b")])
    assert len(batch) == 2
    assert [(d.reason, d.raw, d.offset) for d in dead] == [("invalid_json", deep, 2)]


@pytest.mark.parametrize("quantity", [1e25, 1e308, 1e12 + 1e6])
def test_a_quantity_above_max_quantity_is_invalid_quantity(quantity):
    assert reasons([flat(quantity=quantity)]) == ["invalid_quantity"]
    assert parse_event(flat(quantity=quantity)).reason == Reason.INVALID_QUANTITY
    # the CloudEvents shape follows the same rule
    ce = orjson.dumps({"specversion": "1.0", "id": "e", "source": "s", "type": "u",
                       "subject": "acme", "time": "2026-11-25T10:00:00Z",
                       "data": {"meter": "m", "quantity": quantity}})
    assert reasons([ce]) == ["invalid_quantity"]


def test_max_quantity_is_a_setting():
    assert reasons([flat(quantity=50)], RecordLimits(max_quantity=10)) == ["invalid_quantity"]
    assert reasons([flat(quantity=10)], RecordLimits(max_quantity=10)) == []


@pytest.mark.parametrize("time", ["0001-01-07T00:00:00Z", "1969-12-31T23:59:59.999999Z",
                                  "9999-06-01T00:00:00Z"])
def test_a_time_outside_the_supported_range_is_invalid_time(time):
    assert reasons([flat(time=time)]) == ["invalid_time"]


def test_the_first_supported_time_is_an_event():
    assert parse_event(flat(time="1970-01-01T00:00:00Z")).time_us == 0


@pytest.mark.parametrize("time", [
    "2026-W48-3T10:00:00Z",  # ISO 8601 week date
    "2026-W48-3",
    "20261125T100000Z",  # basic format
    "2026-11-25T10Z",  # hour-only
    "2026-11-25T10:00Z",  # no seconds
    "2026-11-25 10:00:00Z",  # a space is not RFC 3339's date-time
    "2026-11-25T10:00:00+0100",  # offset without colon
    "2026-11-25T10:00:00",  # no offset
    "2026-11-25",
    "2026-02-30T10:00:00Z",  # no such day
    "\uff12026-11-25T10:00:00Z",  # a non-ASCII digit
])
def test_what_is_not_rfc_3339_is_invalid_time(time):
    assert reasons([flat(time=time)]) == ["invalid_time"]


@pytest.mark.parametrize("time", [
    "2026-11-25t10:00:00z", "2026-11-25T10:00:00z", "2026-11-25t10:00:00Z",
    "2026-11-25T10:00:00.000000000Z",  # more than 6 fractional digits: cut to the µs
    "2026-11-25T11:00:00+01:00", "2026-11-25T10:00:00-00:00",
])
def test_rfc_3339_with_lowercase_t_and_z_and_long_fractions_is_read(time):
    batch, dead = parse([flat(time=time)])
    assert dead == []
    assert batch.time_us.tolist() == [1_795_600_800_000_000]


def test_a_tenant_written_three_ways_is_one_tenant():
    spellings = ["\u00c5", "A\u030a", "\u212b"]  # precomposed, combining ring, angstrom sign
    events = [parse_event(flat(tenant=s)) for s in spellings]
    assert {e.tenant for e in events} == {"\u00c5"}
    batch, _ = parse([flat(id=str(i), tenant=s) for i, s in enumerate(spellings)])
    assert batch.keys == [("\u00c5", "api_calls", ())]


def test_meters_and_dimensions_are_normalised_too():
    e = parse_event(flat(meter="caf\u0065\u0301", dimensions={"re\u0301gion": "A\u030a"}))
    assert e.meter == "caf\u00e9"
    assert e.dimensions == (("r\u00e9gion", "\u00c5"),)


@pytest.mark.parametrize("over", [
    {"tenant": "acme\nforged"}, {"tenant": "acme\u0085"}, {"meter": "a\x7fb"},
    {"tenant": "t" * 257}, {"meter": "m" * 257},
    {"dimensions": {"k\u0000": "v"}}, {"dimensions": {"k": "v\r"}},
    {"dimensions": {"k" * 257: "v"}}, {"dimensions": {"k": "v" * 257}},
    {"dimensions": {"\u00c5": "1", "A\u030a": "2"}},  # one key after NFC, given twice
])
def test_identifiers_with_control_characters_or_too_long_are_invalid_field(over):
    assert reasons([flat(**over)]) == ["invalid_field"]


def test_max_identifier_length_counts_characters_after_nfc():
    limits = RecordLimits(max_identifier_length=3)
    assert reasons([flat(tenant="A\u030aA\u030aA\u030a", meter="m")], limits) == []  # 3 after NFC
    assert reasons([flat(tenant="abcd", meter="m")], limits) == ["invalid_field"]


@pytest.mark.parametrize("over, named", [
    ({"max_quantity": 1e16}, "max_quantity"),  # above 1e15 a window sum could overflow
    ({"max_quantity": 0}, "max_quantity"),
    ({"max_identifier_length": 0}, "max_identifier_length"),
])
def test_bad_record_limits_name_the_setting(over, named):
    from flows.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match=named):
        load_settings(None, **over)


def test_the_record_limits_settings_reach_the_parse_step():
    from flows.settings import load_settings
    from flows.usage import usage_config

    config = usage_config(load_settings(None, max_quantity=10, max_identifier_length=5),
                          follow_wall_clock=False)
    assert config.limits == RecordLimits(max_quantity=10, max_identifier_length=5)
