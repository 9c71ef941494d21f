#!/usr/bin/env node
/**
 * Inference pool throughput vs one in-process session, from the compiled dist/ (run `npm run build` first).
 *   node scripts/bench-inference-pool.js [--rows 200000] [--request 100] [--inflight 8]
 * Rows are the golden set's feature vectors repeated; requests of `--request` rows are kept
 * `--inflight` at a time (like consumer chunks arriving from several partitions).
 */
const fs = require('node:fs');
const path = require('node:path');
const { Registry } = require('prom-client');
const { OnnxModel } = require('../dist/inference/onnx-model');
const { InferencePool } = require('../dist/inference/pool');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('rows', 200000);
const REQUEST = arg('request', 100);
const INFLIGHT = arg('inflight', 8);
const dir = path.join(__dirname, '..', 'models', 'fraud', '1');
const golden = fs.readFileSync(path.join(dir, 'golden.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).features);
const width = golden[0].length;
const request = new Float32Array(REQUEST * width);
for (let i = 0; i < REQUEST; i++) request.set(golden[i % golden.length], i * width);

async function drive(score) {
  const n = Math.ceil(ROWS / REQUEST);
  let next = 0;
  const t0 = performance.now();
  const lanes = Array.from({ length: INFLIGHT }, async () => {
    while (next < n) {
      next += 1;
      await score(request.slice(), REQUEST);
    }
  });
  await Promise.all(lanes);
  const s = (performance.now() - t0) / 1000;
  return { rowsPerSecond: Math.round((n * REQUEST) / s), seconds: +s.toFixed(2) };
}

(async () => {
  const results = {};
  for (const threads of [1, 2]) {
    const model = await OnnxModel.loadDir(dir, { intraOpNumThreads: threads });
    await drive((r, c) => model.score(r, c)); // warm
    results[`single session, intraOp ${threads}`] = await drive((r, c) => model.score(r, c));
    await model.close();
  }
  for (const [workers, batch, delay] of [[1, 256, 0], [2, 256, 0], [2, 1024, 1], [2, 256, 2]]) {
    const pool = await InferencePool.start({ dir, workers, maxBatchSize: batch, maxQueueDelayMs: delay, intraOpNumThreads: 1, registry: new Registry() });
    await drive((r, c) => pool.submit(r, c));
    results[`pool ${workers} workers, maxBatch ${batch}, delay ${delay} ms`] = await drive((r, c) => pool.submit(r, c));
    await pool.close();
  }
  console.log(JSON.stringify({ rows: ROWS, requestRows: REQUEST, inflight: INFLIGHT, cpus: require('node:os').cpus().length, results }, null, 2));
})();
