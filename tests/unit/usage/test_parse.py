import json
import math
import random
from datetime import UTC, datetime

import orjson
import pytest

from operators.records import RawBatch, Reason, UsageEvent, to_us
from operators.usage.parse import Rejection, parse_batch, parse_event

T = "2026-11-25T10:00:00.123Z"
T_US = to_us(datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC))


def flat(**over):
    base = {"id": "evt-1", "source": "gw", "tenant": "acme", "meter": "api_calls", "quantity": 3,
            "time": T,
            "dimensions": {"region": "eu-west-1"}}
    base.update(over)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def cloud(**data_over):
    data = {"meter": "api_calls", "quantity": 3, "dimensions": {"region": "eu-west-1"}}
    data.update(data_over)
    return orjson.dumps({"specversion": "1.0", "id": "evt-1", "source": "gw", "type": "usage",
                         "subject": "acme", "time": T, "data": data})


def test_flat_and_cloudevents_give_the_same_event():
    a, b = parse_event(flat()), parse_event(cloud())
    assert a == b == UsageEvent("evt-1", "acme", "api_calls", 3.0, T_US, (("region", "eu-west-1"),))


def test_offsets_are_normalised_to_utc():
    e = parse_event(flat(time="2026-11-25T12:00:00.123+02:00"))
    assert e.time_us == T_US


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"{not json", Reason.INVALID_JSON),
        (b"", Reason.INVALID_JSON),
        (b"\xff\xfe", Reason.INVALID_JSON),
        (b"[1,2]", Reason.INVALID_JSON),
        (flat(id=...), Reason.MISSING_FIELD),
        (flat(id=""), Reason.MISSING_FIELD),
        (flat(tenant="  "), Reason.MISSING_FIELD),
        (flat(meter=...), Reason.MISSING_FIELD),
        (flat(id=12), Reason.INVALID_FIELD),
        (flat(quantity="3"), Reason.INVALID_QUANTITY),
        (flat(quantity=True), Reason.INVALID_QUANTITY),
        (flat(quantity=-0.5), Reason.INVALID_QUANTITY),
        (flat(quantity=...), Reason.MISSING_FIELD),
        (b'{"id":"a","tenant":"t","meter":"m","quantity":NaN,"time":"' + T.encode() + b'"}',
         Reason.INVALID_QUANTITY),
        (b'{"id":"a","tenant":"t","meter":"m","quantity":1e999,"time":"' + T.encode() + b'"}',
         Reason.INVALID_QUANTITY),
        (b'{"id":"a","tenant":"t","meter":"m","quantity":Infinity,"time":"' + T.encode() + b'"}',
         Reason.INVALID_QUANTITY),
        (flat(time="yesterday"), Reason.INVALID_TIME),
        (flat(time="2026-11-25T10:00:00"), Reason.INVALID_TIME),  # no offset: ambiguous
        (flat(time=1732530000), Reason.INVALID_TIME),
        (flat(time=...), Reason.MISSING_FIELD),
        (flat(dimensions=["eu"]), Reason.INVALID_FIELD),
        (flat(dimensions={"a": {"b": 1}}), Reason.INVALID_FIELD),
        (cloud(quantity=-1), Reason.INVALID_QUANTITY),
        (orjson.dumps({"specversion": "1.0", "id": "x", "subject": "acme", "time": T,
                       "data": "api_calls"}), Reason.INVALID_FIELD),
        (orjson.dumps({"specversion": "0.3", "id": "x", "subject": "acme", "time": T,
                       "data": {}}), Reason.INVALID_FIELD),
    ],
)
def test_bad_records_are_rejected_with_a_reason(raw, reason):
    result = parse_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.detail


@pytest.mark.parametrize("field", ["id", "tenant", "meter", "time", "dimension value",
                                   "dimension key", "cloudevents subject"])
def test_a_lone_surrogate_is_invalid_json_not_a_crash(field):
    # JSON's grammar lets "\ud800" through, but no UTF-8 string can hold it: the id could
    # not be hashed nor the tenant written to Parquet, and the job crashed on it.
    lone = "x\\ud800"
    raw = {
        "id": flat(id=...)[:-1] + f',"id":"{lone}"}}'.encode(),
        "tenant": flat(tenant=...)[:-1] + f',"tenant":"{lone}"}}'.encode(),
        "meter": flat(meter=...)[:-1] + f',"meter":"{lone}"}}'.encode(),
        "time": flat(time=...)[:-1] + f',"time":"{T}{lone}"}}'.encode(),
        "dimension value": flat(dimensions=...)[:-1] + f',"dimensions":{{"r":"{lone}"}}}}'.encode(),
        "dimension key": flat(dimensions=...)[:-1] + f',"dimensions":{{"{lone}":"r"}}}}'.encode(),
        "cloudevents subject": cloud().replace(b'"subject":"acme"', f'"subject":"{lone}"'.encode()),
    }[field]
    assert b"\\ud800" in raw
    result = parse_event(raw)
    assert isinstance(result, Rejection) and result.reason == Reason.INVALID_JSON
    assert "not valid Unicode" in result.detail
    batch, rejects = parse_batch(RawBatch([flat(id="ok"), raw], "t", 0, range(2)), now_us=T_US,
                                 max_clock_skew_us=0)
    assert len(batch) == 1
    assert [(d.reason, d.raw, d.offset) for d in rejects] == [("invalid_json", raw, 1)]


