#!/usr/bin/env node
/**
 * Summarises a V8 sampling heap profile (.heapprofile, e.g. one step's from BENCH_HEAP_SAMPLE_DIR):
 * sampled bytes per allocation site (the allocating function), largest first, then per the nearest
 * frame of this repository's code above it (src/, bench/ or examples/, not node_modules) — which
 * of our functions the bytes are allocated for, library frames included.
 *   node bench/tools/heap-sites.js FILE.heapprofile [TOP]
 */
'use strict';
const fs = require('node:fs');

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/tools/heap-sites.js FILE.heapprofile [TOP]');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 20);
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));

const frameName = (f) => `${f.functionName || '(anonymous)'} ${f.url ? f.url.replace(/^.*?\/(node_modules|src|bench|examples)\//, '$1/') : '(native)'}:${f.lineNumber + 1}`;
const ours = (f) => /\/(src|bench|examples)\//.test(f.url) && !f.url.includes('/node_modules/');

const bySite = new Map();
const byOurs = new Map();
let total = 0;
const add = (map, key, n) => map.set(key, (map.get(key) ?? 0) + n);
// Depth-first with the nearest own frame carried down (the tree can be deep: no recursion).
const stack = [{ node: profile.head, own: '(no frame of ours)' }];
while (stack.length) {
  const { node, own } = stack.pop();
  const here = ours(node.callFrame) ? frameName(node.callFrame) : own;
  if (node.selfSize) {
    total += node.selfSize;
    add(bySite, frameName(node.callFrame), node.selfSize);
    add(byOurs, here, node.selfSize);
  }
  for (const c of node.children ?? []) stack.push({ node: c, own: here });
}

const print = (title, map) => {
  console.log(title);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / total).toFixed(1).padStart(6)} %  ${(v / 1e6).toFixed(1).padStart(9)} MB  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} MB sampled`);
print('by allocating function:', bySite);
print('by the nearest frame of this repository above it:', byOurs);
