"""Parse raw records (bytes of one JSON object) into a columnar :class:`EventBatch`.

Two shapes are accepted (see DESIGN.md): flat, and CloudEvents 1.0
structured JSON where ``subject`` is the tenant and ``data`` holds meter,
quantity and dimensions. Anything else is a rejection with a
:class:`Reason`, never an exception.

Parsing is the largest cost of the job, so a batch is parsed column-wise:
each record is decoded and checked into column lists (no object per event),
and the time strings of the whole batch are converted at once by Arrow.

Two paths, one rule. Each record is first decoded by msgspec into
:class:`_Shape`, whose field types msgspec checks in C while it decodes, and
given a few quick checks (:func:`_quick_fields`). A record that does not fit
goes through the rule (:func:`_record`: orjson, then :func:`_checked_fields`),
which decides and names the reason. A test requires both to give the same
answer on a generated stream with every kind of bad record.

By contract, whatever one record's content makes the parser raise (a RecursionError
from deep nesting, anything unforeseen) becomes that record's dead letter
``invalid_value``; the other records of the batch are parsed as usual.

Limits (:class:`RecordLimits`, README "Input records"): a quantity is at most
``max_quantity``, a time lies in [1970-01-01, 9999-01-01) UTC, and tenant, meter and
dimension keys and values are identifiers: NFC-normalised, no control characters, at
most ``max_identifier_length`` characters after normalisation.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from operators.records import DeadLetter, RawBatch, Reason, UsageEvent, to_us
from operators.usage.batch import (
    EventBatch,
    content_hashes,
    event_hashes,
    hash64,
    mix,
    pair_hashes,
)
from operators.usage.fields import DEFAULT_LIMITS, RecordLimits, Rejection, identifier, quantity
from operators.usage.meters import MeterSet

_SCALARS = (str, int, float, bool)
_SORTED = orjson.OPT_SORT_KEYS
_NO_DIMENSIONS = b"{}"
_EXACT_INT = 2**53  # an integer quantity up to this is exactly a float

# RFC 3339 as both Arrow and ``datetime.fromisoformat`` read it the same way (checked in
# tests/unit/test_parse.py). Anything else (other separators, >6 fractional digits, year
# 0000, ...) is converted one by one by ``fromisoformat``, which decides.
_RFC3339 = (
    r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_TIMESTAMP_US = pa.timestamp("us", tz="UTC")
# Everything RFC 3339 (section 5.6) allows: "t" and "z" in either case, any number of
# fractional digits (kept to the microsecond). Not ISO 8601's other forms (week dates,
# basic format, hour-only times, a space for "T"), which ``fromisoformat`` would read.
_RFC3339_ANY = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6})\d*)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
# The event-time range. The floor keeps every watermark, window and month computed from
# an event (its time minus max_lateness, at most a few years) inside what ``datetime``
# can hold; the ceiling keeps a window's end there.
MIN_TIME_US = to_us(datetime(1970, 1, 1, tzinfo=UTC))
MAX_TIME_US = to_us(datetime(9999, 1, 1, tzinfo=UTC))


def _text(obj: dict, key: str, max_length: int | None = None) -> str | Rejection:
    value = obj.get(key)
    if type(value) is str and value and not value.isspace():
        return value if max_length is None else identifier(value, key, max_length)
    if value is None or value == "":
        return Rejection(Reason.MISSING_FIELD, f"{key} is missing or empty")
    if not isinstance(value, str):
        return Rejection(Reason.INVALID_FIELD, f"{key} must be a string")
    return Rejection(Reason.MISSING_FIELD, f"{key} is blank")


def _time_text(value: object) -> str | Rejection:
    if value is None or value == "":
        return Rejection(Reason.MISSING_FIELD, "time is missing")
    if not isinstance(value, str):
        return Rejection(Reason.INVALID_TIME, "time must be an RFC 3339 string")
    return value


def _time_us(text: str) -> int | Rejection:
    m = _RFC3339_ANY.fullmatch(text)
    if m is None:
        return Rejection(Reason.INVALID_TIME, "time is not RFC 3339 with an offset")
    date, clock, fraction, offset = m.groups()
    offset = "+00:00" if offset in "Zz" else offset
    try:
        dt = datetime.fromisoformat(f"{date}T{clock}.{(fraction or '').ljust(6, '0')}{offset}")
        us = to_us(dt)
    except (ValueError, OverflowError):
        return Rejection(Reason.INVALID_TIME, "time is not a valid date and time")
    return _in_range(us)


def _in_range(us: int) -> int | Rejection:
    if MIN_TIME_US <= us < MAX_TIME_US:
        return us
    return Rejection(Reason.INVALID_TIME, "time is before 1970-01-01 or after 9998-12-31 UTC")


def _dimensions(value: object, max_length: int) -> bytes | Rejection:
    """Canonical JSON of the dimensions: sorted keys, scalar values as strings, identifiers."""
    if value is None:
        return _NO_DIMENSIONS
    if type(value) is not dict:
        return Rejection(Reason.INVALID_FIELD, "dimensions must be an object")
    flat = {}
    for k, v in value.items():
        if type(v) is not str:
            if v is not None and not isinstance(v, _SCALARS):
                return Rejection(Reason.INVALID_FIELD, f"dimension {k[:64]!r} is not a scalar")
            v = "" if v is None else str(v)
        key = identifier(k, "a dimension key", max_length)
        if type(key) is Rejection:
            return key
        v = identifier(v, f"dimension {key[:64]!r}", max_length) if v else v
        if type(v) is Rejection:
            return v
        if key in flat:  # two spellings of one key: which value wins would be arbitrary
            return Rejection(Reason.INVALID_FIELD, f"dimension {key[:64]!r} is given twice")
        flat[key] = v
    return orjson.dumps(flat, option=_SORTED)


Fields = tuple  # (id, tenant, meter, quantity, time text, canonical dimensions, source)


def _record(raw: bytes, limits: RecordLimits = DEFAULT_LIMITS) -> Fields | Rejection:
    """Decode and check one record: the rule."""
    obj = _decode(raw)
    return obj if type(obj) is Rejection else _checked_fields(obj, limits)


def _decode(raw: bytes) -> dict | Rejection:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as ex:
        # orjson refuses NaN, Infinity and 1e999; the stdlib reads them, so such a record
        # is reported as the bad quantity it is rather than as bad JSON.
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return Rejection(Reason.INVALID_JSON, f"invalid JSON: {ex}"[:200])
        # The stdlib also reads a lone surrogate escape ("\ud800"): a string no UTF-8 can
        # hold, which would break hashing and Parquet later. orjson refused it: so do we.
        try:
            json.dumps(obj, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return Rejection(Reason.INVALID_JSON,
                             f"invalid JSON: a string is not valid Unicode ({ex})"[:200])
    if type(obj) is not dict:
        return Rejection(Reason.INVALID_JSON, "not a JSON object")
    return obj


# gc=False: decoded records hold no cycles, so the cyclic GC need not track them.
class _Body(msgspec.Struct, gc=False):
    """CloudEvents ``data``, as the common case has it."""

    meter: str | None = None
    quantity: float | None = None
    dimensions: dict[str, str] | None = None


class _Shape(msgspec.Struct, gc=False):
    """Both record shapes, with the types of the common case; other fields are skipped.

    ``specversion`` may be absent but not null: the rule tells the two apart.
    """

    id: str | None = None
    tenant: str | None = None
    meter: str | None = None
    quantity: float | None = None
    time: str | None = None
    dimensions: dict[str, str] | None = None
    specversion: str | msgspec.UnsetType = msgspec.UNSET
    subject: str | None = None
    source: str | None = None
    data: _Body | None = None


_decode_shape = msgspec.json.Decoder(_Shape).decode


def _quick_fields(raw: bytes, limits: RecordLimits = DEFAULT_LIMITS) -> Fields | None:
    """The event's fields when the record is of the common case, else None (ask the rule).

    In ASCII without escapes or DEL no string can hold a control character (JSON
    forbids the others raw) or need normalising: only lengths are left to check.
    """
    plain = raw.isascii()
    if not plain:
        try:
            raw.decode()  # msgspec does not check the UTF-8 of the fields it skips
        except UnicodeDecodeError:
            return None
    plain = plain and b"\\" not in raw and b"\x7f" not in raw
    try:
        e = _decode_shape(raw)
    except (ValueError, RecursionError):  # not the common case (or not JSON): the rule says
        return None
    if e.specversion is msgspec.UNSET:
        tenant, body = e.tenant, e
    elif e.specversion == "1.0" and e.data is not None:
        tenant, body = e.subject, e.data
    else:
        return None
    eid, meter, q, t = e.id, body.meter, body.quantity, e.time
    n = limits.max_identifier_length
    if (
        # Beyond 2**53 the rule decides: a long integer literal must round as Python's does.
        eid and tenant and meter and t and q is not None
        and 0 <= q <= _EXACT_INT and q <= limits.max_quantity
        and len(tenant) <= n and len(meter) <= n
        and not (eid.isspace() or tenant.isspace() or meter.isspace())
    ):
        d = body.dimensions
        if plain:
            if d is None:
                return eid, tenant, meter, q, t, _NO_DIMENSIONS, e.source or ""
            dims = orjson.dumps(d, option=_SORTED)
            # Each key and value is shorter than the whole object: mostly one len() suffices.
            if len(dims) <= n or all(len(k) <= n and len(v) <= n for k, v in d.items()):
                return eid, tenant, meter, q, t, dims, e.source or ""
            return None
        # The rule's own checks; if one refuses, the rule names the reason.
        tenant, meter = identifier(tenant, "tenant", n), identifier(meter, "meter", n)
        dims = _dimensions(d, n)
        if Rejection not in (type(tenant), type(meter), type(dims)):
            return eid, tenant, meter, q, t, dims, e.source or ""
    return None


def _checked_fields(obj: dict, limits: RecordLimits) -> Fields | Rejection:
    if "specversion" in obj:
        if obj["specversion"] != "1.0":
            return Rejection(Reason.INVALID_FIELD, "specversion must be 1.0")
        body = obj.get("data")
        if not isinstance(body, dict):
            return Rejection(Reason.INVALID_FIELD, "CloudEvents data must be a JSON object")
        tenant = _text(obj, "subject", limits.max_identifier_length)
    else:
        body = obj
        tenant = _text(obj, "tenant", limits.max_identifier_length)
    parts = (
        _text(obj, "id"),
        tenant,
        _text(body, "meter", limits.max_identifier_length),
        quantity(body.get("quantity"), limits.max_quantity),
        _time_text(obj.get("time")),
        _dimensions(body.get("dimensions"), limits.max_identifier_length),
        _source(obj),
    )
    for part in parts:
        if type(part) is Rejection:
            return part
    return parts


def _source(obj: dict) -> str | Rejection:
    """The event's ``source``: with its id, the identity of an event (CloudEvents)."""
    value = obj.get("source")
    if value is None:
        return ""
    if type(value) is not str:
        return Rejection(Reason.INVALID_FIELD, "source must be a string")
    return value


