#!/usr/bin/env bash
# CI check (issue #14): the engine builds and its unit tests pass with an example folder deleted,
# so nothing outside the example depends on it (lint:layers checks the imports; this checks the build).
#
#   scripts/check-without-example.sh [EXAMPLE_DIR]      default examples/fraud
#
# Copies the committed tree (git ls-files) to a temp dir, deletes EXAMPLE_DIR there, then runs the
# build (tsc -p tsconfig.build.json) and the unit tests, minus the example's own tests
# (EXAMPLE_DIR/test and any test file that imports from EXAMPLE_DIR), against this checkout's
# node_modules. Run by .ci/run (for examples/fraud and examples/iot) before `npm test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLE="${1:-examples/fraud}"
cd "$ROOT"
if [ ! -d "$EXAMPLE" ]; then
  echo "error: $EXAMPLE does not exist" >&2
  exit 2
fi
if [ ! -d node_modules ]; then
  echo "error: run npm ci first (the check reuses this checkout's node_modules)" >&2
  exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tributary-no-example-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
rm -rf "${WORK:?}/$EXAMPLE"
echo "== without $EXAMPLE: build"
(cd "$WORK" && npx tsc -p tsconfig.build.json --noEmit)

# Unit tests that belong to the example (they import from it) go with it.
mapfile -t example_tests < <(cd "$WORK" && grep -rlE "from '(\.\./)+${EXAMPLE}/" test/unit || true)
for t in "${example_tests[@]}"; do rm -f "$WORK/$t"; done
echo "== without $EXAMPLE: unit tests (${#example_tests[@]} example test files left out)"
(cd "$WORK" && npx jest --selectProjects unit)
