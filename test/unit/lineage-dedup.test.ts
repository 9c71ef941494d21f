import fc from 'fast-check';
import type { KafkaMessage } from 'kafkajs';
import { Chain } from '../../src/engine/chain';
import { DEDUP_METADATA_PREFIX, DedupStateError, LineageDedup } from '../../src/engine/lineage-dedup';
import { KEY_HEADER, LINEAGE_HEADER, lineageHeader, repartitionProcessor } from '../../src/engine/repartition';
import { RecordRejection } from '../../src/kafka/dead-letter';
import { effectiveTopology } from '../../src/stages/pipeline';
import { createLogger } from '../../src/util/logger';
import { topologyErrorFor } from '../helpers/topology-errors';
import { twoEntityExtract } from '../helpers/two-entities';
import { loadTopology } from '../../src/stages/load-topology';
import { DEMO_TOPOLOGY, LOAD_OPTIONS } from '../helpers/topology-errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';

const rec = (topic: string, partition: number, offset: number, consumed = 0): KafkaMessage => ({ key: null, value: null, timestamp: '0', offset: String(consumed), headers: { [LINEAGE_HEADER]: Buffer.from(lineageHeader({ topic, partition, offset })) } }) as unknown as KafkaMessage;

describe('LineageDedup (reading a deduplicated repartition hop)', () => {
  it('keeps the first record of each original position and skips copies at or below the highest offset seen, per source partition', () => {
    const d = new LineageDedup();
    expect([rec('in', 0, 5), rec('in', 1, 3), rec('in', 0, 6), rec('in', 0, 5), rec('in', 1, 3), rec('other', 0, 1), rec('in', 1, 4)].map((m) => d.keep(m))).toEqual([true, true, true, false, false, true, true]);
    expect(d.skipped).toBe(2);
    // A record without lineage is never a copy.
    const plain = { key: null, value: null, timestamp: '0', offset: '9', headers: {} } as unknown as KafkaMessage;
    expect(d.keep(plain)).toBe(true);
    expect(d.keep(plain)).toBe(true);
  });

  it('round-trips through commit metadata; foreign or absent metadata is an empty state; bad state and state past Kafka\'s metadata limit are errors', () => {
    const d = new LineageDedup();
    d.keep(rec('in', 0, 5));
    d.keep(rec('in', 2, 17));
    const text = d.snapshot();
    expect(text.startsWith(DEDUP_METADATA_PREFIX)).toBe(true);
    const back = LineageDedup.restore(text);
    expect(back.keep(rec('in', 0, 5))).toBe(false);
    expect(back.keep(rec('in', 2, 17))).toBe(false);
    expect(back.keep(rec('in', 2, 18))).toBe(true);
    expect(back.keep(rec('in', 1, 0))).toBe(true);
    expect(LineageDedup.restore(null).keep(rec('in', 0, 5))).toBe(true);
    expect(LineageDedup.restore('someone else').keep(rec('in', 0, 5))).toBe(true);
    expect(() => LineageDedup.restore(`${DEDUP_METADATA_PREFIX}{`)).toThrow(DedupStateError);
    const big = new LineageDedup();
    for (let p = 0; p < 400; p++) big.keep(rec('a-rather-long-input-topic-name', p, 123456789));
    expect(() => big.snapshot()).toThrow(/offset.metadata.max.bytes/);
  });

  /**
   * The invariant the hop's writers keep: each writer (an owner, a zombie after a rebalance, a
   * successor after a crash) writes a contiguous run of one input partition from a committed
   * offset, in offset order, each record to its entity's repartition partition; writers of one
   * input partition interleave arbitrarily. The reader, restarting from committed positions with
   * the committed state, sees every input record exactly once, in offset order per (input
   * partition, repartition partition).
   */
  it('property: whatever restarts, zombies and interleavings the writers go through, the reader sees every record once and in order', () => {
    const scenario = fc.record({
      inputs: fc.integer({ min: 1, max: 3 }),
      records: fc.integer({ min: 1, max: 40 }),
      partitions: fc.integer({ min: 1, max: 3 }),
      writers: fc.array(fc.record({ input: fc.nat(), from: fc.nat(), length: fc.nat({ max: 30 }) }), { minLength: 1, maxLength: 8 }),
      schedule: fc.array(fc.nat(), { maxLength: 400 }),
      readerCommits: fc.array(fc.nat(), { maxLength: 10 }),
    });
    fc.assert(
      fc.property(scenario, (s) => {
        const entityOf = (input: number, offset: number) => (input * 7 + offset * 13) % s.partitions;
        // Committed input offset per input partition, moving forward as writers finish.
        const committed = new Array<number>(s.inputs).fill(0);
        const logs: { input: number; offset: number }[][] = Array.from({ length: s.partitions }, () => []);
        // Each writer: a contiguous run from the committed offset of its input partition when it starts.
        type W = { input: number; next: number; end: number };
        const live: W[] = [];
        const start = (w: { input: number; from: number; length: number }) => {
          const input = w.input % s.inputs;
          const from = Math.min(committed[input], s.records);
          live.push({ input, next: from, end: Math.min(s.records, from + w.length) });
        };
        let pending = [...s.writers];
        start(pending.shift()!);
        for (const pick of s.schedule) {
          if (live.length === 0) break;
          const w = live[pick % live.length];
          if (w.next < w.end) {
            logs[entityOf(w.input, w.next)].push({ input: w.input, offset: w.next });
            w.next += 1;
            // A writer commits what it wrote (sometimes), then a new writer may start (a restart or a rebalance; the old one goes on as a zombie).
            if (pick % 3 === 0) committed[w.input] = Math.max(committed[w.input], w.next);
          }
          if (pick % 5 === 0 && pending.length > 0) start(pending.shift()!);
        }
        // Finally the last owners write everything up to the end, from the committed offsets.
        for (let input = 0; input < s.inputs; input++) for (let o = committed[input]; o < s.records; o++) logs[entityOf(input, o)].push({ input, offset: o });
        pending = [];

        const seen: string[] = [];
        logs.forEach((log, r) => {
          const messages = log.map((x) => rec('in', x.input, x.offset));
          // The reader restarts at some committed positions with the state committed there.
          const stops = [...new Set(s.readerCommits.map((c) => c % (messages.length + 1)))].sort((a, b) => a - b);
          let dedup = new LineageDedup();
          let at = 0;
          const kept: { input: number; offset: number }[] = [];
          for (const stop of [...stops, messages.length]) {
            for (; at < stop; at++) if (dedup.keep(messages[at])) kept.push(log[at]);
            dedup = LineageDedup.restore(dedup.snapshot());
          }
          for (let input = 0; input < s.inputs; input++) {
            const mine = kept.filter((k) => k.input === input).map((k) => k.offset);
            expect(mine).toEqual([...mine].sort((a, b) => a - b));
          }
          for (const k of kept) seen.push(`${k.input}:${k.offset}:${r}`);
        });
        const want: string[] = [];
        for (let input = 0; input < s.inputs; input++) for (let o = 0; o < s.records; o++) want.push(`${input}:${o}:${entityOf(input, o)}`);
        expect(seen.sort()).toEqual(want.sort());
      }),
      { numRuns: 300 },
    );
  });
});

