#!/usr/bin/env node
/**
 * Summarises a V8 heap snapshot (.heapsnapshot): self bytes and count per node type and
 * constructor name, largest first — what a grown process holds, without a browser.
 *   node bench/tools/heap-by-type.js FILE.heapsnapshot [TOP]
 */
'use strict';
const fs = require('node:fs');

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/tools/heap-by-type.js FILE.heapsnapshot [TOP]');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 30);
const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
const meta = snap.snapshot.meta;
const fields = meta.node_fields;
const types = meta.node_types[0];
const F = fields.length;
const iType = fields.indexOf('type');
const iName = fields.indexOf('name');
const iSize = fields.indexOf('self_size');
const byKey = new Map();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += F) {
  const type = types[snap.nodes[i + iType]];
  // Strings, numbers and arrays are named by their content: group them by type alone.
  const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + iName]] : '';
  const key = `${type}${name ? ` ${name}` : ''}`;
  const size = snap.nodes[i + iSize];
  total += size;
  const e = byKey.get(key) ?? { key, count: 0, bytes: 0 };
  e.count++;
  e.bytes += size;
  byKey.set(key, e);
}
console.log(`${(total / 1048576).toFixed(1)} MiB in ${snap.nodes.length / F} nodes`);
for (const e of [...byKey.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top)) {
  console.log(`${(e.bytes / 1048576).toFixed(1).padStart(8)} MiB ${String(e.count).padStart(10)}  ${e.key.slice(0, 90)}`);
}
