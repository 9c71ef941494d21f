#!/usr/bin/env python3
"""Train the IoT example's anomaly model, sensor_anomaly version 1, from the example's ONE seeded
generator (examples/iot/generator.ts; its JSON-lines output is read here, never re-implemented).

Run through examples/iot/train.sh (same pinned venv/toolchain as models/train, scripts/train-model.sh).

Vector (set `sensor_online` v1, in this order; mirrors examples/iot/topology.yaml, which the golden
test replays through the real pipeline code):
  - stateless `sensor_base` v1: examples/iot/features/sensor_base.yaml (declarative definitions,
    computed by python/tributary_features: the file the extraction stage compiles)
  - batch set `device_profile` (entity deviceId) and `site_climate` (entity siteId): tables derived
    here from the generator's fleet, written beside the model (features/*.csv|jsonl) and loaded by the
    demo/tests with the same loader as `tributary features load`
  - streaming set `device_activity` (entity deviceId): windowed aggregations with the semantics of
    src/features/streaming.ts (an event at t sees the entity's earlier-applied, not-late events with
    event time in the window ending at t, at the set's bucket resolution R = 60 s; sliding windows
    [floor(t/R)*R + R - size, t]; sums exact (math.fsum); values cross Redis as shortest decimals).
Training streams are sessions of --session readings with fresh streaming state, like a demo run.

Writes examples/iot/models/sensor_anomaly/1/{model.onnx, model.json, golden.jsonl, confidence.jsonl,
features/device_profile.csv, features/site_climate.jsonl}. gate.json is hand-written (kept).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.dirname(HERE)
REPO_ROOT = os.path.abspath(os.path.join(EXAMPLE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "models", "train"))
from stateless import BaseFeatures  # noqa: E402

GENERATOR_JS = os.path.join(REPO_ROOT, "dist-examples", "examples", "iot", "generate.js")
DEFINITIONS = os.path.join(EXAMPLE, "features", "sensor_base.yaml")
VECTOR_SET = "sensor_online"
VECTOR_VERSION = 1
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
BUCKET_MS = 60_000
# 2026-01-05T00:00:00Z: the generator's DEFAULT_START_TIME; the golden stream starts there and the
# batch files are dated the day before (the demo re-dates them to the day before its run).
GOLDEN_START = 1767571200000
AS_OF = GOLDEN_START - DAY

# Batch-job parameters (synthetic "maintenance system" and "facilities" outputs).
BATCH = {"seed": 4242, "asOf": AS_OF, "deviceMissingRate": 0.03, "tempNoiseC": 0.8, "vibrationNoise": 0.1}

# Mirror of examples/iot/topology.yaml `features.sets` (the golden test catches any drift).
DEVICE_PROFILE = {"name": "device_profile", "version": 1, "entity": "deviceId", "stalenessMs": 30 * DAY,
                  "fields": [("device_age_days", "long", 0), ("days_since_service", "long", 0),
                             ("baseline_temp_offset_c", "double", 0.0), ("baseline_vibration_mm_s", "double", 0.0),
                             ("baseline_pressure_kpa", "double", 0.0)],
                  "missingIndicator": "device_profile_missing"}
SITE_CLIMATE = {"name": "site_climate", "version": 1, "entity": "siteId", "stalenessMs": 30 * DAY,
                "fields": [("site_ambient_c", "double", 20.0), ("site_ambient_swing_c", "double", 0.0)],
                "missingIndicator": "site_climate_missing"}
DEVICE_ACTIVITY = {"name": "device_activity", "version": 1, "entity": "deviceId", "allowedLatenessMs": HOUR,
                   "fields": [
                       # name, type, default, aggregation, of, window size (sliding)
                       ("dev_readings_1h", "long", 0, "count", None, HOUR),
                       ("dev_temp_mean_1h", "double", 0.0, "mean", "temperature_c", HOUR),
                       ("dev_temp_max_15m", "double", 0.0, "max", "temperature_c", 15 * MIN),
                       ("dev_vibration_max_15m", "double", 0.0, "max", "vibration_log", 15 * MIN),
                       ("dev_ms_since_prev", "long", -1, "time_since_prev", None, DAY),
                   ]}


def generate(out: str, seed: int, sessions: int, session_events: int, fleet_out: Optional[str] = None, start: Optional[int] = None) -> List[Dict[str, Any]]:
    """Runs the TypeScript generator (compiled by train.sh) and reads its JSON lines."""
    cmd = ["node", GENERATOR_JS, "--out", out, "--seed", str(seed), "--sessions", str(sessions), "--session-events", str(session_events)]
    if start is not None:
        cmd += ["--start", str(start)]
    if fleet_out:
        cmd += ["--fleet-out", fleet_out]
    subprocess.run(cmd, check=True)
    with open(out, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Mulberry32:
    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFF

    def next(self) -> float:
        self.state = (self.state + 0x6D2B79F5) & 0xFFFFFFFF
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296.0

    def normal(self) -> float:
        u1 = 1 - self.next()
        u2 = self.next()
        return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def _imul(a: int, b: int) -> int:
    return (a * b) & 0xFFFFFFFF


def batch_tables(fleet: List[Dict[str, Any]]) -> Tuple[Dict[str, Dict[str, float]], Dict[str, Dict[str, float]]]:
    """What the maintenance system and the facilities team know: noisy device baselines (some devices
    missing), site climate. Derived from the generator's fleet, seeded."""
    rng = Mulberry32(BATCH["seed"])
    devices: Dict[str, Dict[str, float]] = {}
    sites: Dict[str, Dict[str, float]] = {}
    for d in fleet:
        missing = rng.next() < BATCH["deviceMissingRate"]
        temp = round(d["tempOffsetC"] + BATCH["tempNoiseC"] * rng.normal(), 2)
        # The baseline is measured through the unit's own firmware (3.1.0 over-reports by 60%).
        vib = round(d["vibrationMmS"] * (1.6 if d["firmware"] == "3.1.0" else 1.0) * math.exp(BATCH["vibrationNoise"] * rng.normal()), 3)
        if not missing:
            devices[d["deviceId"]] = {"device_age_days": d["ageDays"], "days_since_service": d["daysSinceService"],
                                      "baseline_temp_offset_c": temp, "baseline_vibration_mm_s": vib,
                                      # 0 for units without a pressure probe (their readings carry null pressure)
                                      "baseline_pressure_kpa": round(d["pressureKpa"] + 2 * rng.normal(), 1) if d["pressureKpa"] is not None else 0.0}
        s = d["site"]
        sites[s["siteId"]] = {"site_ambient_c": float(s["ambientC"]), "site_ambient_swing_c": float(s["ambientSwingC"])}
    return devices, sites


