"""Meter definitions: JSONPath subset, filters, group_by, values, and the readings of an event."""

import hashlib
import hmac

import orjson
import pytest

from operators.records import RawBatch, Reason
from operators.usage.fields import RecordLimits, Rejection
from operators.usage.meters import compile_path, meters_from_config
from operators.usage.parse import parse_batch

LIMITS = RecordLimits()
T = "2026-12-02T15:30:23.926887+00:00"
LLM = [
    {"slug": "tokens_in", "event_type": "prompt", "aggregation": "sum",
     "value_property": "$.tokens", "group_by": {"model": "$.model"},
     "filter": {"$.type": "input"}},
    {"slug": "tokens_out", "event_type": "prompt", "aggregation": "sum",
     "value_property": "$.tokens", "group_by": {"model": "$.model"},
     "filter": {"$.type": {"in": ["output", "reasoning"]}}},
    {"slug": "users", "event_type": "prompt", "aggregation": "unique_count",
     "value_property": "$.user_id"},
    {"slug": "prompts", "event_type": "prompt", "aggregation": "count"},
]


def cloud(data: dict, **over) -> bytes:
    e = {"specversion": "1.0", "id": "id-0", "source": "my-llm-gateway", "type": "prompt",
         "subject": "customer-1", "time": T, "data": data}
    e.update(over)
    return orjson.dumps(e)


@pytest.mark.parametrize("path, segments", [
    ("$", ()),
    ("$.tokens", ("tokens",)),
    ("$.usage.input_tokens", ("usage", "input_tokens")),
    ("$['user id']", ("user id",)),
    ('$["a.b"][0]', ("a.b", 0)),
    ("$.items[2].n", ("items", 2, "n")),
])
def test_the_jsonpath_subset(path, segments):
    assert compile_path(path) == segments


@pytest.mark.parametrize("path", ["tokens", "$..tokens", "$.*", "$.a[*]", "$.a[-1]",
                                  "$.a[0:2]", "$[?(@.x)]", "$.", "$.a b"])
def test_paths_outside_the_subset_are_refused(path):
    with pytest.raises(ValueError):
        compile_path(path)


def readings(data, defs=LLM, event_type="prompt"):
    return meters_from_config(defs).readings(event_type, data, LIMITS)


def test_one_event_feeds_every_meter_whose_filter_holds():
    got = readings({"tokens": 100, "model": "gpt-4o", "type": "input", "user_id": "u1"})
    assert [(r[0], r[1], r[2]) for r in got] == [
        ("tokens_in", 100.0, (("model", "gpt-4o"),)),
        ("users", 1.0, ()),
        ("prompts", 1.0, ()),
    ]
    assert got[1][3] != 0 and got[0][3] == 0  # only unique_count carries a value hash
    out = readings({"tokens": 7, "model": "m", "type": "reasoning", "user_id": "u1"})
    assert [r[0] for r in out] == ["tokens_out", "users", "prompts"]  # `in` matched


def test_values_numbers_and_numeric_strings_are_read_like_quantities():
    defs = [{"slug": "s", "event_type": "e", "aggregation": "sum", "value_property": "$.v"}]
    assert readings({"v": "12.5"}, defs, "e")[0][1] == 12.5
    assert readings({"v": " 3 "}, defs, "e")[0][1] == 3.0
    for bad in ("twelve", True, [1], -1, "1e400", {"x": 1}):
        r = readings({"v": bad}, defs, "e")
        assert type(r) is Rejection and r.reason == Reason.INVALID_QUANTITY, bad
    for missing in ({}, {"v": None}):
        r = readings(missing, defs, "e")
        assert r.reason == Reason.MISSING_PROPERTY and "$.v" in r.detail


def test_a_missing_group_by_property_is_left_out_and_a_non_scalar_one_is_refused():
    r = readings({"tokens": 1, "type": "input", "user_id": "u"})
    assert r[0][2] == ()
    r = readings({"tokens": 1, "type": "input", "user_id": "u", "model": {"name": "x"}})
    assert r.reason == Reason.INVALID_FIELD
    r = readings({"tokens": 1, "type": "input", "user_id": "u", "model": 4})
    assert r[0][2] == (("model", "4"),)  # a number as its JSON text


def test_filters_compare_json_values_with_their_types():
    defs = [{"slug": "s", "event_type": "e", "aggregation": "count", "filter": {"$.n": 1}}]
    assert readings({"n": 1.0}, defs, "e")[0][0] == "s"
    for other in (True, "1", 2, None):
        assert readings({"n": other}, defs, "e").reason == Reason.NO_METER, other
    assert readings({}, defs, "e").reason == Reason.NO_METER


def test_an_event_whose_type_no_meter_takes_is_for_the_caller():
    assert readings({"tokens": 1}, event_type="other") is None
    assert readings({"tokens": 1}, event_type=None) is None


def test_private_dimensions_are_keyed_hashes():
    defs = [{"slug": "s", "event_type": "e", "aggregation": "sum", "value_property": "$.v",
             "group_by": {"user": "$.user", "plan": "$.plan"}, "private": ["user"]}]
    meters = meters_from_config(defs, dimension_key=b"k3y")
    (r,) = meters.readings("e", {"v": 1, "user": "alice@example.com", "plan": "pro"}, LIMITS)
    expected = "h:" + hmac.new(b"k3y", b"alice@example.com", hashlib.sha256).hexdigest()[:32]
    assert dict(r[2]) == {"user": expected, "plan": "pro"}


