"""Checks of one field of a record, shared by the record shapes and meter definitions.

Each returns the checked value or a :class:`Rejection` naming the reason; none raises.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from operators.records import Reason

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


class Rejection(NamedTuple):
    reason: Reason
    detail: str


@dataclass(frozen=True)
class RecordLimits:
    """What a record may hold (settings ``max_quantity``, ``max_identifier_length``).

    Why ``max_quantity`` (at most 1e15) makes overflow impossible: a window sums at most
    2**63 events, so a float64 sum stays below 1e15 * 2**63 < 1e35, far from 1.8e308;
    pricing bounds unit prices (``operators.spend.pricing.MAX_UNIT_PRICE``) so that a
    row's cost fits decimal(38, 9), see there.
    """

    max_quantity: float = 1e12
    max_identifier_length: int = 256


DEFAULT_LIMITS = RecordLimits()


def identifier(value: str, what: str, max_length: int) -> str | Rejection:
    """``value`` as an identifier (NFC, no control characters, bounded length)."""
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    if _CONTROL.search(value):
        return Rejection(Reason.INVALID_FIELD, f"{what} has a control character")
    if len(value) > max_length:
        return Rejection(Reason.INVALID_FIELD, f"{what} is longer than {max_length} characters")
    return value


def quantity(value: object, max_quantity: float) -> float | Rejection:
    if value is None:
        return Rejection(Reason.MISSING_FIELD, "quantity is missing")
    # bool is an int subclass; true is not a quantity
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection(Reason.INVALID_QUANTITY, "quantity is not a number")
    try:
        q = float(value)
    except OverflowError:
        return Rejection(Reason.INVALID_QUANTITY, "quantity is out of range")
    if not math.isfinite(q):
        return Rejection(Reason.INVALID_QUANTITY, "quantity is not finite")
    if q < 0:
        return Rejection(Reason.INVALID_QUANTITY, "quantity is negative")
    if q > max_quantity:
        return Rejection(Reason.INVALID_QUANTITY,
                         f"quantity is above max_quantity ({max_quantity:g})")
    return q
