import type { KafkaMessage } from 'kafkajs';
import { Chain, DONE_HEADER, type ChainStage } from '../../src/engine/chain';
import { RecordRejection } from '../../src/kafka/dead-letter';
import type { Processor } from '../../src/stages/processor';
import { createLogger } from '../../src/util/logger';

/**
 * A chain's records as sinks and counters see them: one object per record carries its trace as
 * counts (src/engine/chain.ts, EntryRecord); what it reports must be what happened, stage by stage.
 */
describe('chain records: trace, outputs and values', () => {
  const decoder = { decode: async (v: Buffer | null) => ({ n: Number(String(v)) }) } as never;
  const encoder = { encodeWithId: (_id: number, value: unknown) => Buffer.from(JSON.stringify(value)) } as never;

  /** Stage `name` adds `add` to n; rejects the values in `rejects`. */
  function stage(name: string, add: number, opts: { encode: boolean; rejects?: number[] }): ChainStage {
    const processor: Processor = {
      processBatch: async (rs) => rs.map((r) => {
        const n = (r.value as { n: number }).n;
        return opts.rejects?.includes(n) ? new RecordRejection('PROCESSING_ERROR', `${name} rejects ${n}`) : { key: `k${n}`, value: { n: n + add } };
      }),
      close: async () => {},
    };
    return { spec: { name, processor: 'p', input: { topic: `${name}-in` }, output: { topic: `${name}-out` }, config: {} }, processor, ...(opts.encode ? { encoder, schemaId: 1 } : {}) };
  }

  const message = (n: number, offset: number, headers: Record<string, Buffer> = {}): KafkaMessage => ({ key: Buffer.from(`k${n}`), value: Buffer.from(String(n)), timestamp: String(1000 + offset), offset: String(offset), headers }) as unknown as KafkaMessage;

  function chain(keepValues: boolean): Chain {
    // extract (written) -> enrich (in memory only) -> score (written); enrich rejects 12 (input 2), score rejects 14 (input 3).
    return new Chain({
      stages: [stage('extract', 10, { encode: true }), stage('enrich', 1, { encode: false, rejects: [12] }), stage('score', 100, { encode: true, rejects: [14] })],
      decoder,
      dlqEncoder: encoder,
      dlqSchemaId: 2,
      deadLetterMaxValueBytes: 1000,
      keepValues,
      log: createLogger('test'),
    });
  }

  it('reports which stages consumed, produced and rejected each record, and skips one its head already processed', async () => {
    const records = await chain(false).process('extract-in', 0, [message(1, 5), message(2, 6), message(3, 7), message(4, 8, { [DONE_HEADER]: Buffer.from('extract,other') })]);
    expect(records.map((r) => r.trace)).toEqual([
      { consumedBy: ['extract', 'enrich', 'score'], producedBy: ['extract', 'score'], skipped: false, timestamp: 1005, offset: 5 },
      { consumedBy: ['extract', 'enrich'], producedBy: ['extract'], rejectedBy: 'enrich', skipped: false, timestamp: 1006, offset: 6 },
      { consumedBy: ['extract', 'enrich', 'score'], producedBy: ['extract'], rejectedBy: 'score', skipped: false, timestamp: 1007, offset: 7 },
      { consumedBy: [], producedBy: [], skipped: true, timestamp: 1008, offset: 8 },
    ]);
    expect(records.map((r) => r.rejection?.message)).toEqual([undefined, 'enrich rejects 12', 'score rejects 14', undefined]);
    // The side output names the stages after it; the last stage's output names none.
    const [first] = records;
    expect(first.outputs.map((o) => [o.topic, JSON.parse(String(o.message.value)).n, o.message.headers?.[DONE_HEADER]])).toEqual([
      ['extract-out', 11, 'enrich,score'],
      ['score-out', 112, undefined],
    ]);
    // A dead letter carries the input of the stage that rejected it (the last written: extract's output) and names that stage.
    const dead = records[1].deadLetterRecord(records[1].rejection!);
    expect(dead.stage).toBe('enrich');
    expect(JSON.parse(String(dead.value))).toEqual({ n: 12 });
    // Without keepValues the records hold no decoded values.
    expect(records.every((r) => r.values.length === 0)).toBe(true);
  });

  it('keeps each stage value in stage order when asked (a backfill writes them to its file)', async () => {
    const [ok, rejected] = await chain(true).process('extract-in', 0, [message(1, 0), message(2, 1)]);
    expect(ok.values).toEqual([{ n: 11 }, { n: 12 }, { n: 112 }]);
    expect(rejected.values).toEqual([{ n: 12 }]);
  });

  it('refuses a chain too long for its records to note which stages produced', () => {
    const stages = Array.from({ length: 32 }, (_, i) => stage(`s${i}`, 0, { encode: false }));
    expect(() => new Chain({ stages, decoder, deadLetterMaxValueBytes: 10, log: createLogger('test') })).toThrow(/at most 31 stages/);
  });
});
