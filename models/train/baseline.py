#!/usr/bin/env python3
"""Reference profile (drift baseline) of a fraud model version, written into its model card.

    .venv/bin/python models/train/baseline.py --version 2     # models/fraud/2/model.json
    .venv/bin/python models/train/baseline.py --version 1     # models/fraud/1/model.json

Regenerates the version's training data exactly as its training script does (same generator spec,
seed, rows, sessions and batch tables as recorded in the card's trainingData), takes the training
split (same permutation), scores it with the committed model.onnx (its sha256 is checked; the file is
never rewritten) and sets `monitoring.baseline` in model.json; every other field stays as it is.

Profile, per feature and for the score (src/monitoring/reference.ts reads it):
  - numeric: bin edges at the training deciles (duplicates removed), bins (-inf, e1], (e1, e2], ...,
    (ek, +inf); the reference frequency of each bin; and the 0..100th percentiles (for the KS check).
  - categorical (at most `--max-categorical` distinct values: indicators, one-hot flags, small
    counts): the top-K values with their frequencies, plus the "other" frequency.
The training scripts call `reference_profile` too, so a retrained card carries its baseline.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def _r(x: float) -> float:
    return float(f"{float(x):.6g}")


def column_profile(x: np.ndarray, deciles: int = 10, top_k: int = 10, max_categorical: int = 12,
                   force_numeric: bool = False) -> Dict[str, Any]:
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    values, counts = np.unique(x, return_counts=True)
    if not force_numeric and len(values) <= max_categorical:
        order = np.argsort(-counts, kind="stable")[:top_k]
        top = [(float(values[i]), int(counts[i])) for i in order]
        other = n - sum(c for _, c in top)
        return {"kind": "categorical", "values": [v for v, _ in top],
                "frequencies": [_r(c / n) for _, c in top], "otherFrequency": _r(other / n)}
    qs = np.quantile(x, np.arange(1, deciles) / deciles)
    edges = sorted(set(_r(q) for q in qs))
    # (-inf, e1], (e1, e2], ..., (ek, +inf): searchsorted 'left' puts x == e_i into bin i.
    idx = np.searchsorted(np.array(edges), x, side="left")
    freq = np.bincount(idx, minlength=len(edges) + 1) / n
    pct = np.quantile(x, np.arange(0, 101) / 100)
    return {"kind": "numeric", "edges": edges, "frequencies": [_r(f) for f in freq],
            "percentiles": [_r(p) for p in pct], "mean": _r(x.mean()), "std": _r(x.std())}


def reference_profile(X: np.ndarray, names: Sequence[str], scores: np.ndarray, source: str) -> Dict[str, Any]:
    return {
        "generatedBy": "models/train/baseline.py",
        "source": source,
        "rows": int(len(X)),
        "binning": "numeric: training deciles, bins (-inf,e1],(e1,e2],...,(ek,+inf); categorical: top-10 values + other",
        "features": {name: column_profile(X[:, j]) for j, name in enumerate(names)},
        "score": column_profile(scores, force_numeric=True),
    }


def _training_data_v1(card: Dict[str, Any]) -> np.ndarray:
    from train_fraud import FeatureExtractor, FraudGenerator, load_spec
    td = card["trainingData"]
    spec = load_spec(os.path.join(REPO_ROOT, td["spec"]))
    fx, gen = FeatureExtractor(spec), FraudGenerator(spec, td["seed"])
    return fx.extract_many([gen.next()[0] for _ in range(td["rows"])])


def _training_data_v2(card: Dict[str, Any]) -> np.ndarray:
    from train_fraud import FraudGenerator, load_spec
    from train_fraud_v2 import OnlineFeatures, batch_tables
    td = card["trainingData"]
    spec = load_spec(os.path.join(REPO_ROOT, td["spec"]))
    cards, merchants = batch_tables(spec)
    online = OnlineFeatures(spec, cards, merchants)
    rows, session, seed = td["rows"], td["sessionEvents"], td["seed"]
    X = np.empty((rows, len(online.names)), dtype=np.float64)
    i = 0
    for s in range((rows + session - 1) // session):  # as train_fraud_v2.main
        gen = FraudGenerator(spec, seed * 100_003 + s)
        online.reset()
        drawn = [gen.next()[0] for _ in range(min(session, rows - i))]
        for ev, base in zip(drawn, online.fx.extract_many(drawn).tolist()):
            X[i] = online.vector(ev, base)
            i += 1
    return X


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", choices=["1", "2"], required=True)
    ap.add_argument("--model-dir", help="default models/fraud/<version>")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    out_dir = args.model_dir or os.path.join(REPO_ROOT, "models", "fraud", args.version)
    card_path = os.path.join(out_dir, "model.json")
    with open(card_path, encoding="utf-8") as f:
        card = json.load(f)
    with open(os.path.join(REPO_ROOT, card["trainingData"]["spec"]), "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != card["trainingData"]["specSha256"]:
            sys.exit("generator spec changed since training: retrain instead (scripts/train-model.sh)")
    model_path = os.path.join(out_dir, "model.onnx")
    with open(model_path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != card["sha256"]:
            sys.exit("model.onnx does not match the card's sha256")

    X = _training_data_v2(card) if args.version == "2" else _training_data_v1(card)
    td = card["trainingData"]
    perm = np.random.default_rng(td["seed"]).permutation(td["rows"])
    n_test = int(round(td["rows"] * td["split"]["testFraction"]))
    X_train = X[perm[n_test:]]
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    scores = sess.run(["probabilities"], {"float_input": X_train.astype(np.float32)})[0][:, 1]
    source = f"training split ({len(X_train)} rows) of {td['version']}; scores from model.onnx sha256 {card['sha256'][:12]}"
    card.setdefault("monitoring", {})["baseline"] = reference_profile(X_train, card["features"]["names"], scores, source)
    with open(card_path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"wrote monitoring.baseline into {os.path.relpath(card_path, REPO_ROOT)} ({len(X_train)} training rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
