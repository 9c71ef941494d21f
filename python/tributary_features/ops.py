"""Run-time functions whose semantics are pinned in SEMANTICS.md (twins of
src/features/declarative/runtime.ts): floored modulo, NaN-propagating min/max, bucketize,
MurmurHash3 x86 32 of UTF-8 bytes, and calendar parts in an IANA zone from the pinned tzdata."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Optional

import numpy as np

MIN_TIME_MS = -62135510400000  # 0001-01-02T00:00:00Z (a day inside datetime's range, for any offset)
MAX_TIME_MS = 253402214399999  # 9999-12-30T23:59:59.999Z
MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def fmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Floored modulo: fmod, then + b where the signs differ (result has the sign of b)."""
    r = np.fmod(a, b)
    fix = (r != 0) & ((r < 0) != (b < 0))
    return np.where(fix, r + b, r)


def min2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a) | np.isnan(b), np.nan, np.where(b < a, b, a))


def max2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a) | np.isnan(b), np.nan, np.where(b > a, b, a))


def bucketize(edges, x: np.ndarray):
    """Number of edges <= x; NaN -> null (mask)."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), x, side="right").astype(np.float64)
    return idx, np.isnan(x)


def murmur3_32(data: bytes, seed: int = 0) -> int:
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data)
    nblocks = n // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i: 4 * i + 4], "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[4 * nblocks:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def tzdb_version() -> str:
    """IANA version of the pinned tzdata package (e.g. 2025c)."""
    import tzdata  # the pinned package, never the system's zoneinfo

    return tzdata.IANA_VERSION


@lru_cache(maxsize=None)
def zone(name: str):
    """A ZoneInfo read from the tzdata package (pinned), not from the system database."""
    from zoneinfo import ZoneInfo

    if name == "UTC":
        return timezone.utc
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as f:
        return ZoneInfo.from_file(f, key=name)


class ZoneClock:
    """UTC offset (ms) of an instant in a zone, cached per 15 minutes of UTC time like the TypeScript twin."""

    SLICE_MS = 900_000

    def __init__(self, name: str) -> None:
        self.name = name
        self.tz = zone(name)
        self.slices: dict = {}

    def exact(self, t: int) -> int:
        s = t // 1000  # floor to the second (offsets are whole seconds)
        dt = (_EPOCH + timedelta(seconds=s)).astimezone(self.tz)
        return int(dt.utcoffset().total_seconds()) * 1000

    def offset(self, t: int) -> int:
        if self.name == "UTC":
            return 0
        sl = t // self.SLICE_MS
        off = self.slices.get(sl)
        if off is None:
            a = self.exact(sl * self.SLICE_MS)
            b = self.exact(sl * self.SLICE_MS + self.SLICE_MS - 1)
            off = a if a == b else False
            self.slices[sl] = off
        return self.exact(t) if off is False else off

    def local(self, t: float) -> Optional[int]:
        if not (MIN_TIME_MS <= t <= MAX_TIME_MS):  # also False for NaN
            return None
        ti = int(math.floor(t))
        return ti + self.offset(ti)

    def part(self, which: str, t: np.ndarray, null: np.ndarray):
        out = np.zeros(len(t), dtype=np.float64)
        mask = null.copy()
        for i, x in enumerate(t):
            if null[i]:
                continue
            loc = self.local(float(x))
            if loc is None:
                mask[i] = True
                continue
            if which == "hour":
                out[i] = (loc % MS_PER_DAY) // MS_PER_HOUR
            else:
                out[i] = (loc // MS_PER_DAY + 3) % 7
        return out, mask
