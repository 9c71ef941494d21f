#!/usr/bin/env bash
# Train the demo fraud model and write models/fraud/1/{model.onnx,model.json,golden.jsonl}.
#
#   scripts/train-model.sh [train_fraud.py options]     e.g. --rows 100000 --seed 11
#   scripts/train-model.sh --v2 [train_fraud_v2.py options]   version 2 (online features) into models/fraud/2
#   scripts/train-model.sh --script FILE [options]            another training script (e.g. an example's,
#                                                             examples/iot/train.sh) in the same venv
#
# Creates ./.venv (git-ignored) with `python3 -m venv` on first use and installs the pinned
# toolchain from models/train/requirements.txt, which includes python/requirements.txt (the features
# package the trainers compute fraud_txn with; re-installed only when either file changes).
# Set PYTHON to choose the interpreter (default python3, needs >= 3.9).
# After retraining, run the unit tests: the golden set and the model card's sha256 change together.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
REQS="$ROOT/models/train/requirements.txt"

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 9):
    sys.exit(f"python >= 3.9 required, found {sys.version.split()[0]}")
PY

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.tributary-requirements.sha256"
want="$(cat "$REQS" "$ROOT/python/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing $(basename "$REQS") into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  echo "$want" > "$stamp"
fi

start=$(date +%s)
if [ "${1:-}" = "--script" ]; then
  script="$2"
  shift 2
  "$VENV/bin/python" "$script" "$@"
elif [ "${1:-}" = "--v2" ]; then
  shift
  "$VENV/bin/python" "$ROOT/models/train/train_fraud_v2.py" "$@"
else
  "$VENV/bin/python" "$ROOT/models/train/train_fraud.py" "$@"
fi
echo "training finished in $(( $(date +%s) - start ))s"