def write_tables(out_dir: str, devices: Dict[str, Dict[str, float]], sites: Dict[str, Dict[str, float]]) -> None:
    d = os.path.join(out_dir, "features")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "device_profile.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["deviceId", "ts"] + [n for n, _, _ in DEVICE_PROFILE["fields"]])
        for k, v in devices.items():
            w.writerow([k, AS_OF] + [num(v[n]) for n, _, _ in DEVICE_PROFILE["fields"]])
    with open(os.path.join(d, "site_climate.jsonl"), "w", encoding="utf-8") as f:
        for k, v in sites.items():
            f.write(json.dumps({"siteId": k, "ts": AS_OF, **v}) + "\n")


def num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def repr_num(x: float) -> float:
    """Values cross Redis as JavaScript's shortest round-trip decimal strings; Python's repr is the same double."""
    return float(repr(float(x)))


class OnlineFeatures:
    """base + batch lookups + streaming aggregations, one event at a time in stream order."""

    def __init__(self, base: BaseFeatures, devices: Dict[str, Dict[str, float]], sites: Dict[str, Dict[str, float]]) -> None:
        self.base = base
        self.tables = {"device_profile": devices, "site_climate": sites}
        self.names = list(base.names)
        for s in (DEVICE_PROFILE, SITE_CLIMATE):
            self.names += [f[0] for f in s["fields"]] + [s["missingIndicator"]]
        self.names += [f[0] for f in DEVICE_ACTIVITY["fields"]]
        self.reset(GOLDEN_START)

    def reset(self, start: int) -> None:
        """A fresh stream whose clock starts at `start`: empty streaming state, batch rows dated the
        UTC midnight before its first day (as the demo re-dates the files: the batch job ran the day before)."""
        self.log: Dict[str, List[Tuple[int, int, bool, Dict[str, float]]]] = {}
        self.seq = 0
        self.as_of = (start // DAY) * DAY - DAY

    def definitions(self) -> Dict[str, Dict[str, Any]]:
        out: Dict[str, Dict[str, Any]] = {n: {"set": self.base.set, "setVersion": self.base.version, "type": "double"} for n in self.base.names}
        for s in (DEVICE_PROFILE, SITE_CLIMATE):
            for name, typ, _ in s["fields"]:
                out[name] = {"set": s["name"], "setVersion": s["version"], "type": typ}
            out[s["missingIndicator"]] = {"set": s["name"], "setVersion": s["version"], "type": "boolean"}
        for f in DEVICE_ACTIVITY["fields"]:
            out[f[0]] = {"set": DEVICE_ACTIVITY["name"], "setVersion": DEVICE_ACTIVITY["version"], "type": f[1]}
        return out

    def _batch(self, s: Dict[str, Any], ev: Dict[str, Any]) -> List[float]:
        row = self.tables[s["name"]].get(ev[s["entity"]])
        if row is not None and ev["eventTime"] - self.as_of > s["stalenessMs"]:
            row = None
        if row is None:
            return [float(d) for _, _, d in s["fields"]] + [1.0]
        return [float(row[n]) for n, _, _ in s["fields"]] + [0.0]

    def _stream(self, ev: Dict[str, Any], base: Dict[str, float]) -> List[float]:
        s = DEVICE_ACTIVITY
        t = ev["eventTime"]
        log = self.log.setdefault(ev[s["entity"]], [])
        max_t = max((e[0] for e in log), default=None)
        late = max_t is not None and t < max_t - s["allowedLatenessMs"]
        out: List[float] = []
        for name, _typ, default, agg, of, size in s["fields"]:
            start = (t // BUCKET_MS) * BUCKET_MS + BUCKET_MS - size
            rows = sorted([e for e in log if not e[2] and start <= e[0] <= t], key=lambda e: (e[0], e[1]))
            if agg == "count":
                v = float(len(rows))
            elif agg == "mean":
                v = math.fsum(e[3][of] for e in rows) / len(rows) if rows else float(default)
            elif agg == "max":
                v = max((e[3][of] for e in rows), default=float(default))
            elif agg == "time_since_prev":
                v = float(t - rows[-1][0]) if rows else float(default)
            else:
                raise ValueError(agg)
            out.append(v + 0.0)
        self.seq += 1
        log.append((t, self.seq, late, {"temperature_c": repr_num(base["temperature_c"]), "vibration_log": repr_num(base["vibration_log"])}))
        return out

    def vectors(self, events: List[Dict[str, Any]]) -> np.ndarray:
        """Vectors of one ordered stream (the caller resets state between streams)."""
        base = self.base.compute(events)
        out = np.empty((len(events), len(self.names)), dtype=np.float64)
        for i, ev in enumerate(events):
            b = base[i].tolist()
            named = dict(zip(self.base.names, b))
            out[i] = b + self._batch(DEVICE_PROFILE, ev) + self._batch(SITE_CLIMATE, ev) + self._stream(ev, named)
        return out


def by_session(rows: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    sessions: Dict[int, List[Dict[str, Any]]] = {}
    for r in rows:
        sessions.setdefault(r["session"], []).append(r)
    return [sessions[k] for k in sorted(sessions)]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=os.path.join(EXAMPLE, "models", "sensor_anomaly", "1"))
    ap.add_argument("--sessions", type=int, default=120)
    ap.add_argument("--session", type=int, default=1000, help="readings per training stream (fresh streaming state)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--golden-seed", type=int, default=424242)
    ap.add_argument("--golden-rows", type=int, default=600)
    ap.add_argument("--confidence-seed", type=int, default=20261130)
    ap.add_argument("--confidence-sessions", type=int, default=8)
    args = ap.parse_args(argv)

    import onnx
    import onnxruntime as ort
    import sklearn
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

    t0 = time.perf_counter()
    os.makedirs(args.out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="iot-train-")
    fleet_file = os.path.join(tmp, "fleet.json")
    rows = generate(os.path.join(tmp, "train.jsonl"), args.seed, args.sessions, args.session, fleet_out=fleet_file)
    with open(fleet_file, encoding="utf-8") as f:
        fleet = json.load(f)
    devices, sites = batch_tables(fleet)
    write_tables(args.out_dir, devices, sites)
    base = BaseFeatures(DEFINITIONS)
    online = OnlineFeatures(base, devices, sites)
    names = online.names
    nf = len(names)

    parts, labels, kinds = [], [], []
    for sess in by_session(rows):
        online.reset(sess[0]["start"])
        parts.append(online.vectors([r["event"] for r in sess]))
        labels += [1 if r["anomaly"] else 0 for r in sess]
        kinds += [r["kind"] or "none" for r in sess]
    X = np.vstack(parts)
    y = np.asarray(labels, dtype=np.int64)
    t_data = time.perf_counter()
    print(f"generated {len(y)} rows in {args.sessions} sessions ({y.mean():.4f} anomalous) in {t_data - t0:.1f}s ({base.impl})", flush=True)

    perm = np.random.default_rng(args.seed).permutation(len(y))
    n_test = int(round(len(y) * args.test_fraction))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    hyper = dict(loss="log_loss", learning_rate=0.1, max_iter=200, max_leaf_nodes=15, min_samples_leaf=30,
                 l2_regularization=1.0, max_bins=255, early_stopping=False, random_state=args.seed)
    clf = HistGradientBoostingClassifier(**hyper)
    # Fit on the float32 values the pipeline scores (its matrix is float32): split thresholds then
    # fall between float32 values, and sklearn and the ONNX export agree.
    clf.fit(X[train_idx].astype(np.float32).astype(np.float64), y[train_idx])
    t_fit = time.perf_counter()

    onx = convert_sklearn(clf, name="sensor_anomaly", initial_types=[("float_input", FloatTensorType([None, nf]))],
                          options={id(clf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    onx.doc_string = f"sensor_anomaly v1: {type(clf).__name__} over {VECTOR_SET} v{VECTOR_VERSION}"
    onnx.checker.check_model(onx)
    model_path = os.path.join(args.out_dir, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(onx.SerializeToString())
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])

    def score(m: np.ndarray) -> np.ndarray:
        return sess.run(["probabilities"], {"float_input": m.astype(np.float32)})[0][:, 1]

    X_test, y_test = X[test_idx], y[test_idx]
    p = score(X_test)
    pred = (p >= 0.5).astype(np.int64)
    kinds_test = np.asarray(kinds)[test_idx]
    metrics = {
        "split": "test",
        "rocAuc": round(float(roc_auc_score(y_test, p)), 6),
        "prAuc": round(float(average_precision_score(y_test, p)), 6),
        "precisionAt0_5": round(float(precision_score(y_test, pred, zero_division=0)), 6),
        "recallAt0_5": round(float(recall_score(y_test, pred, zero_division=0)), 6),
        "confusionAt0_5": {"tp": int(((pred == 1) & (y_test == 1)).sum()), "fp": int(((pred == 1) & (y_test == 0)).sum()),
                           "fn": int(((pred == 0) & (y_test == 1)).sum()), "tn": int(((pred == 0) & (y_test == 0)).sum())},
        "recallByKindAt0_5": {k: round(float(pred[kinds_test == k].mean()), 4) for k in sorted(set(kinds_test)) if k != "none"},
        "testRows": int(len(y_test)),
        "testPositives": int(y_test.sum()),
        "maxAbsDiffSklearnVsOnnx": float(np.max(np.abs(clf.predict_proba(X_test.astype(np.float32).astype(np.float64))[:, 1] - p))),
    }
    print("metrics " + json.dumps(metrics), flush=True)

    # Golden: one ordered stream from GOLDEN_START, fresh state (the e2e and replay tests produce it as is).
    golden_rows = generate(os.path.join(tmp, "golden.jsonl"), args.golden_seed, 1, args.golden_rows, start=GOLDEN_START)
    online.reset(GOLDEN_START)
    g_events = [r["event"] for r in golden_rows]
    g_x = online.vectors(g_events)
    g_scores = score(g_x)
    with open(os.path.join(args.out_dir, "golden.jsonl"), "w", encoding="utf-8") as f:
        for r, feats, s in zip(golden_rows, g_x.tolist(), g_scores.tolist()):
            f.write(json.dumps({"event": r["event"], "features": feats, "score": s, "anomaly": r["anomaly"], "kind": r["kind"]}, allow_nan=False) + "\n")

    # Confidence set for the gate: held-out sessions (another seed), float32 like the pipeline's matrix.
    conf_rows = generate(os.path.join(tmp, "confidence.jsonl"), args.confidence_seed, args.confidence_sessions, args.session)
    n_conf = pos_conf = 0
    with open(os.path.join(args.out_dir, "confidence.jsonl"), "w", encoding="utf-8") as f:
        for sess_rows in by_session(conf_rows):
            online.reset(sess_rows[0]["start"])
            cx = online.vectors([r["event"] for r in sess_rows]).astype(np.float32)
            for r, feats in zip(sess_rows, cx.tolist()):
                f.write(json.dumps({"key": r["event"]["readingId"], "segment": {"siteId": r["event"]["siteId"]},
                                    "features": feats, "label": 1 if r["anomaly"] else 0}) + "\n")
                n_conf += 1
                pos_conf += 1 if r["anomaly"] else 0
    print(f"golden {len(golden_rows)} rows; confidence set {n_conf} rows, {pos_conf} positive", flush=True)

    rel = lambda q: os.path.relpath(os.path.abspath(q), REPO_ROOT).replace(os.sep, "/")
    card = {
        "name": "sensor_anomaly",
        "version": "1",
        "description": ("Industrial sensor reading anomaly scorer (IoT example): stateless sensor_base v1 features "
                        "(declarative definitions), batch sets device_profile and site_climate from Redis, streaming "
                        "device_activity windowed aggregations. Trained on synthetic data only."),
        "framework": {"name": "scikit-learn", "estimator": type(clf).__name__, "format": "onnx",
                      "opset": {imp.domain or "ai.onnx": imp.version for imp in onx.opset_import},
                      "versions": {"python": platform.python_version(), "numpy": np.__version__,
                                   "scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
                                   "onnx": onnx.__version__, "onnxruntime": ort.__version__}},
        "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "createdBy": "examples/iot/train.sh",
        "trainingData": {"version": f"iot-synthetic/seed-{args.seed}/sessions-{args.sessions}x{args.session}/batch-seed-{BATCH['seed']}",
                         "generator": "examples/iot/generator.ts SensorGenerator (JSON lines via generate.ts), sessions with fresh streaming state",
                         "definitions": rel(DEFINITIONS), "definitionsHash": base.hash,
                         "statelessImplementation": base.impl,
                         "seed": args.seed, "rows": int(len(y)), "sessionEvents": args.session, "anomalyRate": round(float(y.mean()), 6),
                         "batchFeatures": {"generator": "examples/iot/train/train_iot.py batch_tables", **BATCH,
                                           "files": ["features/device_profile.csv", "features/site_climate.jsonl"],
                                           "deviceRows": len(devices), "siteRows": len(sites)},
                         "split": {"method": "random permutation (numpy default_rng(seed))", "train": int(len(train_idx)),
                                   "test": int(len(test_idx)), "testFraction": args.test_fraction}},
        "hyperparameters": hyper,
        "metrics": metrics,
        # definitionsHash pins sensor_base.yaml: the loader refuses a topology whose definitions file differs.
        "features": {"set": VECTOR_SET, "version": VECTOR_VERSION, "names": names, "definitions": online.definitions(),
                     "definitionsFile": rel(DEFINITIONS), "definitionsHash": base.hash},
        "inputs": [{"name": "float_input", "type": "float32", "shape": [-1, nf]}],
        "outputs": [{"name": "label", "type": "int64", "shape": [-1]}, {"name": "probabilities", "type": "float32", "shape": [-1, 2]}],
        "score": {"output": "probabilities", "index": 1},
        "threshold": 0.5,
        "goldenSet": {"path": "golden.jsonl", "rows": len(golden_rows), "seed": args.golden_seed, "ordered": True,
                      "note": "one event stream in order from 2026-01-05T00:00Z, fresh streaming state; replay in order to compare"},
        "timings": {"dataSeconds": round(t_data - t0, 2), "fitSeconds": round(t_fit - t_data, 2),
                    "totalSeconds": round(time.perf_counter() - t0, 2)},
        "sizeBytes": os.path.getsize(model_path),
        "sha256": sha256_file(model_path),
    }
    from baseline import reference_profile
    card["monitoring"] = {"baseline": reference_profile(
        X[train_idx], names, score(X[train_idx]),
        f"training split ({len(train_idx)} rows) of {card['trainingData']['version']}; scores from model.onnx sha256 {card['sha256'][:12]}")}
    with open(os.path.join(args.out_dir, "model.json"), "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"wrote {rel(args.out_dir)}: model.onnx, model.json, golden.jsonl, confidence.jsonl, features/ "
          f"({len(devices)} devices, {len(sites)} sites); total {card['timings']['totalSeconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
