#!/usr/bin/env node
/*
 * Fixes kafkajs 2.2.4's read_committed filter of aborted transactions
 * (src/consumer/filterAbortedMessages.js), which delivered records of aborted transactions to
 * read_committed consumers after crashes of pipelines with several transactional producers per
 * output partition. Two defects, both found by the fault tests (Kafka's own console consumer saw
 * the committed records only, kafkajs saw more):
 *
 * 1. It activates at most one aborted transaction per record (`if`); it must activate every one
 *    whose first offset is behind the record (`while`), as Kafka's own consumer does: a fetch that
 *    starts after several aborted transactions began (several producers aborting on one partition).
 * 2. It walks the fetch's aborted-transaction list in the order the broker sends it and assumes
 *    that is first-offset order. The broker sends it in the order the transactions ENDED (the
 *    partition's transaction index is appended when an abort marker is written), so a transaction
 *    that began earlier but was aborted later sits behind one that began later: its records before
 *    the other's first offset were delivered. Kafka's consumer keeps the list in a priority queue by
 *    first offset; the patch sorts it by first offset.
 *
 * Run by `npm ci` (the package's prepare script) and idempotent; fails loudly if kafkajs changed.
 * Tested by test/unit/kafkajs-aborted-filter.test.ts.
 */
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(path.dirname(require.resolve('kafkajs/package.json')), 'src/consumer/filterAbortedMessages.js');
const patches = [
  {
    what: 'activate every aborted transaction behind a record',
    before: `    if (
      remainingAbortedTransactions.length &&
      Long.fromValue(message.offset).gte(remainingAbortedTransactions[0].firstOffset)
    ) {`,
    after: `    while (
      remainingAbortedTransactions.length &&
      Long.fromValue(message.offset).gte(remainingAbortedTransactions[0].firstOffset)
    ) { // patched by tributary scripts/patch-kafkajs.js`,
  },
  {
    what: 'walk aborted transactions in first-offset order',
    before: `  const remainingAbortedTransactions = [...abortedTransactions]
`,
    after: `  const remainingAbortedTransactions = [...abortedTransactions].sort((a, b) =>
    Long.fromValue(a.firstOffset).compare(Long.fromValue(b.firstOffset))
  ) // patched by tributary scripts/patch-kafkajs.js: the broker lists them in abort order
`,
  },
];
let text = fs.readFileSync(file, 'utf8');
const applied = [];
for (const p of patches) {
  if (text.includes(p.after)) continue;
  if (!text.includes(p.before)) {
    console.error(`patch-kafkajs: ${file} does not contain the expected code for "${p.what}"; check whether this kafkajs version still needs the aborted-transaction fixes`);
    process.exit(1);
  }
  text = text.replace(p.before, p.after);
  applied.push(p.what);
}
if (applied.length > 0) {
  fs.writeFileSync(file, text);
  console.log(`patch-kafkajs: read_committed filter of aborted transactions fixed (${applied.join('; ')})`);
}
