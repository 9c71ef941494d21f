"""Parity runner for the TypeScript golden test (test/unit/declarative-parity.test.ts):
`python -m tributary_features.parity DIR` reads DIR/manifest.json (cases: definitions file, Avro
schema file, events JSON, optional `functions`: plugin feature function name -> '/abs/file.py:function'),
computes each case and writes DIR/<case>.bin (float64 little-endian,
row-major) and DIR/result.json (hashes, names, tzdb version). Events encode non-finite numbers and
-0 as {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"} (JSON has no literal for them)."""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from .featureset import load_feature_set

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


def _hook(o):
    if len(o) == 1 and "$num" in o:
        return _SPECIAL[o["$num"]]
    return o


def main(argv=None) -> int:
    d = (argv or sys.argv[1:])[0]
    with open(os.path.join(d, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    result = {"cases": [], "tzdb": None, "numpy": np.__version__}
    for case in manifest["cases"]:
        with open(os.path.join(d, case["schema"]), encoding="utf-8") as f:
            schema = json.load(f)
        with open(os.path.join(d, case["events"]), encoding="utf-8") as f:
            events = json.load(f, object_hook=_hook)
        fs = load_feature_set(os.path.join(d, case["definitions"]), schema, case.get("functions"))
        X = fs.compute(events)
        X.astype("<f8").tofile(os.path.join(d, case["out"]))
        result["tzdb"] = fs.tzdb
        result["cases"].append({"hash": fs.hash, "names": fs.names, "rows": int(X.shape[0])})
    with open(os.path.join(d, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
