// Preloaded (`node -r`) into onnxruntime-node's install script by test/unit/execution-providers.test.ts:
// replaces its download step with a report (JSON list of the files it would install) so the test
// learns what an install would fetch without fetching anything.
'use strict';
const path = require('node:path');
const utilsPath = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'script', 'install-utils.js');
const utils = require(utilsPath);
utils.installPackages = async (_packages, manifests) => {
  process.stdout.write(JSON.stringify(manifests.map((m) => m.filepath)));
  process.exit(0);
};
