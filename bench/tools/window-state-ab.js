#!/usr/bin/env node
/**
 * The streaming window state alone (no Redis, no Kafka): the demo generator's events through one
 * EntityWindowState per card (score, then apply when not late), as the extract stage does between
 * its loads and commits. Prints ns per event per block of BLOCK events as the cards fill, and
 * alternates checkouts round by round so an A/B runs on the same machine state:
 *   node --expose-gc bench/tools/window-state-ab.js DIR [DIR...]
 * Each DIR is a checkout with bench:enrichment's build in bench/dist-enrichment (see BENCHMARKS.md,
 * "Enrichment CPU per event"). N (default 400,000), BLOCK (50,000), ROUNDS (3), SMALL (see below). The values held
 * are the raw amount (not amount_usd) and merchantId: the cost, not the features, is measured.
 * WRITES=<k> (default 0: none) also takes the writes of the states an event touched every k events,
 * as a stage's commit does once per batch (written as the commit message's bytes where the checkout
 * has PackWriter, else as the fragments' JSON texts; not sent anywhere).
 * HEAP_SNAPSHOT=<file> writes a heap snapshot of the last checkout's grown state at the end
 * (summarise with bench/tools/heap-by-type.js: what the collector has to trace).
 */
'use strict';
const path = require('node:path');

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error('usage: node --expose-gc bench/tools/window-state-ab.js DIR [DIR...]');
  process.exit(2);
}
const N = Number(process.env.N ?? 400000);
const BLOCK = Number(process.env.BLOCK ?? 50000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WRITES = Number(process.env.WRITES ?? 0);

for (let round = 0; round < ROUNDS; round++) {
  for (const dir of dirs) {
    const D = path.resolve(dir, 'bench/dist-enrichment');
    for (const k of Object.keys(require.cache)) delete require.cache[k];
    const ws = require(path.join(D, 'src/features/window-state.js'));
    let packer;
    try {
      packer = new (require(path.join(D, 'src/features/pack-writer.js')).PackWriter)();
    } catch {
      packer = undefined; // a checkout from before PackWriter: its takeWrites built the texts
    }
    const { valueNames, DEFAULT_SMALL_ENTITY_EVENTS } = require(path.join(D, 'src/features/streaming.js'));
    // SMALL: the small-entity limit for every checkout; else each checkout's own default (32 before it was exported).
    const SMALL = Number(process.env.SMALL ?? DEFAULT_SMALL_ENTITY_EVENTS ?? 32);
    const { loadTopology } = require(path.join(D, 'src/stages/load-topology.js'));
    const { builtinProcessors } = require(path.join(D, 'src/stages/builtin.js'));
    const { TransactionGenerator } = require(path.join(D, 'examples/fraud/generator.js'));
    const topology = loadTopology(path.resolve(dir, 'topologies/fraud-detection.yaml'), builtinProcessors());
    const set = topology.spec.features.sets.find((s) => s.name === 'card_activity');
    const names = valueNames(set);
    const plan = ws.setPlan(set, names, 60, 3_600_000);
    const gen = new TransactionGenerator({ seed: 42, startTime: 1.7e12 });
    const states = new Map();
    const row = [];
    const touched = new Set();
    let written = 0;
    for (let done = 0; done < N; done += BLOCK) {
      const events = gen.take(BLOCK).map((g) => g.tx);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < events.length; i++) {
        const tx = events[i];
        let st = states.get(tx.cardId);
        if (!st) states.set(tx.cardId, (st = new ws.EntityWindowState(plan, SMALL)));
        const t = tx.eventTime;
        st.score(t);
        if (!st.isLate(t)) st.apply(t, names.map((n) => String(n === 'amount_usd' ? tx.amount : (tx[n] ?? ''))));
        if (WRITES > 0) {
          touched.add(st);
          if (i % WRITES === WRITES - 1) {
            if (packer) {
              // The commit's own path: the changes written as MessagePack bytes (a checkout with PackWriter).
              packer.reset();
              for (const s of touched) if (s.changed) s.writeWrites(packer);
              written += packer.length;
            } else for (const s of touched) if (s.changed) written += s.takeWrites().set.length;
            touched.clear();
          }
        }
      }
      row.push(Number(process.hrtime.bigint() - t0) / BLOCK);
    }
    if (global.gc) global.gc();
    const mem = process.memoryUsage();
    const heapMB = mem.heapUsed / 1048576;
    const buffersMB = mem.arrayBuffers / 1048576;
    console.log(`round ${round} ${dir} (small ${SMALL}): ${row.map((x) => x.toFixed(0)).join(' ')} ns/event; heap ${heapMB.toFixed(0)} MB${WRITES > 0 ? ` (${packer ? `${(written / 1048576).toFixed(0)} MB` : `${written / 2} fragments`} written)` : ''} + typed arrays ${buffersMB.toFixed(0)} MB with ${states.size} cards held`);
    if (process.env.HEAP_SNAPSHOT && round === ROUNDS - 1 && dir === dirs[dirs.length - 1]) console.log(`heap snapshot: ${require('node:v8').writeHeapSnapshot(process.env.HEAP_SNAPSHOT)}`);
  }
}