def identities(id_hashes: list[int], source_codes: list[int], sources: dict[str, int]
               ) -> np.ndarray:
    """The dedupe keys of a batch: (source, id), as CloudEvents defines identity. An event
    without a source keeps the hash of its id alone."""
    ids = np.asarray(id_hashes, dtype=np.uint64)
    if len(sources) == 1 and "" in sources:
        return ids
    by_code = np.array([hash64(src.encode()) if src else 0 for src in sources],
                       dtype=np.uint64)
    src = by_code[np.asarray(source_codes, dtype=np.int64)]
    return np.where(src != 0, mix(ids ^ src), ids)


Reading = tuple  # (meter, value, dimensions, canonical dimensions bytes, value hash)
Metered = tuple  # (id, tenant, time text, source, [Reading, ...])


def _metered(raw: bytes, limits: RecordLimits, meters: MeterSet) -> Metered | Rejection:
    """Decode one record and read it by the meter definitions (the legacy shape when no
    definition takes its type and it names a ``meter``)."""
    obj = _decode(raw)
    if type(obj) is Rejection:
        return obj
    cloud = "specversion" in obj
    if cloud and obj["specversion"] != "1.0":
        return Rejection(Reason.INVALID_FIELD, "specversion must be 1.0")
    data = obj.get("data") if cloud else obj
    event_type = obj.get("type")
    readings = meters.readings(event_type, data, limits)
    if readings is None:
        legacy = isinstance(data, dict) and "meter" in data
        if not legacy:
            what = f"type {event_type[:64]!r}" if type(event_type) is str else "no type"
            return Rejection(Reason.NO_METER, f"no meter takes this event ({what})")
        fields = _checked_fields(obj, limits) if meters.tenant_path is None else \
            _checked_fields({**obj, "subject": "-", "tenant": "-"}, limits)
        if type(fields) is Rejection:
            return fields
        eid, tenant, meter, q, t, dims, source = fields
        if meters.tenant_path is not None:
            tenant = meters.tenant(data, limits.max_identifier_length)
            if type(tenant) is Rejection:
                return tenant
        return eid, tenant, t, source, [(meter, q, (), dims, 0)]
    if type(readings) is Rejection:
        return readings
    n = limits.max_identifier_length
    if meters.tenant_path is not None:
        tenant = meters.tenant(data, n)
    else:
        tenant = _text(obj, "subject", n) if cloud else _text(obj, "tenant", n)
    head = (_text(obj, "id"), tenant, _time_text(obj.get("time")), _source(obj))
    for part in head:
        if type(part) is Rejection:
            return part
    return (*head, [(m, q, dims, _dims_bytes(dims), vh) for m, q, dims, vh in readings])


