"""Meter definitions: rules that turn an event into readings (OpenMeter's vocabulary).

A definition names the event ``type`` it takes, an ``aggregation``, a ``value_property``
(a JSONPath into the event's ``data``, or into the whole object for the flat shape), the
dimensions to ``group_by`` and an optional ``filter``. One event can feed several meters;
each meter that takes it yields one reading.

Only a small, exact subset of JSONPath is accepted (``$``, ``.name``, ``['name']``,
``[N]``): it is what meter definitions use, and an expression that could select several
values has no meaning as a reading.

Everything here is pure: :meth:`MeterSet.readings` returns readings or a rejection, and
never raises on an event's content.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from operators.records import Dimensions, Reason
from operators.usage.batch import hash64
from operators.usage.fields import RecordLimits, Rejection, identifier, quantity
from operators.usage.windows import MeterShape

AGGREGATIONS = ("sum", "count", "unique_count", "max", "min", "latest")
ADDITIVE = ("sum", "count", "unique_count")  # rows add up over windows: they can be priced
PRIVATE_PREFIX = "h:"

_MISSING = object()
_SEGMENT = re.compile(
    r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(\d+))\]"""
)
# A decimal number as OpenMeter accepts it in a string value ("12", "0.5", "1e3").
_NUMERIC = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def compile_path(text: str) -> tuple[str | int, ...]:
    """The segments of a JSONPath of the accepted subset; ValueError says what is wrong."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError(f"a JSONPath starting with '$' (got {text!r})")
    segments: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise ValueError(
                f"{text!r}: only $, .name, ['name'] and [N] are supported (at {text[pos:]!r})")
        name, single, double, index = m.groups()
        if index is not None:
            segments.append(int(index))
        else:
            quoted = single if single is not None else double
            segments.append(name if quoted is None else re.sub(r"\\(.)", r"\1", quoted))
        pos = m.end()
    return tuple(segments)


def resolve(obj: object, path: tuple[str | int, ...]) -> object:
    """The value at ``path``, or ``_MISSING``."""
    for seg in path:
        if type(seg) is int:
            if type(obj) is not list or seg >= len(obj):
                return _MISSING
        elif type(obj) is not dict or seg not in obj:
            return _MISSING
        obj = obj[seg]
    return obj


def _scalar_text(value: object) -> str | None:
    """The text of a scalar (strings as is, numbers and booleans as JSON); None otherwise."""
    if type(value) is str:
        return value
    if isinstance(value, bool | int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return orjson.dumps(value).decode()
    return None


def _same(a: object, b: object) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class MeterDef:
    slug: str
    event_type: str
    aggregation: str
    value_path: tuple[str | int, ...] | None  # None for count
    value_text: str | None  # the path as written, for dead-letter details
    group_by: tuple[tuple[str, tuple[str | int, ...]], ...] = ()
    filters: tuple[tuple[tuple[str | int, ...], tuple[object, ...]], ...] = ()
    private: frozenset[str] = frozenset()
    max_groups: int = 1000

    def takes(self, data: object) -> bool:
        for path, allowed in self.filters:
            value = resolve(data, path)
            if value is _MISSING or not any(_same(value, a) for a in allowed):
                return False
        return True


class Reading(tuple):
    """(meter, value, dimensions, value_hash); value_hash is 0 except for unique_count."""

    __slots__ = ()


@dataclass(frozen=True)
class MeterSet:
    """The configured definitions, by event type."""

    by_type: Mapping[str, tuple[MeterDef, ...]]
    dimension_key: bytes | None = None  # HMAC key of private dimensions
    tenant_path: tuple[str | int, ...] | None = None  # the tenant from data, not subject

    def tenant(self, data: object, max_length: int) -> str | Rejection:
        """The tenant at ``tenant_path`` in the event's data (setting ``tenant_property``)."""
        raw = resolve(data, self.tenant_path)
        text = _scalar_text(raw) if type(raw) is not bool else None
        if raw is _MISSING or raw is None or text == "" or (text and text.isspace()):
            return Rejection(Reason.MISSING_FIELD, "the tenant property is missing or empty")
        if text is None:
            return Rejection(Reason.INVALID_FIELD, "the tenant property is not a string or number")
        return identifier(text, "tenant", max_length)

    @property
    def definitions(self) -> list[MeterDef]:
        return [d for defs in self.by_type.values() for d in defs]

    def shapes(self) -> dict[str, MeterShape]:
        return {d.slug: MeterShape(d.aggregation, d.max_groups if d.group_by else None)
                for d in self.definitions}

    def aggregation_of(self, slug: str) -> str:
        for d in self.definitions:
            if d.slug == slug:
                return d.aggregation
        return "sum"

    def readings(self, event_type: object, data: object,
                 limits: RecordLimits) -> list[Reading] | Rejection | None:
        """The readings of one event; None when no definition takes its type (the caller
        may read it in the legacy shape). A definition that takes the event but cannot read
        it rejects the whole event: no partial readings of one record."""
        defs = self.by_type.get(event_type) if type(event_type) is str else None
        if not defs:
            return None
        out: list[Reading] = []
        for d in defs:
            if not d.takes(data):
                continue
            r = self._reading(d, data, limits)
            if type(r) is Rejection:
                return r
            out.append(r)
        if not out:
            return Rejection(Reason.NO_METER,
                             f"no meter's filter takes this {event_type[:64]!r} event")
        return out

    def _reading(self, d: MeterDef, data: object, limits: RecordLimits) -> Reading | Rejection:
        value_hash = 0
        if d.aggregation == "count":
            value = 1.0
        else:
            raw = resolve(data, d.value_path)
            if raw is _MISSING or raw is None:
                return Rejection(Reason.MISSING_PROPERTY,
                                 f"meter {d.slug!r}: {d.value_text} is missing or null")
            if d.aggregation == "unique_count":
                text = _scalar_text(raw)
                if text is None:
                    return Rejection(Reason.INVALID_FIELD,
                                     f"meter {d.slug!r}: {d.value_text} is not a scalar")
                value, value_hash = 1.0, hash64(text.encode()) or 1  # 0 marks "no value"
            else:
                if type(raw) is str and _NUMERIC.fullmatch(raw.strip()):
                    raw = float(raw)
                value = quantity(raw, limits.max_quantity)
                if type(value) is Rejection:
                    return Rejection(value.reason, f"meter {d.slug!r}: {d.value_text}: "
                                                   f"{value.detail}")
        dims = self._dimensions(d, data, limits)
        if type(dims) is Rejection:
            return dims
        return Reading((d.slug, value, dims, value_hash))

    def _dimensions(self, d: MeterDef, data: object,
                    limits: RecordLimits) -> Dimensions | Rejection:
        if not d.group_by:
            return ()
        pairs = []
        for name, path in d.group_by:
            raw = resolve(data, path)
            if raw is _MISSING or raw is None:
                continue  # left out of the map: dimensions[name] is NULL in SQL
            text = _scalar_text(raw)
            if text is None:
                return Rejection(Reason.INVALID_FIELD,
                                 f"meter {d.slug!r}: group_by {name!r} is not a scalar")
            text = identifier(text, f"group_by {name!r}", limits.max_identifier_length)
            if type(text) is Rejection:
                return text
            if name in d.private:
                text = self._private(text)
            pairs.append((name, text))
        return tuple(sorted(pairs))

    def _private(self, text: str) -> str:
        digest = hmac.new(self.dimension_key or b"", text.encode(), hashlib.sha256).hexdigest()
        return PRIVATE_PREFIX + digest[:32]


