#!/usr/bin/env node
/**
 * `npm run build`'s second step: compiles the fraud example's runner (examples/fraud/cli.ts, which
 * `tributary demo` / `produce-demo` run) into dist-examples/, when the folder is there. The engine's
 * own build (tsc -p tsconfig.build.json) never needs it: scripts/check-without-example.sh proves so.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tsconfig = path.join(root, 'examples/fraud/tsconfig.json');
if (!fs.existsSync(tsconfig)) {
  process.stdout.write('examples/fraud is absent: only the engine was built\n');
  process.exit(0);
}
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', tsconfig], { cwd: root, stdio: 'inherit' });