describe('deduplicated hop: configuration and forwarding', () => {
  it('the planner marks the hop edge deduplicated; a stage chained over two entities refuses it with the field path', () => {
    const doc = parse(fs.readFileSync(DEMO_TOPOLOGY, 'utf8'));
    doc.stages[0].repartition = { delivery: 'deduplicated' };
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'topo-')), 'dedup.yaml');
    fs.writeFileSync(tmp, stringify(doc));
    const eff = effectiveTopology(loadTopology(tmp, LOAD_OPTIONS));
    expect(eff.edges.map((e) => [e.stage, e.delivery])).toEqual([['extract', 'deduplicated']]);
    expect(topologyErrorFor((d) => (d.stages[0].repartition = { delivery: 'exactly-twice' }))).toMatch(/stages\[0\]\.repartition\.delivery/);
    expect(
      topologyErrorFor((d) => {
        twoEntityExtract(d);
        d.stages[0].repartition = { delivery: 'deduplicated' };
      }),
    ).toMatch(/stages\[0\]\.repartition\.delivery: deduplicated is for a stage repartitioned by one entity/);
  });

  it('the hop forwards a record it cannot decode unchanged under its original key, with its lineage, instead of dead-lettering it', async () => {
    const bad = new RecordRejection('NOT_AVRO', 'not avro');
    const step = await repartitionProcessor.create({ field: 'cardId' }, {} as never);
    const chain = new Chain({
      stages: [{ spec: { name: 'x-repartition', processor: 'repartition', input: { topic: 'in' }, output: { topic: 'rep' }, config: {} }, processor: step, encoder: { encodeWithId: () => Buffer.from('x') } as never, schemaId: 1, passthroughValue: true, forwardRejected: true }],
      decoder: { decode: async () => bad } as never,
      deadLetterMaxValueBytes: 1000,
      log: createLogger('test'),
    });
    const message = { key: Buffer.from('t-1'), value: Buffer.from('garbage'), timestamp: '1234', offset: '41', headers: { 'x-request-id': Buffer.from('r1') } } as unknown as KafkaMessage;
    const [r] = await chain.process('in', 2, [message]);
    expect(r.rejection).toBeUndefined();
    expect(r.outputs).toHaveLength(1);
    const out = r.outputs[0];
    expect(out.topic).toBe('rep');
    expect(out.message.key!.toString()).toBe('t-1');
    expect(out.message.value!.toString()).toBe('garbage');
    expect(out.message.timestamp).toBe('1234');
    const headers = out.message.headers as Record<string, Buffer | string>;
    expect(JSON.parse(headers[LINEAGE_HEADER].toString())).toEqual({ topic: 'in', partition: 2, offset: 41 });
    expect(headers[KEY_HEADER].toString()).toBe('t-1');
    expect(headers['x-request-id'].toString()).toBe('r1');
  });
});
