#!/usr/bin/env python3
"""Train the demo fraud model (version 1) from the shared generator spec and export it to ONNX.

Run through scripts/train-model.sh, which creates ./.venv and installs models/train/requirements.txt.

Reads  models/fraud/generator-spec.json   (distributions, planted fraud patterns, feature list)
Writes models/fraud/<version>/model.onnx   (HistGradientBoostingClassifier, input float_input [N, F] float32)
       models/fraud/<version>/model.json   (model card: features, inputs/outputs, metrics, sha256, ...)
       models/fraud/<version>/golden.jsonl (raw events + Python features + onnxruntime score: the
                                            end-to-end check set for the TypeScript extractor/runtime)

The synthetic generator below mirrors examples/fraud/generator.ts; the features are the declarative
definitions models/fraud/features/fraud_txn.yaml, computed by python/tributary_features. Both generators use the same PRNG (mulberry32) and the same draw
order (documented in the spec's "$mechanism"), so a seed yields the same stream in both languages
(barring a last-bit libm difference in exp/log/cos that could move a rounded amount by one minor
unit); the TypeScript unit tests check this against the golden set.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_SPEC = os.path.join(REPO_ROOT, "models", "fraud", "generator-spec.json")
FEATURE_SET = "fraud_txn"
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
NIGHT_END_HOUR = 6  # is_night = hour_of_day < 6 (part of feature definitions v1)
BASE_FEATURES = [
    "amount_usd",
    "log_amount_usd",
    "hour_of_day",
    "is_night",
    "is_high_risk_country",
    "currency_mismatch",
]
U32 = 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------------
def feature_names(spec: Dict[str, Any]) -> List[str]:
    """The ordered feature list implied by the feature definitions (v1) and the spec's categories."""
    return BASE_FEATURES + ["cat_" + c["name"] for c in spec["categories"]]


