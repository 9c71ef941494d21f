// Regenerates src/client/generated/avro-types.ts from schemas/ (needs `npm run build` first).
const fs = require('node:fs');
const path = require('node:path');
const { SchemaCatalog } = require('../dist/kafka/avro-schemas');
const { generateTypes } = require('../dist/kafka/avro-typegen');
const root = path.resolve(__dirname, '..');
const out = path.join(root, 'src/client/generated/avro-types.ts');
fs.writeFileSync(out, generateTypes(new SchemaCatalog(path.join(root, 'schemas'))));
console.log(`wrote ${path.relative(root, out)}`);
