#!/usr/bin/env node
/**
 * Writes a model version's labelled confidence set: `{ key, segment, features, label }` per line,
 * drawn from the seeded TypeScript generator (which knows each event's planted isFraud label) and
 * featurized by the same extractor the pipeline uses. Deterministic for a seed.
 *   npm run build && node scripts/gen-confidence-set.js [--seed 20261129] [--rows 5000] [--out models/fraud/1/confidence.jsonl]
 */
const fs = require('node:fs');
const path = require('node:path');
const { TransactionGenerator } = require('../dist-examples/examples/fraud/generator');
const { loadGeneratorSpec } = require('../dist-examples/examples/fraud/generator-spec');
const { loadFeatureDefinitions } = require('../dist/features/declarative/load');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const seed = Number(arg('seed', 20261129));
const rows = Number(arg('rows', 5000));
const out = path.resolve(arg('out', path.join(__dirname, '..', 'models', 'fraud', '1', 'confidence.jsonl')));

process.chdir(path.join(__dirname, '..'));
const spec = loadGeneratorSpec();
const generator = new TransactionGenerator({ seed, spec });
// The input schema is the fraud example's (examples/fraud/schemas/transaction.avsc).
const fx = loadFeatureDefinitions(path.join(__dirname, '..', 'models/fraud/features/fraud_txn.yaml'), { schemaSources: [path.join(__dirname, '..', 'examples', 'fraud', 'schemas')] });
const lines = [];
let positives = 0;
for (let i = 0; i < rows; i++) {
  const { tx, isFraud } = generator.next();
  // Float32 like the pipeline's feature matrix, printed shortest-exact.
  const features = Array.from(Float32Array.from(fx.extract(tx)));
  lines.push(JSON.stringify({ key: tx.transactionId, segment: { merchantCategory: tx.merchantCategory }, features, label: isFraud ? 1 : 0 }));
  if (isFraud) positives++;
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`${out}: ${rows} rows, ${positives} positive (seed ${seed})`);
