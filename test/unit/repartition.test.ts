import type { KafkaMessage } from 'kafkajs';
import { Chain, DONE_HEADER } from '../../src/engine/chain';
import { planChains } from '../../src/engine/plan';
import { KEY_HEADER, LINEAGE_HEADER, repartitionProcessor } from '../../src/engine/repartition';
import { entityKey, keyFieldProblem, parseFieldPath } from '../../src/util/field-path';
import { Type } from 'avsc';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { effectiveTopology } from '../../src/stages/pipeline';
import type { InputRecord, Processor } from '../../src/stages/processor';
import { loadTopology } from '../../src/stages/load-topology';
import { createLogger } from '../../src/util/logger';
import { DEMO_TOPOLOGY, LOAD_OPTIONS, topologyErrorFor } from '../helpers/topology-errors';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';

const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);

describe('repartitioning by entity: topology', () => {
  it('the demo extraction stage is repartitioned by the entity of its windowed set (cardId), never fused across the hop', () => {
    const eff = effectiveTopology(loadTopology(DEMO_TOPOLOGY, LOAD_OPTIONS));
    const name = eff.topology.spec.name;
    expect(eff.edges.map((e) => [e.stage, e.field, e.topic.name, e.topic.partitions])).toEqual([['extract', 'cardId', `${name}.extract-repartition`, 3]]);
    expect(eff.topology.spec.stages.map((s) => `${s.name}:${s.input.topic}->${s.output.topic}`)).toEqual([
      'extract-repartition:fraud.transactions->fraud-detection.extract-repartition',
      'extract:fraud-detection.extract-repartition->fraud.features',
      'score:fraud.features->fraud.predictions',
    ]);
    const chains = planChains(eff.topology.spec.stages, { fuse: true, runsApart: () => false, boundaries: new Set(eff.edges.map((e) => e.topic.name)) });
    expect(chains.map((c) => c.stages.map((s) => s.name).join('+'))).toEqual(['extract-repartition', 'extract+score']);
  });

  it('partitionBy: none skips the hop and checks keys against the implied entity; an explicit field and partition count are used', () => {
    const base = loadTopology(DEMO_TOPOLOGY, LOAD_OPTIONS);
    const none = effectiveTopology({ ...base, spec: { ...base.spec, stages: base.spec.stages.map((s) => (s.name === 'extract' ? { ...s, partitionBy: 'none' } : s)) } });
    expect(none.edges).toEqual([]);
    expect([...none.keyChecks]).toEqual([['extract', 'cardId']]);
    const merchant = effectiveTopology({ ...base, spec: { ...base.spec, stages: base.spec.stages.map((s) => (s.name === 'extract' ? { ...s, partitionBy: 'merchantId', repartition: { partitions: 6 } } : s)) } });
    expect(merchant.edges.map((e) => [e.field, e.topic.partitions, e.topic.config?.['retention.ms']])).toEqual([['merchantId', 6, '-1']]);
  });

  it('two stages on one input, one per entity (card, merchant): two hops, two internal topics and groups, each stage reading its own', () => {
    const base = loadTopology(DEMO_TOPOLOGY, LOAD_OPTIONS);
    const extract = base.spec.stages.find((s) => s.name === 'extract')!;
    const merchant = { ...extract, name: 'extract-merchant', partitionBy: 'merchantId', output: { topic: `${extract.output.topic}-merchant` } };
    const eff = effectiveTopology({ ...base, spec: { ...base.spec, stages: [...base.spec.stages, merchant] } });
    const name = base.spec.name;
    expect(eff.edges.map((e) => [e.stage, e.field, e.topic.name, e.step.input.topic])).toEqual([
      ['extract', 'cardId', `${name}.extract-repartition`, extract.input.topic],
      ['extract-merchant', 'merchantId', `${name}.extract-merchant-repartition`, extract.input.topic],
    ]);
    const stages = new Map(eff.topology.spec.stages.map((s) => [s.name, s]));
    expect(stages.get('extract')!.input.topic).toBe(`${name}.extract-repartition`);
    expect(stages.get('extract-merchant')!.input.topic).toBe(`${name}.extract-merchant-repartition`);
    expect(stages.get('extract-merchant-repartition')!.config).toEqual({ field: 'merchantId' });
  });

  it('names the bad field path of partitionBy and refuses a repartition block that has no effect', () => {
    expect(topologyErrorFor((d) => (d.stages[0].partitionBy = 'card.id'))).toMatch(/stages\[0\]\.partitionBy: 'card' is not a record|stages\[0\]\.partitionBy: event has no field 'card'/);
    expect(topologyErrorFor((d) => (d.stages[0].partitionBy = 'cardNumber'))).toMatch(/stages\[0\]\.partitionBy: event has no field 'cardNumber' \(fields: transactionId, cardId/);
    expect(topologyErrorFor((d) => (d.stages[0].partitionBy = 'card-id'))).toMatch(/stages\[0\]\.partitionBy: must match pattern/);
    expect(topologyErrorFor((d) => (d.stages[0].partitionBy = 'amount'))).toMatch(/stages\[0\]\.partitionBy: field 'amount' is double; a key must be/);
    expect(topologyErrorFor((d) => Object.assign(d.stages[0], { partitionBy: 'none', repartition: { partitions: 4 } }))).toMatch(/stages\[0\]\.repartition: has no effect/);
    expect(topologyErrorFor((d) => (d.stages[0].repartition = { partitions: 0 }))).toMatch(/stages\[0\]\.repartition\.partitions/);
  });

  it('two windowed sets on different entities in one stage must choose (path stages[0].partitionBy)', () => {
    const msg = topologyErrorFor((d) => {
      d.features.sets.push({ name: 'merchant_activity', kind: 'windowed_aggregation', version: 1, entity: 'merchantId', config: { allowedLatenessMs: 1000, onLate: 'ignore' }, fields: [{ name: 'merchant_txn_count_1h', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 3600000 } }] });
      d.stages[0].config.features.push('merchant_activity');
    });
    expect(msg).toMatch(/stages\[0\]\.partitionBy: the stage keeps per-entity state for several entities \(cardId, merchantId\)/);
  });

  it('field paths (src/util/field-path.ts): nested records and optional fields (avsc unwrapped unions) are followed; entity keys are strings', () => {
    const type = catalog.get('transaction').type;
    expect(keyFieldProblem(type, 'cardId')).toBeNull();
    expect(keyFieldProblem(type, 'eventTime')).toBeNull();
    // avsc parses a nullable union as typeName 'union:unwrapped': an optional nested record and an optional leaf both resolve.
    const nested = Type.forSchema({ type: 'record', name: 'E', fields: [{ name: 'device', type: ['null', { type: 'record', name: 'D', fields: [{ name: 'id', type: ['null', 'string'] }, { name: 'score', type: 'double' }] }], default: null }] });
    expect((nested as unknown as { fields: { type: { typeName: string } }[] }).fields[0].type.typeName).toBe('union:unwrapped');
    expect(keyFieldProblem(nested, 'device.id')).toBeNull();
    expect(keyFieldProblem(nested, 'device.score')).toMatch(/is double/);
    expect(entityKey({ a: { b: 7 } }, parseFieldPath('a.b'))).toBe('7');
    expect(entityKey({ a: { b: '' } }, parseFieldPath('a.b'))).toBeNull();
    expect(entityKey({ a: null }, parseFieldPath('a.b'))).toBeNull();
  });
});

