#!/usr/bin/env node
/**
 * One entity's window state held small (sorted columns) against big (bucket summaries and
 * accumulators), per event once its window holds n events (n = 256, 1,024, 4,096 with 64 first to
 * warm up): the demo's card_activity set, 20 entities, events in event-time order (ORDER=in,
 * default) or up to 12 h out of order (ORDER=out). Where the limits of a small entity come from
 * (window-state.ts, IN_ORDER_BIG_EVENTS and smallEntityEvents). Since the switch exists, the
 * "small" entities of ORDER=in turn big past 128 events (the switch at work); BENCHMARKS.md item
 * 30's small-in-order figures were measured before it, with the same loop.
 * VALUES (default 50): distinct merchant values drawn from (0: every event a value of its own, as
 * a high-cardinality distinct slot such as a device id); DAYS (default 1): the days of event time
 * the events spread over (the set keeps 9 days, its distinct window is one):
 *   node bench/tools/window-state-order.js [DIR]     (DIR: a checkout with bench/dist-enrichment built)
 */
'use strict';
const path = require('path');
const D = path.resolve(process.argv[2] || '.', 'bench/dist-enrichment');
const ws = require(path.join(D, 'src/features/window-state.js'));
const { valueNames } = require(path.join(D, 'src/features/streaming.js'));
const { loadTopology } = require(path.join(D, 'src/stages/load-topology.js'));
const { builtinProcessors } = require(path.join(D, 'src/stages/builtin.js'));
const topology = loadTopology(path.resolve(process.argv[2] || '.', 'topologies/fraud-detection.yaml'), builtinProcessors());
const set = topology.spec.features.sets.find((s) => s.name === 'card_activity');
const names = valueNames(set);
const plan = ws.setPlan(set, names, 60, 3_600_000);
const DAY = 86_400_000;
const order = process.env.ORDER || 'in';
const VALUES = Number(process.env.VALUES ?? 50);
const DAYS = Number(process.env.DAYS ?? 1);
for (const n of [64, 256, 1024, 4096]) {
  const row = [];
  for (const small of [0, 1e9]) {
    const ents = [];
    for (let e = 0; e < 20; e++) ents.push(new ws.EntityWindowState(plan, small));
    const spacing = Math.floor((DAYS * DAY - 3_600_000) / n);
    let t = 1.7e12;
    const M = 20 * n * 3;
    let x = 7;
    const t0 = process.hrtime.bigint();
    let tm = 0n;
    for (let i = 0; i < M; i++) {
      const st = ents[i % 20];
      if (i % 20 === 0) t += spacing;
      x = (x * 48271) % 2147483647;
      const te = order === 'in' ? t : t - (x % 43_200_000);
      if (i === 20 * n) tm = process.hrtime.bigint(); // measure the last 2n events per entity (window full)
      st.score(te);
      if (!st.isLate(te)) st.apply(te, [String(10 + (x % 97)), VALUES > 0 ? `m${x % VALUES}` : `m${i}`]);
    }
    const t1 = process.hrtime.bigint();
    row.push(`${small ? 'small' : 'big'} ${(Number(t1 - tm) / (M - 20 * n) / 1000).toFixed(2)} µs`);
  }
  console.log(`n=${n} ${order}-order: ${row.join(', ')}`);
}