def load_spec(path: str) -> Dict[str, Any]:
    with open(path, "r", encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("featureSet") != FEATURE_SET:
        raise ValueError(f"spec featureSet must be {FEATURE_SET!r}, got {spec.get('featureSet')!r}")
    if spec.get("featureVersion") != 1:
        raise ValueError(f"this trainer implements feature definitions v1, spec has {spec.get('featureVersion')!r}")
    if spec["features"] != feature_names(spec):
        raise ValueError(f"spec features {spec['features']} != derived feature list {feature_names(spec)}")
    for key in ("hourProfile",):
        if len(spec[key]) != 24:
            raise ValueError(f"{key} must have 24 entries")
    if len(spec["fraud"]["hourProfile"]) != 24:
        raise ValueError("fraud.hourProfile must have 24 entries")
    codes = {c["code"] for c in spec["currencies"]}
    for c in spec["countries"]:
        if c["currency"] not in codes:
            raise ValueError(f"country {c['code']} uses currency {c['currency']} missing from currencies")
    return spec


# --------------------------------------------------------------------------------------------
# Generator (mirror of examples/fraud/generator.ts)
# --------------------------------------------------------------------------------------------
class Mulberry32:
    """32-bit state PRNG; next() returns a float in [0, 1) with 32 random bits."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = int(seed) & U32

    def next(self) -> float:
        a = (self.state + 0x6D2B79F5) & U32
        self.state = a
        t = ((a ^ (a >> 15)) * (a | 1)) & U32
        t = ((t + (((t ^ (t >> 7)) * (t | 61)) & U32)) & U32) ^ t
        return ((t ^ (t >> 14)) & U32) / 4294967296.0


def _cumulative(weights: Sequence[float]) -> List[float]:
    out: List[float] = []
    acc = 0.0
    for w in weights:
        acc += float(w)
        out.append(acc)
    if not out or not out[-1] > 0:
        raise ValueError("weights must have a positive sum")
    return out


def _pick(cum: List[float], u: float) -> int:
    target = u * cum[-1]
    for i, c in enumerate(cum):
        if target < c:
            return i
    return len(cum) - 1


class FraudGenerator:
    def __init__(self, spec: Dict[str, Any], seed: int, start_time: Optional[int] = None,
                 events_per_second: Optional[float] = None) -> None:
        self.spec = spec
        self.seed = seed
        self.rng = Mulberry32(seed)
        self.n = 0
        self.start_time = int(spec["defaultStartTime"] if start_time is None else start_time)
        self.eps = float(spec["defaultEventsPerSecond"] if events_per_second is None else events_per_second)
        cats = spec["categories"]
        ctys = spec["countries"]
        curs = spec["currencies"]
        self.cats = cats
        self.ctys = ctys
        self.curs = curs
        self.cat_cum = (_cumulative([c["weight"] for c in cats]), _cumulative([c["fraudWeight"] for c in cats]))
        self.cty_cum = (_cumulative([c["weight"] for c in ctys]), _cumulative([c["fraudWeight"] for c in ctys]))
        self.hour_cum = (_cumulative(spec["hourProfile"]), _cumulative(spec["fraud"]["hourProfile"]))
        cur_index = {c["code"]: i for i, c in enumerate(curs)}
        self.cty_cur = [cur_index[c["currency"]] for c in ctys]
        self.cty_others = [[i for i, cur in enumerate(curs) if cur["code"] != c["currency"]] for c in ctys]
        fraud = spec["fraud"]
        self.base_rate = float(fraud["baseRate"])
        self.mismatch_rate = (float(spec["legit"]["currencyMismatchRate"]), float(fraud["currencyMismatchRate"]))
        self.mu_shift = float(fraud["amountMuShift"])
        self.sigma_scale = float(fraud["amountSigmaScale"])
        self.min_usd = float(spec["amountUsd"]["min"])
        self.max_usd = float(spec["amountUsd"]["max"])
        self.cards = int(spec["cards"])
        self.compromised = max(1, math.floor(self.cards * float(fraud["compromisedCardFraction"])))
        self.compromised_stride = self.cards // self.compromised
        self.per_cat = int(spec["merchants"]) // len(cats)
        if self.per_cat < 1:
            raise ValueError("need at least one merchant per category")

    def next(self) -> Tuple[Dict[str, Any], bool]:
        r = self.rng.next
        n = self.n
        self.n += 1
        is_fraud = r() < self.base_rate
        k = 1 if is_fraud else 0
        ci = _pick(self.cat_cum[k], r())
        cat = self.cats[ci]
        yi = _pick(self.cty_cum[k], r())
        cur_i = self.cty_cur[yi]
        if r() < self.mismatch_rate[k]:
            others = self.cty_others[yi]
            cur_i = others[math.floor(r() * len(others))]
        cur = self.curs[cur_i]
        u1 = 1.0 - r()
        u2 = r()
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        mu = cat["amount"]["mu"] + (self.mu_shift if is_fraud else 0.0)
        sigma = cat["amount"]["sigma"] * (self.sigma_scale if is_fraud else 1.0)
        usd = math.exp(mu + sigma * z)
        usd = min(max(usd, self.min_usd), self.max_usd)
        scale = 10 ** int(cur["decimals"])
        amount = math.floor(usd / cur["toUsd"] * scale + 0.5) / scale
        if amount < 1 / scale:
            amount = 1 / scale
        hour = _pick(self.hour_cum[k], r())
        ms_in_hour = math.floor(r() * MS_PER_HOUR)
        clock = self.start_time + math.floor(n * 1000 / self.eps)
        day_start = math.floor(clock / MS_PER_DAY) * MS_PER_DAY
        event_time = day_start + hour * MS_PER_HOUR + ms_in_hour
        if is_fraud:
            card = math.floor(r() * self.compromised) * self.compromised_stride
        else:
            card = math.floor(r() * self.cards)
        merchant = ci * self.per_cat + math.floor(r() * self.per_cat)
        event = {
            "transactionId": f"tx-{self.seed}-{n}",
            "cardId": f"card-{card:06d}",
            "merchantId": f"m-{merchant:05d}",
            "amount": float(amount),
            "currency": cur["code"],
            "merchantCategory": cat["name"],
            "country": self.ctys[yi]["code"],
            "eventTime": int(event_time),
        }
        return event, is_fraud

    def __iter__(self) -> Iterator[Tuple[Dict[str, Any], bool]]:
        while True:
            yield self.next()


# --------------------------------------------------------------------------------------------
# Features: models/fraud/features/fraud_txn.yaml through python/tributary_features -- the same
# declarative definitions the extraction stage compiles (no hand-kept twin any more).
# --------------------------------------------------------------------------------------------
FEATURES_FILE = os.path.join(REPO_ROOT, "models", "fraud", "features", "fraud_txn.yaml")
# The input schema belongs to the fraud example (the package's schemas/ holds only the engine's own).
TRANSACTION_SCHEMA = os.path.join(REPO_ROOT, "examples", "fraud", "schemas", "transaction.avsc")


class FeatureExtractor:
    """The fraud_txn feature set (definitions in FEATURES_FILE, semantics in
    src/features/declarative/SEMANTICS.md). `extract_many` computes a batch (numpy, fast);
    `extract` one event."""

    def __init__(self, spec: Dict[str, Any], path: str = FEATURES_FILE) -> None:
        sys.path.insert(0, os.path.join(REPO_ROOT, "python"))
        from tributary_features import load_feature_set

        self.features = load_feature_set(path, TRANSACTION_SCHEMA)
        if self.features.set != FEATURE_SET:
            raise ValueError(f"{path} defines {self.features.set!r}, not {FEATURE_SET!r}")
        if self.features.names != feature_names(spec):
            raise ValueError(f"{path} features {self.features.names} != the spec's {feature_names(spec)}")
        self.names = self.features.names
        self.version = self.features.version
        self.hash = self.features.hash
        self.file = os.path.relpath(path, REPO_ROOT).replace(os.sep, "/")

    def extract_many(self, events: Sequence[Dict[str, Any]]) -> np.ndarray:
        return self.features.compute(events)

    def extract(self, ev: Dict[str, Any]) -> List[float]:
        return self.features.compute_one(ev)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def edge_case_events(spec: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """Hand-written events for the unknown/boundary handling of the feature definitions."""
    t0 = int(spec["defaultStartTime"])  # a UTC midnight

    def ev(i: int, **kw: Any) -> Dict[str, Any]:
        base = {
            "transactionId": f"tx-edge-{i}",
            "cardId": "card-000001",
            "merchantId": "m-00001",
            "amount": 42.5,
            "currency": "USD",
            "merchantCategory": "grocery",
            "country": "US",
            "eventTime": t0 + 12 * MS_PER_HOUR,
        }
        base.update(kw)
        return base

    return [
        ("unknown category", ev(0, merchantCategory="pets")),
        ("unknown country", ev(1, country="ZZ")),
        ("unknown currency", ev(2, currency="XXX", amount=99.99)),
        ("lower-case currency is unknown", ev(3, currency="usd")),
        ("empty strings", ev(4, currency="", country="", merchantCategory="")),
        ("currency not the country's", ev(5, country="GB", currency="USD", merchantCategory="electronics", amount=1899.0)),
        ("midnight UTC", ev(6, eventTime=t0)),
        ("last ms of night", ev(7, eventTime=t0 + 6 * MS_PER_HOUR - 1)),
        ("first ms of day", ev(8, eventTime=t0 + 6 * MS_PER_HOUR)),
        ("negative eventTime", ev(9, eventTime=-1)),
        ("zero amount", ev(10, amount=0.0)),
        ("negative amount", ev(11, amount=-12.5)),
        ("huge amount high-risk night", ev(12, amount=250000.0, country="NG", currency="NGN", merchantCategory="jewelry",
                                           eventTime=t0 + 3 * MS_PER_HOUR + 17)),
        ("zero-decimal currency", ev(13, amount=158000.0, country="JP", currency="JPY", merchantCategory="travel")),
    ]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=DEFAULT_SPEC)
    ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "models", "fraud", "1"))
    ap.add_argument("--version", default="1")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--golden-seed", type=int, default=424242)
    ap.add_argument("--golden-head", type=int, default=170, help="first N events of the golden stream")
    ap.add_argument("--golden-fraud", type=int, default=20, help="plus the next N fraud events of that stream")
    args = ap.parse_args(argv)

    # Imported here so --help works without the toolchain.
    import onnx
    import onnxruntime as ort
    import sklearn
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

    t_start = time.perf_counter()
    spec = load_spec(args.spec)
    names = feature_names(spec)
    n_features = len(names)
    fx = FeatureExtractor(spec)
    os.makedirs(args.out_dir, exist_ok=True)

    # ---- data
    gen = FraudGenerator(spec, args.seed)
    drawn = [gen.next() for _ in range(args.rows)]
    X = fx.extract_many([e for e, _ in drawn])
    y = np.array([1 if f else 0 for _, f in drawn], dtype=np.int64)
    t_data = time.perf_counter()
    fraud_rate = float(y.mean())
    print(f"generated {args.rows} rows ({fraud_rate:.4f} fraud) in {t_data - t_start:.1f}s", flush=True)

    perm = np.random.default_rng(args.seed).permutation(args.rows)
    n_test = int(round(args.rows * args.test_fraction))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    X_train, y_train, X_test, y_test = X[train_idx], y[train_idx], X[test_idx], y[test_idx]

    # ---- model
    hyper = dict(
        loss="log_loss",
        learning_rate=0.1,
        max_iter=150,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        max_bins=255,
        early_stopping=False,
        random_state=args.seed,
    )
    clf = HistGradientBoostingClassifier(**hyper)
    clf.fit(X_train, y_train)
    t_fit = time.perf_counter()
    print(f"fit in {t_fit - t_data:.1f}s", flush=True)

    # ---- export
    onx = convert_sklearn(
        clf,
        name="fraud",
        initial_types=[("float_input", FloatTensorType([None, n_features]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.doc_string = f"fraud v{args.version}: HistGradientBoostingClassifier over feature set {FEATURE_SET} v{fx.version}"
    onnx.checker.check_model(onx)
    model_path = os.path.join(args.out_dir, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(onx.SerializeToString())
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    if in_names != ["float_input"] or out_names != ["label", "probabilities"]:
        raise RuntimeError(f"unexpected ONNX signature: inputs {in_names}, outputs {out_names}")

    def score(features: np.ndarray) -> np.ndarray:
        return sess.run(["probabilities"], {"float_input": features.astype(np.float32)})[0][:, 1]

    # ---- evaluation on the held-out split, with the exported ONNX model (what is served)
    p_test = score(X_test)
    p_train = score(X_train)
    pred = (p_test >= 0.5).astype(np.int64)
    tp = int(((pred == 1) & (y_test == 1)).sum())
    fp = int(((pred == 1) & (y_test == 0)).sum())
    fn = int(((pred == 0) & (y_test == 1)).sum())
    tn = int(((pred == 0) & (y_test == 0)).sum())
    sk_vs_onnx = float(np.max(np.abs(clf.predict_proba(X_test)[:, 1] - p_test)))
    metrics = {
        "split": "test",
        "rocAuc": round(float(roc_auc_score(y_test, p_test)), 6),
        "prAuc": round(float(average_precision_score(y_test, p_test)), 6),
        "precisionAt0_5": round(float(precision_score(y_test, pred, zero_division=0)), 6),
        "recallAt0_5": round(float(recall_score(y_test, pred, zero_division=0)), 6),
        "confusionAt0_5": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "trainRocAuc": round(float(roc_auc_score(y_train, p_train)), 6),
        "testRows": int(len(y_test)),
        "testPositives": int(y_test.sum()),
        "maxAbsDiffSklearnVsOnnx": sk_vs_onnx,
    }
    t_eval = time.perf_counter()
    print("metrics " + json.dumps(metrics), flush=True)

    # ---- golden set: raw events + Python features + onnxruntime score
    golden: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []
    ggen = FraudGenerator(spec, args.golden_seed)
    fraud_needed = args.golden_fraud
    while len(golden) < args.golden_head or fraud_needed > 0:
        index = ggen.n
        event, is_fraud = ggen.next()
        if index < args.golden_head:
            golden.append((event, {"seed": args.golden_seed, "index": index, "isFraud": is_fraud}))
        elif is_fraud:
            golden.append((event, {"seed": args.golden_seed, "index": index, "isFraud": True}))
            fraud_needed -= 1
    for case, event in edge_case_events(spec):
        golden.append((event, {"case": case}))
    G = fx.extract_many([e for e, _ in golden])
    g_scores = score(G)
    golden_path = os.path.join(args.out_dir, "golden.jsonl")
    with open(golden_path, "w", encoding="utf-8") as f:
        for (event, source), feats, s in zip(golden, G.tolist(), g_scores.tolist()):
            f.write(json.dumps({"event": event, "features": feats, "score": s, "source": source},
                               allow_nan=False) + "\n")

    # ---- model card
    with open(args.spec, "rb") as f:
        spec_sha = hashlib.sha256(f.read()).hexdigest()
    rel = lambda p: os.path.relpath(os.path.abspath(p), REPO_ROOT).replace(os.sep, "/")
    card = {
        "name": "fraud",
        "version": str(args.version),
        "description": "Card-transaction fraud classifier for the Tributary demo: gradient-boosted trees over "
                       "stateless per-event features (amount in USD, hour of day UTC, night, high-risk country, "
                       "currency mismatch, merchant category one-hot). Trained on synthetic data only.",
        "framework": {
            "name": "scikit-learn",
            "estimator": "HistGradientBoostingClassifier",
            "format": "onnx",
            "opset": {imp.domain or "ai.onnx": imp.version for imp in onx.opset_import},
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scikit-learn": sklearn.__version__,
                "skl2onnx": skl2onnx.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": ort.__version__,
            },
        },
        "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "createdBy": "scripts/train-model.sh",
        "trainingData": {
            "generator": "synthetic (models/train/train_fraud.py FraudGenerator)",
            "spec": rel(args.spec),
            "specSha256": spec_sha,
            "seed": args.seed,
            "rows": args.rows,
            "fraudRate": round(fraud_rate, 6),
            "split": {
                "method": "random permutation (numpy default_rng(seed))",
                "train": int(len(train_idx)),
                "test": int(len(test_idx)),
                "testFraction": args.test_fraction,
            },
        },
        "hyperparameters": hyper,
        "metrics": metrics,
        "features": {"set": FEATURE_SET, "version": fx.version, "names": names, "definitionsFile": fx.file, "definitionsHash": fx.hash},
        "inputs": [{"name": "float_input", "type": "float32", "shape": [-1, n_features]}],
        "outputs": [
            {"name": "label", "type": "int64", "shape": [-1]},
            {"name": "probabilities", "type": "float32", "shape": [-1, 2]},
        ],
        "score": {"output": "probabilities", "index": 1},
        "threshold": 0.5,
        "goldenSet": {
            "path": "golden.jsonl",
            "rows": len(golden),
            "seed": args.golden_seed,
            "startTime": ggen.start_time,
            "eventsPerSecond": ggen.eps,
            "head": args.golden_head,
            "extraFraud": args.golden_fraud,
            "edgeCases": len(edge_case_events(spec)),
        },
        "timings": {
            "dataSeconds": round(t_data - t_start, 2),
            "fitSeconds": round(t_fit - t_data, 2),
            "exportAndEvalSeconds": round(t_eval - t_fit, 2),
            "totalSeconds": round(time.perf_counter() - t_start, 2),
        },
        "sizeBytes": os.path.getsize(model_path),
        "sha256": sha256_file(model_path),
    }
    with open(os.path.join(args.out_dir, "model.json"), "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"wrote {rel(model_path)} ({card['sizeBytes']} bytes, sha256 {card['sha256'][:12]}...), "
          f"{rel(golden_path)} ({len(golden)} rows), model.json; total {card['timings']['totalSeconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