describe('repartitioning by entity: the chain', () => {
  const tx = { transactionId: 't-1', cardId: 'card-9', merchantId: 'm', amount: 1, currency: 'USD', merchantCategory: 'grocery', country: 'US', eventTime: 5 };
  const valueBytes = Buffer.from([0, 0, 0, 0, 7, 1, 2, 3]);
  const fakeDecoder = { decode: async () => tx } as never;
  const fakeEncoder = { encodeWithId: () => Buffer.from('re-encoded') } as never;

  it('the repartition step keys by the entity, keeps the value bytes, the timestamp and headers, and records the original lineage and key', async () => {
    const step = await repartitionProcessor.create({ field: 'cardId' }, {} as never);
    const chain = new Chain({ stages: [{ spec: { name: 'x-repartition', processor: 'repartition', input: { topic: 'in' }, output: { topic: 'rep' }, config: {} }, processor: step, encoder: fakeEncoder, schemaId: 1, passthroughValue: true }], decoder: fakeDecoder, dlqEncoder: fakeEncoder, dlqSchemaId: 2, deadLetterMaxValueBytes: 1000, log: createLogger('test') });
    const message = { key: Buffer.from('t-1'), value: valueBytes, timestamp: '1234', offset: '41', headers: { 'x-request-id': Buffer.from('r1') } } as unknown as KafkaMessage;
    const [rec] = await chain.process('in', 2, [message]);
    const out = rec.outputs[0].message;
    expect(out.key).toBe('card-9');
    expect(out.value).toBe(valueBytes);
    expect(out.timestamp).toBe('1234');
    expect(String(out.headers!['x-request-id'])).toBe('r1');
    expect(JSON.parse(String(out.headers![LINEAGE_HEADER]))).toEqual({ topic: 'in', partition: 2, offset: 41 });
    expect(String(out.headers![KEY_HEADER])).toBe('t-1');
  });

  it('a stage behind the hop sees the original key, timestamp, lineage and headers, and the consumed position as source; internal headers are not inherited', async () => {
    const seen: InputRecord<unknown>[] = [];
    const proc: Processor = { processBatch: async (rs) => rs.map((r) => (seen.push(r), { key: r.key!.toString(), value: {} })), close: async () => {} };
    const chain = new Chain({ stages: [{ spec: { name: 'extract', processor: 'p', input: { topic: 'rep' }, output: { topic: 'out' }, config: {} }, processor: proc, encoder: fakeEncoder, schemaId: 1 }], decoder: fakeDecoder, dlqEncoder: fakeEncoder, dlqSchemaId: 2, deadLetterMaxValueBytes: 1000, log: createLogger('test') });
    const message = { key: Buffer.from('card-9'), value: valueBytes, timestamp: '1234', offset: '7', headers: { 'x-request-id': Buffer.from('r1'), [LINEAGE_HEADER]: Buffer.from(JSON.stringify({ topic: 'in', partition: 2, offset: 41 })), [KEY_HEADER]: Buffer.from('t-1'), [DONE_HEADER]: Buffer.from('other') } } as unknown as KafkaMessage;
    const [rec] = await chain.process('rep', 0, [message]);
    expect(seen[0].key!.toString()).toBe('t-1');
    expect(seen[0].timestamp).toBe(1234);
    expect(seen[0].lineage).toEqual({ topic: 'in', partition: 2, offset: 41 });
    expect(seen[0].source).toEqual({ topic: 'rep', partition: 0, offset: 7 });
    const headers = rec.outputs[0].message.headers!;
    expect(Object.keys(headers).sort()).toEqual(['x-request-id']);
    expect(rec.outputs[0].message.key).toBe('t-1');
  });

  it('partitionBy: none counts records whose key is not their entity', async () => {
    const mismatches: number[] = [];
    const proc: Processor = { processBatch: async (rs) => rs.map(() => ({ key: 'k', value: {} })), close: async () => {} };
    const chain = new Chain({ stages: [{ spec: { name: 'extract', processor: 'p', input: { topic: 'in' }, output: { topic: 'out' }, config: {} }, processor: proc, encoder: fakeEncoder, schemaId: 1, keyCheck: { field: 'cardId', onKeyMismatch: (n) => mismatches.push(n) } }], decoder: fakeDecoder, dlqEncoder: fakeEncoder, dlqSchemaId: 2, deadLetterMaxValueBytes: 1000, log: createLogger('test') });
    const msg = (key: string, offset: number) => ({ key: Buffer.from(key), value: valueBytes, timestamp: '1', offset: String(offset), headers: {} }) as unknown as KafkaMessage;
    await chain.process('in', 0, [msg('card-9', 0), msg('t-1', 1), msg('t-2', 2)]);
    expect(mismatches).toEqual([2]);
  });
});
