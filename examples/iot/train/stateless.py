"""The stateless `sensor_base` features for training: examples/iot/features/sensor_base.yaml, the
same definitions file the extraction stage compiles, evaluated by the repository's Python package
python/tributary_features (semantics pinned in src/features/declarative/SEMANTICS.md; the IoT parity
test checks both implementations on 10,000 generated readings in every CI run)."""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List

import numpy as np

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "python"))
from tributary_features import load_feature_set  # noqa: E402

SCHEMA = os.path.join(REPO_ROOT, "examples", "iot", "schemas", "sensor-reading.avsc")


class BaseFeatures:
    def __init__(self, definitions_file: str) -> None:
        self.file = definitions_file
        self._fs = load_feature_set(definitions_file, schema=SCHEMA)
        self.names: List[str] = list(self._fs.names)
        self.set: str = self._fs.set
        self.version: int = self._fs.version
        self.hash: str = self._fs.hash
        self.impl = f"python/tributary_features (definitions hash {self._fs.hash}, tzdb {self._fs.tzdb})"

    def compute(self, events: List[Dict[str, Any]]) -> np.ndarray:
        return np.asarray(self._fs.compute(events), dtype=np.float64).reshape(len(events), len(self.names))