def _dims_bytes(dims: tuple) -> bytes:
    return orjson.dumps(dict(dims)) if dims else _NO_DIMENSIONS


def times_us(texts: list[str]) -> tuple[np.ndarray, dict[int, Rejection]]:
    """Convert a batch's time strings: Arrow for plain RFC 3339, ``fromisoformat`` otherwise.

    Returns µs since the epoch (0 where the text is not a time) and the rejections by index.
    """
    out = np.zeros(len(texts), dtype=np.int64)
    bad: dict[int, Rejection] = {}
    arr = pa.array(texts, pa.string())
    plain = np.asarray(pc.match_substring_regex(arr, _RFC3339), dtype=bool)
    idx = np.flatnonzero(plain)
    try:
        out[idx] = pc.take(arr, idx).cast(_TIMESTAMP_US).cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:  # a date that does not exist (30 February): decide one by one
        plain[:] = False
    else:
        early = idx[(out[idx] < MIN_TIME_US) | (out[idx] >= MAX_TIME_US)]
        plain[early] = False  # one by one, for the reason
        out[early] = 0
    for i in np.flatnonzero(~plain).tolist():
        us = _time_us(texts[i])
        if type(us) is Rejection:
            bad[i] = us
        else:
            out[i] = us
    return out, bad


def parse_event(raw: bytes, limits: RecordLimits = DEFAULT_LIMITS) -> UsageEvent | Rejection:
    """Parse one record on its own (the batch path decides the same way)."""
    fields = _record(raw, limits)
    if type(fields) is Rejection:
        return fields
    eid, tenant, meter, q, t, dims, _source = fields
    us, bad = times_us([t])
    if bad:
        return bad[0]
    return UsageEvent(eid, tenant, meter, q, int(us[0]),
                      tuple(sorted(orjson.loads(dims).items())))


