// Regenerates the TypeScript types of the Avro schemas (needs `npm run build` first):
//   schemas/ (the package's own: dead letters, feature vectors, predictions, ...) -> src/client/generated/avro-types.ts
//   examples/<name>/schemas/ (an example's input events)                         -> examples/<name>/generated/avro-types.ts
// An example's types stay in the example: the engine never sees them (.dependency-cruiser.cjs).
const fs = require('node:fs');
const path = require('node:path');
const { SchemaCatalog } = require('../dist/kafka/avro-schemas');
const { generateTypes } = require('../dist/kafka/avro-typegen');
const root = path.resolve(__dirname, '..');

function write(schemasDir, out, catalog) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, generateTypes(catalog, path.relative(root, schemasDir)));
  console.log(`wrote ${path.relative(root, out)}`);
}

write(path.join(root, 'schemas'), path.join(root, 'src/client/generated/avro-types.ts'), new SchemaCatalog(path.join(root, 'schemas'), []));
const examples = path.join(root, 'examples');
for (const name of fs.existsSync(examples) ? fs.readdirSync(examples).sort() : []) {
  const dir = path.join(examples, name, 'schemas');
  // Only the example's own schemas (no fallback to the package's): their types are not repeated.
  if (fs.existsSync(dir)) write(dir, path.join(examples, name, 'generated/avro-types.ts'), new SchemaCatalog(dir, []));
}