def test_a_surrogate_pair_is_one_character_and_valid():
    e = parse_event(flat(id=...)[:-1] + b',"id":"smile-\\ud83d\\ude00"}')
    assert e.id == "smile-\U0001f600"


def test_zero_and_fractional_quantities_are_valid():
    assert parse_event(flat(quantity=0)).quantity == 0.0
    assert math.isclose(parse_event(flat(quantity=0.25)).quantity, 0.25)


def test_batch_keeps_raw_bytes_and_positions_of_rejects_and_flags_future_events():
    now = T_US
    lines = [
        flat(id="a"),
        b"{broken",
        flat(id="b", time="2026-11-25T10:20:00Z"),  # 20 min ahead of the clock
        flat(id="c", time="2026-11-25T10:05:00Z"),  # 5 min ahead: within the skew
    ]
    batch, rejects = parse_batch(
        RawBatch(lines, "events.jsonl", None, range(41, 45)), now_us=now,
        max_clock_skew_us=10 * 60 * 1_000_000,
    )
    assert len(batch) == 2
    assert [batch.offset(i) for i in range(2)] == [41, 44]
    assert [batch.raw(i) for i in range(2)] == [lines[0], lines[3]]
    assert [(d.reason, d.raw, d.offset, d.source) for d in rejects] == [
        ("invalid_json", b"{broken", 42, "events.jsonl"),
        ("future_timestamp", lines[2], 43, "events.jsonl"),
    ]
    assert all(d.received_at_us == now for d in rejects)


def test_the_same_event_in_either_shape_has_the_same_content_hash():
    batch, _ = parse_batch(RawBatch([flat(), cloud(), flat(quantity=4)], "f", None, [1, 2, 3]),
                           now_us=T_US, max_clock_skew_us=0)
    assert batch.id_hash[0] == batch.id_hash[1] == batch.id_hash[2]
    assert batch.content_hash[0] == batch.content_hash[1] != batch.content_hash[2]


def test_quantities_and_dimensions_that_mean_the_same_hash_the_same():
    variants = [
        flat(quantity=3, dimensions={"region": "eu", "tier": "1"}),
        flat(quantity=3.0, dimensions={"tier": 1, "region": "eu"}),  # value as text, any order
        cloud(quantity=3, dimensions={"tier": "1", "region": "eu"}),
    ]
    different = [flat(quantity=3, dimensions={"region": "eu"}), flat(quantity=3.5),
                 flat(tenant="other"), flat(time="2026-11-25T10:00:00.124Z")]
    batch, _ = parse_batch(RawBatch(variants + different, "f", None, range(7)),
                           now_us=T_US, max_clock_skew_us=10**9)
    assert len(batch) == 7
    hashes = batch.content_hash.tolist()
    assert len(set(hashes[:3])) == 1
    assert len(set(hashes)) == 1 + len(different)


# Strings Arrow converts in bulk must get the value fromisoformat gives; the rest must be
# decided by fromisoformat (one by one).
TIMES = [
    "2026-11-25T10:00:00Z", "2026-11-25T10:00:00.1Z", "2026-11-25T10:00:00.123456Z",
    "2026-11-25T12:00:00.5+02:00", "2026-11-25T10:00:00-00:30", "2026-11-25T10:00:00+05:45",
    "9999-12-31T23:59:59.999999-01:00", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.9Z",
    "2026-11-25T10:00:00.1234567Z",  # more digits than µs: fromisoformat truncates
    "2026-11-25 10:00:00Z", "2026-11-25T10:00Z", "20261125T100000Z",  # other ISO forms
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "2026-02-30T00:00:00Z",
    "2026-11-25T24:00:00Z", "2026-11-25T10:00:60Z", "2026-11-25T10:00:00+24:00",
    "2026-11-25T10:00:00", "2026-11-25", "25/11/2026", "yesterday", "2026-11-25T10:00:00z",
]


def _one_by_one(text: str):
    from operators.usage.parse import _time_us
    return _time_us(text)


