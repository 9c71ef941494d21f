#!/usr/bin/env bash
# CI check (issue #14): the engine builds and its unit tests pass with an example folder deleted,
# so nothing outside the example depends on it (lint:layers checks the imports; this checks the build).
#
#   scripts/check-without-example.sh [EXAMPLE_DIR]      default examples/fraud
#
# Copies the committed tree (git ls-files) to a temp dir, deletes EXAMPLE_DIR there, then runs the
# build (tsc -p tsconfig.build.json) and the unit tests, minus the example's own tests
# (EXAMPLE_DIR/test and every unit test that imports EXAMPLE_DIR, directly or through helpers), against this checkout's
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
# Unit tests that belong to the example go with it: those that import it, directly or through a
# helper or bench module (dependency-cruiser's --reaches, resolved in this checkout, where it exists).
mapfile -t example_tests < <(npx depcruise test/unit --no-config --ts-config tsconfig.json --ts-pre-compilation-deps \
    --do-not-follow node_modules --reaches "^${EXAMPLE}/" --output-type json |
  node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); for (const m of r.modules) if (/^test\/unit\/.*\.test\.ts$/.test(m.source)) console.log(m.source);')
rm -rf "${WORK:?}/$EXAMPLE"
for t in "${example_tests[@]}"; do rm -f "$WORK/$t"; done

# A real build (dist/ in the copy): some unit tests run the built modules.
echo "== without $EXAMPLE: build"
(cd "$WORK" && npx tsc -p tsconfig.build.json)
echo "== without $EXAMPLE: unit tests (${#example_tests[@]} test files that import the example left out: ${example_tests[*]})"
(cd "$WORK" && npx jest --selectProjects unit)