@pytest.mark.parametrize("entry, where", [
    ({"event_type": "e", "aggregation": "sum", "value_property": "$.v"}, ".slug"),
    ({"slug": "s", "aggregation": "sum", "value_property": "$.v"}, "(s).event_type"),
    ({"slug": "s", "event_type": "e", "aggregation": "avg", "value_property": "$.v"},
     "(s).aggregation"),
    ({"slug": "s", "event_type": "e", "aggregation": "sum"}, "(s).value_property"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "value_property": "$.v"},
     "(s).value_property"),
    ({"slug": "s", "event_type": "e", "aggregation": "sum", "value_property": "$..v"},
     "(s).value_property"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "group_by": {"m": "m"}},
     "(s).group_by.m"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "filter": {"$.t": [1]}},
     "(s).filter"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "private": ["m"]}, "(s).private"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "group_by": {"m": "$.m"},
      "private": ["m"]}, "(s).private"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "max_groups": 0},
     "(s).max_groups"),
    ({"slug": "s", "event_type": "e", "aggregation": "count", "valueProperty": "$.v"},
     "(s).valueProperty"),
])
def test_a_bad_definition_names_the_meter_and_the_key(entry, where):
    with pytest.raises(ValueError, match=r"^meters\[0\]" + where.replace("(", r" \(")
                       .replace(")", r"\)").replace(".", r"\.")):
        meters_from_config([entry])


def test_a_slug_defined_twice_is_refused():
    entry = {"slug": "s", "event_type": "e", "aggregation": "count"}
    with pytest.raises(ValueError, match=r"meters\[1\] \(s\)\.slug"):
        meters_from_config([entry, entry])


def parse(lines, defs=LLM):
    return parse_batch(RawBatch(lines, "f", None, range(1, len(lines) + 1)),
                       now_us=2**62, max_clock_skew_us=0, limits=LIMITS,
                       meters=meters_from_config(defs))


def test_the_readings_of_an_event_share_its_identity_and_content():
    a = cloud({"tokens": 100, "model": "gpt-4o", "type": "input", "user_id": "u1"})
    b = cloud({"tokens": 101, "model": "gpt-4o", "type": "input", "user_id": "u1"})
    batch, dead = parse([a, b])
    assert dead == []
    assert len(batch) == 6 and batch.lead.tolist() == [True, False, False] * 2
    assert len(set(batch.id_hash.tolist())) == 1  # (source, id) is one identity
    # Every reading carries the event's content: the copy differs in tokens only, and the
    # readings whose values do not change (users, prompts) still differ from the first's.
    assert set(batch.content_hash[:3].tolist()).isdisjoint(batch.content_hash[3:].tolist())
    assert len(set(batch.content_hash[:3].tolist())) == 1


def test_identity_is_source_and_id():
    data = {"tokens": 1, "model": "m", "type": "input", "user_id": "u"}
    batch, _ = parse([cloud(data), cloud(data, source="other-gateway"), cloud(data)])
    leads = batch.id_hash[batch.lead].tolist()
    assert leads[0] == leads[2] != leads[1]


def test_records_no_meter_takes_and_legacy_records():
    legacy = orjson.dumps({"id": "l1", "tenant": "acme", "meter": "api_calls", "quantity": 2,
                           "time": T})
    unknown = cloud({"tokens": 1}, type="signup")
    no_type = orjson.dumps({"id": "n", "tenant": "acme", "time": T, "tokens": 3})
    missing = cloud({"tokens": 1, "type": "input"})  # no user_id for `users`
    batch, dead = parse([legacy, unknown, no_type, missing])
    assert batch.keys == [("acme", "api_calls", ())] and batch.quantity.tolist() == [2.0]
    assert [(d.offset, d.reason) for d in dead] == [
        (2, "no_meter"), (3, "no_meter"), (4, "missing_property")]
    assert "'signup'" in dead[0].detail and "users" in dead[2].detail


def test_flat_events_are_matched_by_their_type_field():
    flat = orjson.dumps({"id": "f1", "source": "s", "tenant": "acme", "type": "prompt",
                         "time": T, "tokens": 5, "model": "m", "type_": "x", "user_id": "u"})
    defs = [{"slug": "t", "event_type": "prompt", "aggregation": "sum",
             "value_property": "$.tokens", "group_by": {"model": "$.model"}}]
    batch, dead = parse([flat], defs)
    assert dead == [] and batch.keys == [("acme", "t", (("model", "m"),))]


def test_the_tenant_can_be_a_data_property():
    meters = meters_from_config(LLM[:1], tenant_property="$.org.id")
    good = cloud({"tokens": 4, "type": "input", "org": {"id": "org-9"}})
    legacy = orjson.dumps({"specversion": "1.0", "id": "l", "source": "s", "type": "usage",
                           "time": T, "data": {"meter": "m", "quantity": 1, "org": {"id": 7}}})
    bad = cloud({"tokens": 4, "type": "input", "org": {}})
    batch, dead = parse_batch(RawBatch([good, legacy, bad], "f", None, range(1, 4)),
                              now_us=2**62, max_clock_skew_us=0, meters=meters)
    assert [k[0] for k in batch.keys] == ["org-9", "7"]  # not subject "customer-1"
    assert [(d.offset, d.reason) for d in dead] == [(3, "missing_field")]
    with pytest.raises(ValueError, match="^tenant_property"):
        meters_from_config([], tenant_property="$.org[*]")