@pytest.mark.parametrize("text", TIMES)
def test_bulk_time_conversion_agrees_with_fromisoformat(text):
    from operators.usage.parse import times_us

    def bulk(texts, i):
        us, bad = times_us(texts)
        return bad.get(i, int(us[i]))

    alone = bulk([text], 0)
    with_good_neighbours = bulk(["2026-11-25T10:00:00Z", text, "2026-11-25T10:00:01Z"], 1)
    expected = _one_by_one(text)
    assert alone == with_good_neighbours == expected


def test_quick_field_checks_agree_with_the_full_checks_on_a_generated_stream():
    from flows.synthetic import GeneratorConfig, Manifest, generate
    from operators.usage.parse import _quick_fields, _record

    cfg = GeneratorConfig(tenants=20, hours=6, bad_rate=0.05, conflict_rate=0.01,
                          end=datetime(2026, 11, 25, tzinfo=UTC))
    lines = [line for _, batch in generate(cfg, Manifest()) for line in batch]
    odd = [flat(quantity=2**60), flat(quantity=2**53 + 1), flat(quantity=1e300),
           flat(quantity=True), flat(quantity=0), flat(quantity=-0.0), flat(dimensions=None),
           flat(dimensions={"a": None, "b": 1.5}), flat(dimensions={}), flat(id=" "),
           flat(id=None), cloud(quantity=0.0), flat(meter=7), flat(time=""), flat(time=None),
           flat(specversion=None), flat(specversion="1.0"), flat(data="x"), flat(subject=3),
           cloud(dimensions=None), cloud(meter=None), cloud().replace(b'"1.0"', b'"1.1"'),
           cloud().replace(b'"data":{', b'"data":null,"x":{'),
           b'{"id":"a","id":"b","tenant":"t","meter":"m","quantity":1,"time":"%s"}' % T.encode(),
           b' ' + flat() + b' ', b'\xef\xbb\xbf' + flat(), flat() + b'x', flat()[:-1],
           # bad UTF-8 or escapes in a field the quick decoder skips: the rule refuses them
           flat()[:-1] + b',"x":"\xff"}', flat()[:-1] + b',"\xff":1}',
           flat()[:-1] + b',"x":"\\ud800"}', flat()[:-1] + b',"x":"a\x01"}',
           flat(tenant="caf\u00e9"),
           # a repeated field (the last one counts in both), a key spelled with an escape
           flat()[:-1] + b',"quantity":"x"}', flat()[:-1] + b',"quantity":5}',
           flat(quantity="x")[:-1] + b',"quantity":5}', flat(id=...)[:-1] + b',"\\u0069d":"e"}']
    quick = 0
    for line in lines + odd:
        fields = _quick_fields(line)
        if fields is not None:  # the common case: the rule must say the same
            assert fields == _record(line), line
            quick += 1
    assert quick > 5_000


def _mutations(rng, lines: list[bytes], n: int):
    """Records near the valid ones: bytes flipped or cut, fields dropped or given odd values."""
    odd = [None, True, 0, -1, 1e308, -0.0, 2**70, "", " ", "\x00", "\ud800", "é", "x" * 300,
           [], {}, {"a": [1, {"b": None}]}, "2026-02-30T00:00:00Z", "0001-01-01T00:00:00Z",
           "2026-11-25T10:00:00.1234567Z", "2026-11-25 10:00:00Z", float("nan"), float("inf")]
    fields = ["id", "tenant", "meter", "quantity", "time", "dimensions", "specversion",
              "subject", "data", "source"]
    for _ in range(n):
        line = rng.choice(lines)
        r = rng.random()
        if r < 0.3:
            b = bytearray(line)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            yield bytes(b)
        elif r < 0.4:
            yield line[:rng.randrange(len(line))]
        else:
            obj = json.loads(line)
            target = obj["data"] if "data" in obj and rng.random() < 0.5 else obj
            for _ in range(rng.randint(1, 3)):
                key = rng.choice(fields)
                if rng.random() < 0.2:
                    target.pop(key, None)
                else:
                    target[key] = rng.choice(odd)
            yield json.dumps(obj).encode("utf-8", "surrogatepass")


def test_mutated_records_never_stop_parsing_and_both_paths_agree():
    from operators.usage.parse import _quick_fields, _record

    rng = random.Random(20261127)
    records = list(_mutations(rng, [flat(), cloud()], 20_000))
    batch, rejects = parse_batch(RawBatch(records, "t", 0, range(len(records))), now_us=T_US,
                                 max_clock_skew_us=0)
    assert len(batch) + len(rejects) == len(records)  # each record accounted for, once
    quick = 0
    for line in records:
        fields = _quick_fields(line)
        if fields is not None:
            assert fields == _record(line), line
            quick += 1
    assert 1_000 < quick < len(records)
