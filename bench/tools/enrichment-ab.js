#!/usr/bin/env node
/**
 * bench:enrichment for several checkouts, alternated round by round on the same Redis, so an A/B
 * sees the same machine state (this host's speed moves 3x between hours: compare within a run):
 *   node bench/tools/enrichment-ab.js DIR [DIR...]
 * Each DIR is a checkout with bench:enrichment's build in bench/dist-enrichment (see BENCHMARKS.md,
 * "Enrichment CPU per event"). ROUNDS (default 3); the bench's own variables pass through, with
 * defaults BENCH_SIZES=100, BENCH_MODES=full,full-lru, BENCH_FLAT=0, BENCH_REFERENCE=0 (REDIS_URL,
 * or the running local stack's). Prints one line per row and round, then the median per checkout,
 * and writes the rows to bench/results/enrichment-ab-<time>.json.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error('usage: node bench/tools/enrichment-ab.js DIR [DIR...]');
  process.exit(2);
}
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const env = { BENCH_SIZES: '100', BENCH_MODES: 'full,full-lru', BENCH_FLAT: '0', BENCH_REFERENCE: '0', ...process.env };
const fields = ['eventsPerSec', 'batchP50ms', 'batchP99ms', 'durableP50Ms', 'durableP99Ms', 'batchP99SteadyMs', 'batchP99NoGcMs', 'batchesHitByGcPct', 'redisCpuUsPerEvent', 'nodeCpuUsPerEvent', 'allocatedBytesPerEvent'];
const rows = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const dir of dirs) {
    const out = execFileSync(process.execPath, [path.resolve(dir, 'bench/dist-enrichment/bench/enrichment.js')], { cwd: path.resolve(dir), env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    for (const line of out.split('\n')) {
      if (!line.startsWith('{"mode"')) continue;
      const r = JSON.parse(line);
      rows.push({ dir, round, ...r });
      console.log(`round ${round} ${dir.padEnd(16)} ${r.mode.padEnd(40)} ${r.batchSize}: ${fields.filter((f) => r[f] !== undefined).map((f) => `${f} ${r[f]}`).join(', ')}`);
    }
    // Each run writes its own enrichment-<time>.json; the summary below is what this tool keeps.
    const written = /wrote (bench\/results\/enrichment-[^\s]+\.json)/.exec(out);
    if (written) fs.rmSync(path.resolve(dir, written[1]), { force: true });
  }
}
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.floor((s.length - 1) / 2)];
};
console.log('\nmedian per checkout:');
const summary = [];
for (const mode of [...new Set(rows.map((r) => `${r.mode}\u0000${r.batchSize}`))]) {
  for (const dir of dirs) {
    const mine = rows.filter((r) => r.dir === dir && `${r.mode}\u0000${r.batchSize}` === mode);
    const m = { dir, mode: mode.split('\u0000')[0], batchSize: Number(mode.split('\u0000')[1]) };
    for (const f of fields) m[f] = median(mine.map((r) => r[f]));
    summary.push(m);
    console.log(`${dir.padEnd(16)} ${m.mode.padEnd(40)} ${m.batchSize}: ${fields.filter((f) => m[f] !== null).map((f) => `${f} ${m[f]}`).join(', ')}`);
  }
}
const file = path.join('bench/results', `enrichment-ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, `${JSON.stringify({ dirs, rounds: ROUNDS, env: Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('BENCH_'))), loadAverage: fs.readFileSync('/proc/loadavg', 'utf8').trim(), rows, summary }, null, 1)}\n`);
console.log(`wrote ${file}`);
