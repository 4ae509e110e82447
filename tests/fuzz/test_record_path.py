"""Property-based fuzzing of the record path: parse, then admission (windows, dedupe).

The property: nothing raises, and every input line is an event or a dead letter with
its raw bytes kept whole (events + dead letters + duplicates == lines).

A short run is part of the suite. The long run (README, "Fuzzing the record path"):

    BURNWATCH_FUZZ=long nice -n 10 .venv/bin/python -m pytest -q -p no:cacheprovider tests/fuzz

(5,000 examples per test; ``bench/fuzz_long.sh MINUTES`` repeats it for that long.)
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operators.records import RawBatch, Reason, to_us
from operators.usage.admission import Admission, AdmissionConfig
from operators.usage.parse import RecordLimits, parse_batch
from operators.usage.windows import ReadProgress

settings.register_profile("short", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
# Long: many examples per run; bench/fuzz_long.sh repeats runs for a given time.
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("BURNWATCH_FUZZ", "short"))

NOW_US = to_us(datetime(2026, 11, 25, tzinfo=UTC))
LIMITS = RecordLimits(max_quantity=1e12, max_identifier_length=64)
REASONS = {r.value for r in Reason}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=4),
    max_leaves=20,
)
# Times: valid ones near NOW, the edges of the range, and near-misses of RFC 3339.
times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),  # noqa: DTZ001
                 timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}[Tt ]\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
                  r"([Zz]|[+-]\d{2}:?\d{2})?\Z"),
    st.from_regex(r"\A\d{4}-?W\d{2}(-?\d)?(T\d{2})?Z?\Z"),
    st.text(max_size=30),
    json_values,
)
identifiers = st.one_of(st.sampled_from(["acme", "globex", "A\u030a", "\u00c5", "\u212b"]),
                        st.text(max_size=80), json_values)
quantities = st.one_of(st.floats(), st.integers(), st.sampled_from([1e25, 1e308, 1e12, 2**53 + 1]),
                       json_values)


@st.composite
def events(draw) -> bytes:
    flat = {"id": draw(st.text(min_size=1, max_size=6)), "tenant": draw(identifiers),
            "meter": draw(identifiers), "quantity": draw(quantities), "time": draw(times),
            "dimensions": draw(st.dictionaries(identifiers.filter(lambda v: isinstance(v, str)),
                                               identifiers, max_size=3) | json_values)}
    for key in draw(st.lists(st.sampled_from(sorted(flat)), max_size=2, unique=True)):
        del flat[key]
    if draw(st.booleans()):
        data = {k: flat.pop(k) for k in ("meter", "quantity", "dimensions") if k in flat}
        flat = {"specversion": draw(st.sampled_from(["1.0", "0.3"])), "type": "usage",
                "source": "gw", "subject": flat.pop("tenant", None), **flat, "data": data}
    return _dumps(flat, draw(st.booleans()))


def _dumps(value: object, ascii_only: bool = True) -> bytes:
    # The stdlib writes what orjson will not (NaN, long integers, lone surrogates).
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _mutate(raw: bytes, cut: int, junk: bytes) -> bytes:
    return raw[:cut % (len(raw) + 1)] + junk + raw[cut % (len(raw) + 1):]


lines = st.one_of(
    events(),
    st.builds(_mutate, events(), st.integers(0, 400), st.binary(max_size=8)),
    st.binary(max_size=200),
    json_values.map(_dumps),
    st.integers(1, 3000).map(lambda n: b'{"x": ' + b"[" * n + b"]" * n + b"}"),
)


def _admission() -> Admission:
    return Admission(AdmissionConfig(window_us=60_000_000, allowed_lateness_us=300_000_000,
                                     max_lateness_us=7 * 86_400_000_000,
                                     dedupe_horizon_us=48 * 3_600_000_000, window_shards=2))


@settings(max_examples=settings().max_examples)
@given(st.lists(lines, min_size=1, max_size=30))
def test_every_line_becomes_an_event_or_a_dead_letter(batch_lines):
    raw = RawBatch(batch_lines, "fuzz", 0, range(1, len(batch_lines) + 1))
    batch, dead = parse_batch(raw, now_us=NOW_US, max_clock_skew_us=600_000_000, limits=LIMITS)
    assert len(batch) + len(dead) == len(batch_lines)
    for d in dead:
        assert d.reason in REASONS
        assert d.raw == batch_lines[d.offset - 1]  # raw bytes kept whole, at the right line
    if len(batch):
        assert (batch.quantity <= LIMITS.max_quantity).all()
    admission = _admission()
    read = ReadProgress(0, 1, int(batch.time_us.max()) if len(batch) else -(2**62), True)
    out = admission.admit(batch, read, NOW_US)
    assert out.accepted + out.duplicates + len(out.dead_letters) == len(batch)
    assert {d.reason for d in out.dead_letters} <= REASONS
