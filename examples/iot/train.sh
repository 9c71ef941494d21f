#!/usr/bin/env bash
# Train the IoT example's model into examples/iot/models/sensor_anomaly/1 (model.onnx, model.json,
# golden.jsonl, confidence.jsonl, features/). Compiles the example's TypeScript generator (the one
# the demo produces with; the training script reads its JSON-lines output), then runs
# examples/iot/train/train_iot.py in the repository's pinned venv (scripts/train-model.sh) with the
# declarative-features package python/tributary_features (its requirements are part of the pinned
# training toolchain, models/train/requirements.txt).
#
#   examples/iot/train.sh [train_iot.py options]     e.g. --sessions 60 --seed 11
# After retraining, run the example's tests: the golden set and the card's sha256 change together.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
npx tsc -p examples/iot/tsconfig.json
exec "$ROOT/scripts/train-model.sh" --script "$ROOT/examples/iot/train/train_iot.py" "$@"