def parse_batch(
    raw: RawBatch, *, now_us: int, max_clock_skew_us: int,
    limits: RecordLimits = DEFAULT_LIMITS, meters: MeterSet | None = None,
) -> tuple[EventBatch, list[DeadLetter]]:
    """Parse a batch; events stamped too far ahead of ``now_us`` are rejected.

    ``now_us`` is the wall clock when the batch was read: a gap in traffic
    does not make the next event a future one. Dead letters are in read order, one
    per record. With ``meters``, records are read by the meter definitions (one event
    may give several readings, see operators/usage/batch.py).
    """
    lines = raw.lines
    rejected: list[tuple[int, Rejection]] = []
    keep: list[int] = []  # per reading: its line
    ids: list[int] = []
    codes: list[int] = []
    qty: list[float] = []
    times: list[str] = []
    dims: list[int] = []
    lead: list[bool] = []  # with meters only: without, every reading is its event's
    values: list[int] = []
    source_codes: list[int] = []
    sources: dict[str, int] = {"": 0}
    keys: dict[tuple, int] = {}  # (tenant, meter, dimensions) -> code, per batch
    for i, line in enumerate(lines):
        try:
            if meters is None:
                fields = _quick_fields(line, limits) or _record(line, limits)
            else:
                fields = _metered(line, limits, meters)
        except Exception as ex:  # by contract: what a record's content raises is its dead letter
            fields = Rejection(Reason.INVALID_VALUE, f"{type(ex).__name__}: {ex}"[:200])
        if type(fields) is Rejection:
            rejected.append((i, fields))
            continue
        if meters is None:
            eid, tenant, meter, q, t, d, source = fields
            keep.append(i)
            ids.append(hash64(eid.encode()))
            source_codes.append(sources.setdefault(source, len(sources)))
            codes.append(keys.setdefault((tenant, meter, ()), len(keys)))
            qty.append(q)
            times.append(t)
            dims.append(hash64(d))
            continue
        eid, tenant, t, source, readings = fields
        key = hash64(eid.encode())
        source_code = sources.setdefault(source, len(sources))
        first = True
        for meter, q, dim_key, d, value_hash in readings:
            keep.append(i)
            ids.append(key)
            source_codes.append(source_code)
            codes.append(keys.setdefault((tenant, meter, dim_key), len(keys)))
            qty.append(q)
            times.append(t)
            dims.append(hash64(d))
            lead.append(first)
            values.append(value_hash)
            first = False

    time_us, bad_times = times_us(times)
    # The readings of one event share its time: one dead letter, for its lead reading.
    if meters is None:
        lead = [True] * len(keep)
        values = [0] * len(keep)
    rejected.extend((keep[j], r) for j, r in bad_times.items() if lead[j])
    ahead = time_us > now_us + max_clock_skew_us
    ahead[list(bad_times)] = False  # one dead letter per line
    for j in np.flatnonzero(ahead).tolist():
        if lead[j]:
            rejected.append((keep[j], Rejection(
                Reason.FUTURE_TIMESTAMP,
                f"time is {(time_us[j] - now_us) / 1e6:.0f}s ahead of the clock")))
    good = ~ahead
    good[list(bad_times)] = False
    sel = slice(None) if good.all() else np.flatnonzero(good)

    rejected.sort(key=lambda r: r[0])
    offsets = raw.offsets
    dead = [
        DeadLetter(now_us, r.reason.value, r.detail, bytes(lines[i]), raw.source,
                   raw.partition, offsets[i])
        for i, r in rejected
    ]
    kept = np.asarray(keep, dtype=np.int64)[sel]
    code = np.asarray(codes, dtype=np.int64)[sel]
    quantity_ = np.asarray(qty, dtype=np.float64)[sel]
    time_us = time_us[sel]
    leads = np.asarray(lead, dtype=bool)[sel]
    key_list = list(keys)
    key_hash = pair_hashes(key_list)
    content = content_hashes(key_hash, code, quantity_, time_us,
                             np.asarray(dims, dtype=np.uint64)[sel])
    if not leads.all():
        content = event_hashes(content, leads)
    return EventBatch(
        keys=key_list,
        key_hash=key_hash,
        key_code=code,
        quantity=quantity_,
        time_us=time_us,
        seen_max_us=np.maximum.accumulate(time_us),
        id_hash=identities(ids, source_codes, sources)[sel],
        content_hash=content,
        row=kept,
        lead=leads,
        value_hash=np.asarray(values, dtype=np.uint64)[sel],
        lines=lines,
        positions=_positions(offsets),
        source=raw.source,
        partition=raw.partition,
    ), dead


def _positions(offsets) -> np.ndarray:
    if isinstance(offsets, range):  # file line numbers, contiguous Kafka offsets
        return np.arange(offsets.start, offsets.stop, offsets.step, dtype=np.int64)
    return np.asarray(offsets, dtype=np.int64)
