#!/usr/bin/env python3
"""Train fraud model version 2: the stateless `fraud_txn` v1 features plus online features from a
feature store — two batch sets read from Redis (card_profile, merchant_risk) and one streaming set
of windowed aggregations (card_activity) — as declared in topologies/fraud-detection.yaml.

Run through scripts/train-model.sh --v2 (same venv/toolchain as v1).

Writes models/fraud/2/features/card_profile.csv, merchant_risk.jsonl  (seeded synthetic batch-job
       output; `npm run demo` loads them with the same loader as `tributary features load`)
       models/fraud/2/{model.onnx, model.json, golden.jsonl}

Streaming semantics mirrored from src/features/streaming.ts (the TypeScript/Redis implementation
the pipeline runs; its property test checks it against a brute-force reference): an event at time t
is scored on the entity's events applied before it, not late, with event time in the aggregation's
window ending at t, at the set's bucket resolution R (card_activity: 60 s): windows sliding
[floor(t/R)*R + R - size, t] (the size/R buckets ending with t's bucket) or hopping
[floor(t/hop)*hop + hop - size, t]; sums are exact (math.fsum), as the Lua state keeps them.
(models/fraud/2 was trained with exact sliding windows (t - size, t] and left-to-right sums; the
two differ only for an event whose earlier events lie within R of the far window edge.)
Training streams are sessions of --session events with fresh state, like a demo run.

--candidate trains the shadow/canary candidate, version 3, into models/fraud/3: the same features and
training data as version 2 but another algorithm (a random forest instead of gradient boosting), so
shadow, canary and bandit compare two genuinely different models. It reads version 2's batch tables
(regenerated identically from BATCH, not rewritten).

A version-2 run also writes confidence.jsonl (the gate's labelled confidence set: held-out sessions of
--confidence-seed, features computed here, planted labels); --confidence-only writes just that file
into --out-dir. The candidate's gate reads version 2's file (same features, same rows), so both
gates measure on identical rows.

golden.jsonl is ONE ordered event sequence (the stream of --golden-seed, fresh state): each line
has the event, its expected full vector (Python) and score. The TypeScript tests replay it in order
through the real pipeline code (Redis batch sets loaded from the files above + the Lua streaming
state) and must get the same vectors and scores.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from train_fraud import (  # noqa: E402
    DEFAULT_SPEC, REPO_ROOT, FeatureExtractor, FraudGenerator, Mulberry32, load_spec, sha256_file,
)

VECTOR_SET = "fraud_online"
VECTOR_VERSION = 2
DAY = 86_400_000
BUCKET_MS = 60_000  # card_activity's bucket resolution (its windows' gcd with 60 s, as in src/features/spec.ts)
HOUR = 3_600_000

# Batch-job generation parameters (synthetic "warehouse" outputs).
BATCH = {
    "seed": 2024,
    "asOf": 1735603200000,  # the day before the generator's default start: rows are fresh for the demo
    "cardMissingRate": 0.03,
    "merchantMissingRate": 0.02,
    "cardAgeDaysMu": 6.2, "cardAgeDaysSigma": 0.8, "compromisedAgeDaysMu": 4.4,
    "chargebackRate": 0.08, "compromisedChargebackRate": 0.6,
    "merchantNoiseSigma": 0.35,
}

# Mirror of topologies/fraud-detection.yaml `features.sets` (the golden test catches any drift).
CARD_PROFILE = {"name": "card_profile", "version": 1, "entity": "cardId", "stalenessMs": 30 * DAY,
                "fields": [("card_age_days", "double", 0.0), ("card_avg_amount_usd", "double", 0.0),
                           ("card_prior_chargebacks", "long", 0)],
                "missingIndicator": "card_profile_missing"}
MERCHANT_RISK = {"name": "merchant_risk", "version": 1, "entity": "merchantId", "stalenessMs": 30 * DAY,
                 "fields": [("merchant_chargeback_rate", "double", 0.0), ("merchant_risk_score", "double", 0.5)],
                 "missingIndicator": "merchant_risk_missing"}
CARD_ACTIVITY = {"name": "card_activity", "version": 1, "entity": "cardId", "allowedLatenessMs": 2 * DAY,
                 "fields": [
                     # name, type, default, aggregation, of, window (type, size, hop)
                     ("card_txn_count_24h", "long", 0, "count", None, ("sliding", DAY, 0)),
                     ("card_amount_sum_24h", "double", 0.0, "sum", "amount_usd", ("hopping", DAY, HOUR)),
                     ("card_amount_max_24h", "double", 0.0, "max", "amount_usd", ("sliding", DAY, 0)),
                     ("card_distinct_merchants_24h", "long", 0, "distinct_count", "merchantId", ("sliding", DAY, 0)),
                     ("card_ms_since_prev", "long", -1, "time_since_prev", None, ("sliding", 7 * DAY, 0)),
                 ]}


def online_names(base: List[str]) -> List[str]:
    names = list(base)
    for s in (CARD_PROFILE, MERCHANT_RISK):
        names += [f[0] for f in s["fields"]] + [s["missingIndicator"]]
    names += [f[0] for f in CARD_ACTIVITY["fields"]]
    return names


def definitions(base: List[str]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {n: {"set": "fraud_txn", "setVersion": 1, "type": "double"} for n in base}
    for s in (CARD_PROFILE, MERCHANT_RISK):
        for name, typ, _ in s["fields"]:
            out[name] = {"set": s["name"], "setVersion": s["version"], "type": typ}
        out[s["missingIndicator"]] = {"set": s["name"], "setVersion": s["version"], "type": "boolean"}
    for f in CARD_ACTIVITY["fields"]:
        out[f[0]] = {"set": CARD_ACTIVITY["name"], "setVersion": CARD_ACTIVITY["version"], "type": f[1]}
    return out


# ---------------------------------------------------------------------------------------------
# Batch tables
# ---------------------------------------------------------------------------------------------
def batch_tables(spec: Dict[str, Any]) -> Tuple[Dict[str, Dict[str, float]], Dict[str, Dict[str, float]]]:
    rng = Mulberry32(BATCH["seed"])
    cards = int(spec["cards"])
    compromised = max(1, math.floor(cards * float(spec["fraud"]["compromisedCardFraction"])))
    stride = cards // compromised
    comp = {i * stride for i in range(compromised)}

    def normal() -> float:
        u1 = 1 - rng.next()
        u2 = rng.next()
        return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)

    card_rows: Dict[str, Dict[str, float]] = {}
    for c in range(cards):
        is_comp = c in comp
        missing = rng.next() < BATCH["cardMissingRate"]
        mu = BATCH["compromisedAgeDaysMu"] if is_comp else BATCH["cardAgeDaysMu"]
        age = round(math.exp(mu + BATCH["cardAgeDaysSigma"] * normal()), 1)
        avg = round(math.exp(3.8 + 0.5 * normal()), 2)
        p = BATCH["compromisedChargebackRate"] if is_comp else BATCH["chargebackRate"]
        cb = 0
        while rng.next() < p and cb < 9:
            cb += 1
        if not missing:
            card_rows[f"card-{c:06d}"] = {"card_age_days": age, "card_avg_amount_usd": avg, "card_prior_chargebacks": cb}
    merchant_rows: Dict[str, Dict[str, float]] = {}
    cats = spec["categories"]
    per_cat = int(spec["merchants"]) // len(cats)
    for ci, cat in enumerate(cats):
        ratio = cat["fraudWeight"] / cat["weight"]
        for j in range(per_cat):
            m = ci * per_cat + j
            noise = math.exp(BATCH["merchantNoiseSigma"] * normal())
            rate = round(min(0.5, 0.003 * ratio * noise), 6)
            score = round(1 / (1 + math.exp(-(math.log(ratio) + 0.5 * normal()))), 6)
            if rng.next() >= BATCH["merchantMissingRate"]:
                merchant_rows[f"m-{m:05d}"] = {"merchant_chargeback_rate": rate, "merchant_risk_score": score}
    return card_rows, merchant_rows


def write_tables(out_dir: str, cards: Dict[str, Dict[str, float]], merchants: Dict[str, Dict[str, float]]) -> None:
    d = os.path.join(out_dir, "features")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "card_profile.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["cardId", "ts", "card_age_days", "card_avg_amount_usd", "card_prior_chargebacks"])
        for k, v in cards.items():
            w.writerow([k, BATCH["asOf"], repr(v["card_age_days"]), repr(v["card_avg_amount_usd"]), v["card_prior_chargebacks"]])
    with open(os.path.join(d, "merchant_risk.jsonl"), "w", encoding="utf-8") as f:
        for k, v in merchants.items():
            f.write(json.dumps({"merchantId": k, "ts": BATCH["asOf"], **v}) + "\n")


# ---------------------------------------------------------------------------------------------
# Online vector: base + batch lookups + streaming aggregations (fresh state per stream)
# ---------------------------------------------------------------------------------------------
class OnlineFeatures:
    def __init__(self, spec: Dict[str, Any], cards: Dict[str, Dict[str, float]], merchants: Dict[str, Dict[str, float]]) -> None:
        self.fx = FeatureExtractor(spec)
        self.names = online_names(self.fx.names)
        self.tables = {"card_profile": cards, "merchant_risk": merchants}
        self.reset()

    def reset(self) -> None:
        self.log: Dict[str, List[Tuple[int, int, bool, Dict[str, Any]]]] = {}
        self.seq = 0

    def _batch(self, s: Dict[str, Any], ev: Dict[str, Any]) -> List[float]:
        row = self.tables[s["name"]].get(ev[s["entity"]])
        if row is not None and ev["eventTime"] - BATCH["asOf"] > s["stalenessMs"]:
            row = None
        if row is None:
            return [float(d) for _, _, d in s["fields"]] + [1.0]
        return [float(row[n]) for n, _, _ in s["fields"]] + [0.0]

    def _stream(self, ev: Dict[str, Any], base: Dict[str, float]) -> List[float]:
        s = CARD_ACTIVITY
        t = ev["eventTime"]
        log = self.log.setdefault(ev[s["entity"]], [])
        max_t = max((e[0] for e in log), default=None)
        late = max_t is not None and t < max_t - s["allowedLatenessMs"]
        out: List[float] = []
        for name, _typ, default, agg, of, (wt, size, hop) in s["fields"]:
            start = (t // BUCKET_MS) * BUCKET_MS + BUCKET_MS - size if wt == "sliding" else (t // hop) * hop + hop - size
            rows = sorted([e for e in log if not e[2] and start <= e[0] <= t], key=lambda e: (e[0], e[1]))
            if agg == "count":
                v = float(len(rows))
            elif agg == "sum":
                v = math.fsum(float(e[3][of]) for e in rows) + 0.0
            elif agg == "max":
                v = max((float(e[3][of]) for e in rows), default=float(default))
            elif agg == "distinct_count":
                v = float(len({str(e[3][of]) for e in rows}))
            elif agg == "time_since_prev":
                v = float(t - rows[-1][0]) if rows else float(default)
            else:
                raise ValueError(agg)
            out.append(v)
        self.seq += 1
        values = {"amount_usd": repr_num(base["amount_usd"]), "merchantId": ev["merchantId"]}
        log.append((t, self.seq, late, values))
        return out

    def vector(self, ev: Dict[str, Any], base: Optional[Sequence[float]] = None) -> List[float]:
        """The online vector of the next event of the stream; `base` = its fraud_txn row when computed in a batch."""
        base = list(base) if base is not None else self.fx.extract(ev)
        named = dict(zip(self.fx.names, base))
        return base + self._batch(CARD_PROFILE, ev) + self._batch(MERCHANT_RISK, ev) + self._stream(ev, named)


def repr_num(x: float) -> float:
    """Values cross Redis as JavaScript's shortest round-trip decimal strings; Python's repr is the same double."""
    return float(repr(float(x)))


def write_confidence(out_dir: str, spec: Dict[str, Any], online: "OnlineFeatures", seed: int, rows: int, session: int) -> Tuple[int, int]:
    """The gate's labelled confidence set: sessions of fresh streaming state (like a demo run), seeds
    disjoint from training (seed * 100_003 + s with a seed training does not use)."""
    lines = []
    positives = 0
    n = 0
    s = 0
    while n < rows:
        gen = FraudGenerator(spec, seed * 100_003 + s)
        online.reset()
        drawn = [gen.next() for _ in range(min(session, rows - n))]
        bases = online.fx.extract_many([e for e, _ in drawn]).tolist()
        for (ev, is_fraud), base in zip(drawn, bases):
            feats = np.asarray(online.vector(ev, base), dtype=np.float32).tolist()  # float32 like the pipeline's matrix
            lines.append(json.dumps({"key": ev["transactionId"], "segment": {"merchantCategory": ev["merchantCategory"]},
                                     "features": feats, "label": 1 if is_fraud else 0}))
            positives += 1 if is_fraud else 0
            n += 1
        s += 1
    with open(os.path.join(out_dir, "confidence.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return n, positives


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=DEFAULT_SPEC)
    ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "models", "fraud", "2"))
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--session", type=int, default=1000, help="events per training stream (fresh streaming state)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--golden-seed", type=int, default=424242)
    ap.add_argument("--golden-rows", type=int, default=400)
    ap.add_argument("--candidate", action="store_true",
                    help="train the candidate version 3 (random forest, same features) into models/fraud/3")
    ap.add_argument("--confidence-only", action="store_true", help="only write --out-dir/confidence.jsonl (no training)")
    ap.add_argument("--confidence-seed", type=int, default=20261130)
    ap.add_argument("--confidence-rows", type=int, default=6000)
    args = ap.parse_args(argv)
    version = "3" if args.candidate else "2"
    if args.candidate and args.out_dir == ap.get_default("out_dir"):
        args.out_dir = os.path.join(REPO_ROOT, "models", "fraud", "3")

    import onnx
    import onnxruntime as ort
    import sklearn
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

    t0 = time.perf_counter()
    spec = load_spec(args.spec)
    os.makedirs(args.out_dir, exist_ok=True)
    cards, merchants = batch_tables(spec)
    online = OnlineFeatures(spec, cards, merchants)
    if args.confidence_only:
        n, pos = write_confidence(args.out_dir, spec, online, args.confidence_seed, args.confidence_rows, args.session)
        print(f"wrote {os.path.join(args.out_dir, 'confidence.jsonl')}: {n} rows, {pos} positive (seed {args.confidence_seed})")
        return 0
    if not args.candidate:
        write_tables(args.out_dir, cards, merchants)
    names = online.names
    nf = len(names)

    X = np.empty((args.rows, nf), dtype=np.float64)
    y = np.empty(args.rows, dtype=np.int64)
    sessions = (args.rows + args.session - 1) // args.session
    i = 0
    for s in range(sessions):
        gen = FraudGenerator(spec, args.seed * 100_003 + s)
        online.reset()
        drawn = [gen.next() for _ in range(min(args.session, args.rows - i))]
        bases = online.fx.extract_many([e for e, _ in drawn]).tolist()
        for (ev, is_fraud), base in zip(drawn, bases):
            X[i] = online.vector(ev, base)
            y[i] = 1 if is_fraud else 0
            i += 1
    t_data = time.perf_counter()
    print(f"generated {args.rows} rows in {sessions} sessions ({y.mean():.4f} fraud) in {t_data - t0:.1f}s", flush=True)

    perm = np.random.default_rng(args.seed).permutation(args.rows)
    n_test = int(round(args.rows * args.test_fraction))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    if args.candidate:
        # Bagged deep-ish trees instead of boosting: averaged leaf frequencies give coarser, less
        # extreme scores, so the candidate disagrees with version 2 near the threshold.
        hyper = dict(n_estimators=60, max_leaf_nodes=96, min_samples_leaf=10, max_features=0.5,
                     bootstrap=True, n_jobs=1, random_state=args.seed)
        clf = RandomForestClassifier(**hyper)
    else:
        hyper = dict(loss="log_loss", learning_rate=0.1, max_iter=150, max_leaf_nodes=15, min_samples_leaf=40,
                     l2_regularization=1.0, max_bins=255, early_stopping=False, random_state=args.seed)
        clf = HistGradientBoostingClassifier(**hyper)
    clf.fit(X[train_idx], y[train_idx])
    t_fit = time.perf_counter()

    onx = convert_sklearn(clf, name="fraud", initial_types=[("float_input", FloatTensorType([None, nf]))],
                          options={id(clf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    onx.doc_string = f"fraud v{version}: {type(clf).__name__} over {VECTOR_SET} v{VECTOR_VERSION}"
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
    metrics = {
        "split": "test",
        "rocAuc": round(float(roc_auc_score(y_test, p)), 6),
        "prAuc": round(float(average_precision_score(y_test, p)), 6),
        "precisionAt0_5": round(float(precision_score(y_test, pred, zero_division=0)), 6),
        "recallAt0_5": round(float(recall_score(y_test, pred, zero_division=0)), 6),
        "confusionAt0_5": {"tp": int(((pred == 1) & (y_test == 1)).sum()), "fp": int(((pred == 1) & (y_test == 0)).sum()),
                            "fn": int(((pred == 0) & (y_test == 1)).sum()), "tn": int(((pred == 0) & (y_test == 0)).sum())},
        "testRows": int(len(y_test)),
        "testPositives": int(y_test.sum()),
        "maxAbsDiffSklearnVsOnnx": float(np.max(np.abs(clf.predict_proba(X_test)[:, 1] - p))),
    }
    print("metrics " + json.dumps(metrics), flush=True)

    # Golden: one ordered stream, fresh state.
    online.reset()
    ggen = FraudGenerator(spec, args.golden_seed)
    golden = []
    drawn = [ggen.next() for _ in range(args.golden_rows)]
    for (ev, is_fraud), base in zip(drawn, online.fx.extract_many([e for e, _ in drawn]).tolist()):
        golden.append((ev, is_fraud, online.vector(ev, base)))
    g_scores = score(np.array([g[2] for g in golden], dtype=np.float64))
    with open(os.path.join(args.out_dir, "golden.jsonl"), "w", encoding="utf-8") as f:
        for (ev, is_fraud, feats), s in zip(golden, g_scores.tolist()):
            f.write(json.dumps({"event": ev, "features": feats, "score": s, "isFraud": is_fraud}, allow_nan=False) + "\n")

    if not args.candidate:
        n_conf, pos_conf = write_confidence(args.out_dir, spec, online, args.confidence_seed, args.confidence_rows, args.session)
        print(f"confidence set: {n_conf} rows, {pos_conf} positive (seed {args.confidence_seed})", flush=True)

    rel = lambda q: os.path.relpath(os.path.abspath(q), REPO_ROOT).replace(os.sep, "/")
    with open(args.spec, "rb") as f:
        spec_sha = hashlib.sha256(f.read()).hexdigest()
    card = {
        "name": "fraud",
        "version": version,
        "description": ("Card-transaction fraud classifier v3 (candidate): the same features and training data as v2, "
                        "a random forest instead of gradient boosting; shadowed and canaried by the demo. "
                        "Trained on synthetic data only." if args.candidate else
                        "Card-transaction fraud classifier v2: the stateless fraud_txn v1 features plus online features "
                        "(batch sets card_profile and merchant_risk from Redis, streaming card_activity windowed "
                        "aggregations). Trained on synthetic data only."),
        "framework": {"name": "scikit-learn", "estimator": type(clf).__name__, "format": "onnx",
                      "opset": {imp.domain or "ai.onnx": imp.version for imp in onx.opset_import},
                      "versions": {"python": platform.python_version(), "numpy": np.__version__,
                                   "scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
                                   "onnx": onnx.__version__, "onnxruntime": ort.__version__}},
        "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "createdBy": "scripts/train-model.sh --v2" + (" --candidate" if args.candidate else ""),
        "trainingData": {"version": f"fraud-online-synthetic/spec-{spec_sha[:8]}/seed-{args.seed}/rows-{args.rows}/sessions-{args.session}/batch-seed-{BATCH['seed']}",
                         "generator": "synthetic (models/train/train_fraud.py FraudGenerator), sessions with fresh streaming state",
                         "spec": rel(args.spec), "specSha256": spec_sha, "seed": args.seed, "rows": args.rows,
                         "sessionEvents": args.session, "fraudRate": round(float(y.mean()), 6),
                         "batchFeatures": {"generator": "models/train/train_fraud_v2.py batch_tables", **BATCH,
                                           "files": ["../2/features/card_profile.csv", "../2/features/merchant_risk.jsonl"] if args.candidate
                                                    else ["features/card_profile.csv", "features/merchant_risk.jsonl"],
                                           "cardRows": len(cards), "merchantRows": len(merchants)},
                         "split": {"method": "random permutation (numpy default_rng(seed))", "train": int(len(train_idx)),
                                   "test": int(len(test_idx)), "testFraction": args.test_fraction}},
        "hyperparameters": hyper,
        "metrics": metrics,
        "features": {"set": VECTOR_SET, "version": VECTOR_VERSION, "names": names, "definitions": definitions(online.fx.names)},
        "inputs": [{"name": "float_input", "type": "float32", "shape": [-1, nf]}],
        "outputs": [{"name": "label", "type": "int64", "shape": [-1]}, {"name": "probabilities", "type": "float32", "shape": [-1, 2]}],
        "score": {"output": "probabilities", "index": 1},
        "threshold": 0.5,
        "goldenSet": {"path": "golden.jsonl", "rows": len(golden), "seed": args.golden_seed, "ordered": True,
                      "note": "one event stream in order, fresh streaming state; replay in order to compare"},
        "timings": {"dataSeconds": round(t_data - t0, 2), "fitSeconds": round(t_fit - t_data, 2),
                    "totalSeconds": round(time.perf_counter() - t0, 2)},
        "sizeBytes": os.path.getsize(model_path),
        "sha256": sha256_file(model_path),
    }
    # Drift baseline (models/train/baseline.py): feature and score distributions of the training split.
    from baseline import reference_profile
    card["monitoring"] = {"baseline": reference_profile(
        X[train_idx], names, score(X[train_idx]),
        f"training split ({len(train_idx)} rows) of {card['trainingData']['version']}; scores from model.onnx sha256 {card['sha256'][:12]}")}
    with open(os.path.join(args.out_dir, "model.json"), "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"wrote {rel(args.out_dir)}: model.onnx, model.json, golden.jsonl ({len(golden)} rows)"
          f"{'' if args.candidate else ', confidence.jsonl, features/'} "
          f"({len(cards)} cards, {len(merchants)} merchants); total {card['timings']['totalSeconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
