"""Names of state shards that Bytewax spreads evenly over workers.

Bytewax 0.21 gives each key of a keyed step to worker ``h mod W``, where ``h`` is
Rust's ``DefaultHasher`` (SipHash-1-3, zero keys) of the key's UTF-8 bytes and a
0xFF byte, and ``W`` is the number of workers. With a handful of keys that is
lumpy: shards named "0".."15" land 10:6 on two workers, and "0".."3" all on one,
so one worker does most of the keyed work while the other waits.

burnwatch names shard ``s`` "s" or "s.j" (the first ``j`` that works) such that
``h ≡ s (mod 24)``: shard ``s`` then lands on worker ``s mod W`` for every ``W``
that divides 24 (1, 2, 3, 4, 6, 8, 12, 24 workers), so N shards split evenly
whenever W divides N. ``tests/dataflow/test_shard_keys.py`` checks this against
Bytewax itself, so a Bytewax upgrade that routes otherwise fails there.
"""

from __future__ import annotations

from functools import cache

_M64 = (1 << 64) - 1
_SPREAD = 24  # lcm of the worker counts shards are balanced for


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash13(data: bytes) -> int:
    """SipHash-1-3 with zero keys, as Rust's ``DefaultHasher`` computes it."""
    v0, v1 = 0x736F6D6570736575, 0x646F72616E646F6D
    v2, v3 = 0x6C7967656E657261, 0x7465646279746573

    def sip_round() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _M64
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _M64
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _M64
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _M64
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)

    n = len(data)
    whole = n - n % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v3 ^= m
        sip_round()
        v0 ^= m
    last = ((n & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= last
    sip_round()
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        sip_round()
    return v0 ^ v1 ^ v2 ^ v3


def bytewax_worker(key: str, workers: int) -> int:
    """The worker Bytewax 0.21 gives ``key`` in a keyed step."""
    return siphash13(key.encode() + b"\xff") % workers


@cache
def shard_key(shard: int) -> str:
    """The state key of ``shard``: lands on worker ``shard mod W`` for W dividing 24."""
    name, j = str(shard), 0
    while bytewax_worker(name, _SPREAD) != shard % _SPREAD:
        j += 1
        name = f"{shard}.{j}"
    return name


def shard_of(key: str) -> int:
    """The shard number a :func:`shard_key` names."""
    return int(key.partition(".")[0])
