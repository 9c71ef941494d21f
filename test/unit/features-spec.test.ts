import * as path from 'node:path';
import { cardProblems, describeVector } from '../../src/features/enricher';
import { extractionBase } from '../../src/stages/extraction';
import { LruCache } from '../../src/features/lru';
import { progressLine, splitCsv, toRow } from '../../src/features/load-file';
import type { BatchFeatureSetSpec } from '../../src/features/spec';
import { readModelCard } from '../../src/inference/model-card';
import { repoRoot } from '../../src/stack/paths';
import { loadTopology } from '../../src/stages/load-topology';

import { DEMO_TOPOLOGY, LOAD_OPTIONS, topologyErrorFor } from '../helpers/topology-errors';
const file = DEMO_TOPOLOGY;
const options = LOAD_OPTIONS;

const errorFor = topologyErrorFor;

describe('feature declarations and the model card (version sync)', () => {
  it('the demo topology supplies exactly what model 2 asks for', () => {
    const t = loadTopology(file, options);
    const cfg = t.spec.stages[0].config as never;
    const v = describeVector(cfg, t.spec.features, extractionBase(cfg, { topology: t }));
    const card = readModelCard(path.join(repoRoot(), 'models/fraud/2'));
    expect(cardProblems(card.features as never, v)).toEqual([]);
    expect(v.names).toEqual(card.features.names);
  });

  it('fails at start naming a missing feature, another set version and another type', () => {
    const missing = errorFor((d) => d.features.sets[2].fields.splice(1, 1));
    expect(missing).toMatch(/stages\[1\]\.config\.model: model fraud@2 cannot be fed by stage 'extract': missing features: card_amount_sum_24h/);
    expect(errorFor((d) => (d.features.sets[0].version = 2))).toMatch(/feature 'card_age_days': set 'card_profile' is version 2, card wants 1/);
    expect(errorFor((d) => (d.features.sets[0].fields[2].type = 'double'))).toMatch(/feature 'card_prior_chargebacks' has type double, card wants long/);
  });

  it('reports bad declarations with their exact path', () => {
    expect(errorFor((d) => (d.features.sets[2].fields[1].of = 'amount_eur'))).toMatch(/features\.sets\[2\]\.fields\[1\]\.of: 'amount_eur' is neither an event field nor a base feature/);
    expect(errorFor((d) => (d.features.sets[0].entity = 'card'))).toMatch(/features\.sets\[0\]\.entity: event has no field 'card'/);
    expect(errorFor((d) => (d.features.sets[2].fields[0].aggregation = 'median'))).toMatch(/features\.sets\[2\]\.fields\[0\]\.aggregation: must be one of/);
    expect(errorFor((d) => (d.features.sets[2].config.allowedLatenessMs = 'soon'))).toMatch(/features\.sets\[2\]\.config\.allowedLatenessMs: must be integer/);
    expect(errorFor((d) => (d.stages[0].config.features = ['card_profile', 'nope']))).toMatch(/stages\[0\]\.config\.features: no feature set 'nope'/);
  });

  it('checks a streaming set\'s durability (replicas to WAIT for) with the bad field\'s path', () => {
    expect(errorFor((d) => (d.features.sets[2].config.durability = { replicas: 0 }))).toMatch(/features\.sets\[2\]\.config\.durability\.replicas: must be >= 1/);
    expect(errorFor((d) => (d.features.sets[2].config.durability = { timeoutMs: 100 }))).toMatch(/features\.sets\[2\]\.config\.durability\.replicas: is required/);
    expect(errorFor((d) => (d.features.sets[2].config.durability = { replicas: 1, timeoutMs: 0 }))).toMatch(/features\.sets\[2\]\.config\.durability\.timeoutMs: must be >= 1/);
    expect(errorFor((d) => (d.features.sets[2].config.durability = { replicas: 1, timeout: 5 }))).toMatch(/features\.sets\[2\]\.config\.durability\.timeout: is not a known field/);
  });
});

describe('feature store helpers', () => {
  it('LRU evicts the least recently used entry, expires by TTL and counts hits/misses', () => {
    let now = 0;
    const c = new LruCache<number>(2, 100, () => now);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('c', 3); // evicts b
    expect(c.get('b')).toBeUndefined();
    now = 150;
    expect(c.get('a')).toBeUndefined();
    expect([c.hits, c.misses]).toEqual([1, 2]);
  });

  it('refuses a bad stateCache bound at load, naming the field', () => {
    expect(errorFor((d) => (d.stages[0].config.stateCache = { maxBytes: 0 }))).toMatch(/stateCache\.maxBytes|stateCache\/maxBytes/);
    expect(errorFor((d) => (d.stages[0].config.stateCache = { maxEntries: 10, bytes: 5 }))).toMatch(/stateCache/);
  });

  it('an LRU bounded by weight drops the least recent entries as held ones grow, never the one just touched', () => {
    const c = new LruCache<string>(100, Infinity, Date.now, 100);
    c.set('a', 'a', 40);
    c.set('b', 'b', 40);
    expect(c.weight).toBe(80);
    c.get('a'); // b is now the least recent
    c.reweigh('a', 70); // 110 > 100: b goes
    expect([c.get('b'), c.get('a'), c.weight, c.evictions]).toEqual([undefined, 'a', 70, 1]);
    c.set('c', 'c', 500); // alone over the bound: a goes, c stays
    expect([c.get('a'), c.get('c'), c.size, c.weight, c.evictions]).toEqual([undefined, 'c', 1, 500, 2]);
    c.reweigh('c', 10);
    c.set('d', 'd', 10);
    c.delete('c');
    expect([c.size, c.weight]).toEqual([1, 10]);
  });

  it('parses CSV cells and typed rows, naming the bad field', () => {
    expect(splitCsv('a,"b,c","d""e",')).toEqual(['a', 'b,c', 'd"e', '']);
    const set: BatchFeatureSetSpec = { name: 's', kind: 'redis_batch', version: 1, entity: 'id', config: {}, fields: [{ name: 'n', type: 'long', default: 0 }, { name: 'b', type: 'boolean', default: false }] };
    expect(toRow(set, { id: 'x', ts: '5', n: '3', b: 'true' })).toEqual({ entity: 'x', ts: 5, values: { n: 3, b: 1 } });
    expect(() => toRow(set, { id: 'x', ts: '5', n: '3.5' })).toThrow(/n: 3.5 is not an integer/);
    expect(() => toRow(set, { id: 'x{1}', ts: '5' })).toThrow(/not allowed/);
    expect(progressLine({ rows: 50, total: 100, bad: 0, elapsedMs: 1000 }, 10)).toBe('[#####.....] 50.0% 50/100 rows  50 rows/s  ETA 0:01');
  });
});
