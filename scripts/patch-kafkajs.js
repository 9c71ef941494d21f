#!/usr/bin/env node
/*
 * kafkajs 2.2.4 delivers records of aborted transactions to read_committed consumers when a fetch
 * holds several aborted transactions that began before the first record it returns (several
 * producers aborting on one partition: a crash of a pipeline with one transactional producer per
 * input partition). Its filter activates at most one aborted transaction per record
 * (src/consumer/filterAbortedMessages.js: `if`); it must activate every one whose first offset is
 * behind the record (`while`), as Kafka's own consumer does. Found by the fault tests: Kafka's
 * console consumer saw 1200 committed predictions where kafkajs saw 1218.
 *
 * Run by `npm ci` (the package's prepare script) and idempotent; fails loudly if kafkajs changed.
 */
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(path.dirname(require.resolve('kafkajs/package.json')), 'src/consumer/filterAbortedMessages.js');
const before = `    if (
      remainingAbortedTransactions.length &&
      Long.fromValue(message.offset).gte(remainingAbortedTransactions[0].firstOffset)
    ) {`;
const after = `    while (
      remainingAbortedTransactions.length &&
      Long.fromValue(message.offset).gte(remainingAbortedTransactions[0].firstOffset)
    ) { // patched by tributary scripts/patch-kafkajs.js`;
const text = fs.readFileSync(file, 'utf8');
if (text.includes(after)) process.exit(0);
if (!text.includes(before)) {
  console.error(`patch-kafkajs: ${file} does not contain the expected code; check whether this kafkajs version still needs the aborted-transaction fix`);
  process.exit(1);
}
fs.writeFileSync(file, text.replace(before, after));
console.log('patch-kafkajs: read_committed filter of aborted transactions fixed');
