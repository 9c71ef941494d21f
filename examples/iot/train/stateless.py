"""The stateless `sensor_base` features for training, from examples/iot/features/sensor_base.yaml.

BaseFeatures computes them with the repository's shared Python package (python/tributary_features,
the same definitions file the extraction stage compiles) when it is importable; otherwise with
`_MirrorV1`, a hand mirror of sensor_base v1 kept only until that package is merged (the golden
test replays the result through the TypeScript pipeline either way, so a drift fails CI).
"""
from __future__ import annotations

import math
import os
import sys
from datetime import datetime, timezone
from typing import Any, Dict, List

import numpy as np

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "python"))

SCHEMA = os.path.join(REPO_ROOT, "examples", "iot", "schemas", "sensor-reading.avsc")
ZONES = ["America/Chicago", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata"]
RATED = {"VX100": 70.0, "VX200": 85.0, "PT7": 60.0}
FIRMWARE = ["3.1.0", "3.2.0", "4.0.1", "4.2.1"]
MODELS = ["VX100", "VX200", "PT7"]
NAMES = ["temperature_c", "temp_headroom_c", "vibration_log", "pressure_kpa", "pressure_missing", "battery_pct", "on_mains",
         "battery_low", "floor", "indoor", "zone_bucket", "fw_3_1_0", "fw_3_2_0", "fw_4_0_1", "fw_4_2_1", "fw_unknown",
         "model_vx100", "model_vx200", "model_pt7", "model_unknown", "local_hour", "local_dow", "on_shift"]


def murmur3_32(data: bytes, seed: int = 0) -> int:
    c1, c2, m = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & m
    n = len(data) // 4
    for i in range(n):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xE6546B64) & m
    tail = data[4 * n:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h


class _MirrorV1:
    """sensor_base v1 by hand (float64; time parts from Python's zoneinfo)."""

    names = NAMES
    set = "sensor_base"
    version = 1

    def __init__(self) -> None:
        from zoneinfo import ZoneInfo
        self.zones = {z: ZoneInfo(z) for z in ZONES}

    def row(self, ev: Dict[str, Any]) -> List[float]:
        temp = min(max(float(ev["temperatureC"]), -50.0), 150.0)
        p, b = ev["pressureKpa"], ev["batteryPct"]
        loc = ev["location"]
        fw = [1.0 if ev["firmware"] == v else 0.0 for v in FIRMWARE]
        fw.append(0.0 if ev["firmware"] in FIRMWARE else 1.0)
        md = [1.0 if ev["deviceModel"] == v else 0.0 for v in MODELS]
        md.append(0.0 if ev["deviceModel"] in MODELS else 1.0)
        zone = self.zones.get(loc["timezone"])
        if zone is not None:
            local = datetime.fromtimestamp(ev["eventTime"] // 1000, tz=timezone.utc).astimezone(zone)
            hour, dow = float(local.hour), float(local.weekday())
        else:
            hour, dow = -1.0, -1.0
        on_shift = 1.0 if (0 <= dow < 5 and 6 <= hour < 22) else 0.0
        return [temp, RATED.get(ev["deviceModel"], 60.0) - temp, math.log1p(float(ev["vibrationMmS"])),
                0.0 if p is None else float(p), 1.0 if p is None else 0.0,
                100.0 if b is None else float(b), 1.0 if b is None else 0.0, 1.0 if (b is not None and b < 15) else 0.0,
                float(loc["floor"]), 1.0 if loc["indoor"] else 0.0, float(murmur3_32(loc["zone"].encode("utf-8")) % 16),
                *fw, *md, hour, dow, on_shift]


class BaseFeatures:
    def __init__(self, definitions_file: str) -> None:
        self.file = definitions_file
        try:
            from tributary_features import load_feature_set  # the shared package (python/), once merged
            self._pkg = load_feature_set(definitions_file, schema=SCHEMA)
            self.names = list(self._pkg.names)
            self.set = self._pkg.set
            self.version = self._pkg.version
            self.impl = f"python/tributary_features (definitions hash {self._pkg.hash}, tzdb {self._pkg.tzdb})"
        except ImportError:
            self._pkg = None
            self._mirror = _MirrorV1()
            self.names = list(self._mirror.names)
            self.set = self._mirror.set
            self.version = self._mirror.version
            self.impl = "examples/iot/train/stateless.py _MirrorV1 (interim hand mirror)"

    def compute(self, events: List[Dict[str, Any]]) -> np.ndarray:
        if self._pkg is not None:
            return np.asarray(self._pkg.compute(events), dtype=np.float64)
        return np.asarray([self._mirror.row(ev) for ev in events], dtype=np.float64).reshape(len(events), len(self.names))