def _filters(value: object, where: str) -> tuple:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ValueError(f"{where}: a map of JSONPath to a value or {{in: [values]}}")
    out = []
    for path, want in value.items():
        try:
            compiled = compile_path(path)
        except ValueError as ex:
            raise ValueError(f"{where}.{path}: {ex}") from None
        if isinstance(want, dict):
            if set(want) != {"in"} or not isinstance(want["in"], list) or not want["in"]:
                raise ValueError(f"{where}.{path}: a value, or {{in: [values]}}")
            allowed = tuple(want["in"])
        else:
            allowed = (want,)
        for a in allowed:
            if _scalar_text(a) is None:
                raise ValueError(f"{where}.{path}: filter values must be scalars (got {a!r})")
        out.append((compiled, allowed))
    return tuple(out)


_KEYS = {"slug", "event_type", "aggregation", "value_property", "group_by", "filter",
         "private", "max_groups", "description", "name"}


def meters_from_config(entries: list[dict], max_groups: int = 1000,
                       dimension_key: bytes | None = None,
                       limits: RecordLimits | None = None,
                       tenant_property: str | None = None) -> MeterSet:
    """Build and check the definitions; a ValueError names ``meters[i].key`` (and slug)."""
    tenant_path = None
    if tenant_property is not None:
        try:
            tenant_path = compile_path(tenant_property)
        except ValueError as ex:
            raise ValueError(f"tenant_property: {ex}") from None
    n = (limits or RecordLimits()).max_identifier_length
    by_type: dict[str, list[MeterDef]] = {}
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ValueError(f"meters[{i}]: a map with slug, event_type, aggregation, ...")
        slug = e.get("slug")
        where = f"meters[{i}]" + (f" ({slug})" if isinstance(slug, str) else "")
        unknown = sorted(set(e) - _KEYS)
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key")
        if not isinstance(slug, str) or identifier(slug, "slug", n) != slug or not slug.strip():
            raise ValueError(f"{where}.slug: required, an identifier")
        if slug in seen:
            raise ValueError(f"{where}.slug: {slug!r} is defined twice")
        seen.add(slug)
        event_type = e.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise ValueError(f"{where}.event_type: required (the CloudEvents type)")
        agg = e.get("aggregation")
        if agg not in AGGREGATIONS:
            raise ValueError(f"{where}.aggregation: one of {', '.join(AGGREGATIONS)}")
        value_text = e.get("value_property")
        if agg == "count":
            if value_text is not None:
                raise ValueError(f"{where}.value_property: not used by a count meter")
            value_path = None
        else:
            if value_text is None:
                raise ValueError(f"{where}.value_property: required for {agg}")
            try:
                value_path = compile_path(value_text)
            except ValueError as ex:
                raise ValueError(f"{where}.value_property: {ex}") from None
        group_by = e.get("group_by") or {}
        if not isinstance(group_by, dict):
            raise ValueError(f"{where}.group_by: a map of dimension name to JSONPath")
        groups = []
        for name, path in group_by.items():
            if not isinstance(name, str) or identifier(name, "name", n) != name or not name:
                raise ValueError(f"{where}.group_by: {name!r} is not a dimension name")
            try:
                groups.append((name, compile_path(path)))
            except ValueError as ex:
                raise ValueError(f"{where}.group_by.{name}: {ex}") from None
        private = e.get("private") or []
        if not isinstance(private, list) or any(p not in group_by for p in private):
            raise ValueError(f"{where}.private: a list of group_by names")
        if private and not dimension_key:
            raise ValueError(f"{where}.private: set BURNWATCH_DIMENSION_KEY (the HMAC key of "
                             "private dimensions)")
        limit = e.get("max_groups", max_groups)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{where}.max_groups: a positive integer")
        by_type.setdefault(event_type, []).append(MeterDef(
            slug, event_type, agg, value_path, value_text, tuple(groups),
            _filters(e.get("filter"), f"{where}.filter"), frozenset(private), limit))
    return MeterSet({t: tuple(d) for t, d in by_type.items()}, dimension_key, tenant_path)
