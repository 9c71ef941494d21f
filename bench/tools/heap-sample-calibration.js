#!/usr/bin/env node
/**
 * How far to trust BENCH_HEAP_SAMPLE_DIR's profiles (sampling heap profiler with
 * includeObjectsCollectedByMinorGC: false, i.e. "what survived the young generation"): one site
 * makes objects that all die young, another objects that are kept, and the profile's bytes per site
 * are printed against what each allocated. A site that only makes garbage should show ~0.
 *
 *   node --max-inlined-bytecode-size=0 bench/tools/heap-sample-calibration.js
 *
 * (No inlining, so that each allocation keeps its own function as its site.)
 */
const inspector = require('node:inspector');

const session = new inspector.Session();
session.connect();
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));

const ROUNDS = 200;
const GARBAGE_PER_ROUND = 20000;
const KEPT_PER_ROUND = 200;
const kept = [];

function diesYoung(i) {
  return { a: i, b: `x${i}`, c: [i, i + 1, i + 2] };
}
function isKept(i) {
  return { a: i, b: `y${i}`, c: [i, i + 1, i + 2] };
}

async function main() {
  await post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  let sink = 0;
  const before = process.memoryUsage().heapUsed;
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < GARBAGE_PER_ROUND; i++) sink += diesYoung(i).c.length;
    for (let i = 0; i < KEPT_PER_ROUND; i++) kept.push(isKept(i));
    await new Promise((resolve) => setImmediate(resolve)); // let scavenges run as tasks, as in a pipeline
  }
  const { profile } = await post('HeapProfiler.stopSampling');
  const bySite = {};
  const walk = (node) => {
    const name = node.callFrame.functionName || '(anonymous)';
    bySite[name] = (bySite[name] ?? 0) + node.selfSize;
    node.children.forEach(walk);
  };
  walk(profile.head);
  // Bytes each site allocated: the same shape per object, so the kept objects' share of heap growth scales it.
  const keptBytes = Math.max(1, process.memoryUsage().heapUsed - before);
  const perObject = keptBytes / kept.length;
  const rows = [
    ['diesYoung', ROUNDS * GARBAGE_PER_ROUND * perObject],
    ['isKept', ROUNDS * KEPT_PER_ROUND * perObject],
  ];
  for (const [site, allocated] of rows) {
    const shown = bySite[site] ?? 0;
    process.stdout.write(`${site.padEnd(10)} allocated ~${(allocated / 1e6).toFixed(1)} MB, profile shows ${(shown / 1e6).toFixed(2)} MB (${((100 * shown) / allocated).toFixed(1)} %)\n`);
  }
  if (sink < 0) process.stdout.write('\n');
}

main();
