import type { KafkaMessage } from 'kafkajs';
import { Chain, DONE_HEADER } from '../../src/engine/chain';
import { planChains } from '../../src/engine/plan';
import { KEY_HEADER, LINEAGE_HEADER, partitionDecision, repartitionProcessor } from '../../src/engine/repartition';
import { PartialVectorDecoder } from '../../src/engine/partial-vector';
import { describeVector } from '../../src/features/enricher';
import { entityStepSets, extractionBase, featuresBefore, type ExtractionConfig } from '../../src/stages/extraction';
import { RecordRejection } from '../../src/kafka/dead-letter';
import type { LoadedTopology, StageSpec, TopologySpec } from '../../src/topology/spec';
import { merchantActivitySet, twoEntityExtract } from '../helpers/two-entities';
import * as fs from 'node:fs';
import { parse } from 'yaml';
import { entityKey, keyFieldProblem, parseFieldPath } from '../../src/util/field-path';
import { Type } from 'avsc';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { effectiveTopology } from '../../src/stages/pipeline';
import type { InputRecord, Processor } from '../../src/stages/processor';
import { loadTopology, validateTopology } from '../../src/stages/load-topology';
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

  it('two windowed sets on different entities in one stage are chained: a hop by the first entity, then one step per entity in the vector\'s order, each internal topic keyed by its entity', () => {
    const eff = effectiveTopology(twoEntities());
    const name = eff.topology.spec.name;
    const T1 = `${name}.extract-repartition`;
    const T2 = `${name}.extract-merchantId-repartition`;
    expect(eff.topology.spec.stages.map((s) => `${s.name}:${s.input.topic}->${s.output.topic}`)).toEqual([`extract-repartition:fraud.transactions->${T1}`, `extract-cardId:${T1}->${T2}`, `extract:${T2}->fraud.features`]);
    const topics = new Map(eff.topology.spec.topics.map((t) => [t.name, t]));
    expect([T1, T2].map((t) => [topics.get(t)!.schema, topics.get(t)!.partitions, topics.get(t)!.config?.['retention.ms']])).toEqual([['transaction', 3, '-1'], ['partial-vector', 3, '-1']]);
    expect(eff.edges.map((e) => [e.of, e.step.name, e.topic.name, e.field, e.stage])).toEqual([
      ['extract', 'extract-repartition', T1, 'cardId', 'extract-cardId'],
      ['extract', 'extract-cardId', T2, 'merchantId', 'extract'],
    ]);
    const stages = new Map(eff.topology.spec.stages.map((s) => [s.name, s]));
    expect(stages.get('extract-repartition')!.config).toEqual({ field: 'cardId' });
    expect(stages.get('extract-cardId')).toMatchObject({ processor: 'feature_extraction', internalOf: 'extract', entityStep: { entity: 'cardId', entities: ['cardId', 'merchantId'], index: 0, eventTopic: 'fraud.transactions' } });
    expect(stages.get('extract')!.internalOf).toBeUndefined();
    expect(stages.get('extract')!.entityStep).toEqual({ entity: 'merchantId', entities: ['cardId', 'merchantId'], index: 1, eventTopic: 'fraud.transactions' });
    // Every internal topic is a boundary: three chains, each its own group and transactions.
    const chains = planChains(eff.topology.spec.stages, { fuse: true, runsApart: () => false, boundaries: new Set(eff.edges.map((e) => e.topic.name)) });
    expect(chains.map((c) => c.stages.map((s) => s.name).join('+'))).toEqual(['extract-repartition', 'extract-cardId', 'extract']);
    // The vector's order decides the steps' order: merchant windows first -> the hop is by merchant.
    const reversed = effectiveTopology(twoEntities(['merchant_activity', 'card_profile', 'merchant_risk', 'card_activity']));
    expect(reversed.topology.spec.stages.map((s) => s.name)).toEqual(['extract-repartition', 'extract-merchantId', 'extract']);
    expect(reversed.edges.map((e) => [e.topic.name, e.field])).toEqual([[`${name}.extract-repartition`, 'merchantId'], [`${name}.extract-cardId-repartition`, 'cardId']]);
    // partitionBy still chooses one hop (the other entity's order then as it comes); none skips them.
    const one = effectiveTopology(twoEntities(undefined, (s) => (s.partitionBy = 'merchantId')));
    expect(one.topology.spec.stages.map((s) => s.name)).toEqual(['extract-repartition', 'extract']);
    expect(effectiveTopology(twoEntities(undefined, (s) => (s.partitionBy = 'none'))).edges).toEqual([]);
  });

  it('splits the sets by entity: the first step computes the base features, the batch sets and its windows; the next its own windows, after the features so far', () => {
    const t = twoEntities();
    const eff = effectiveTopology(t);
    const extract = t.spec.stages.find((s) => s.name === 'extract')!;
    const vector = describeVector(extract.config as unknown as ExtractionConfig, t.spec.features, extractionBase(extract.config as unknown as ExtractionConfig, { topology: t }));
    const [card, merchant] = eff.topology.spec.stages.filter((s) => s.entityStep).map((s) => s.entityStep!);
    expect(entityStepSets(vector.sets, card).map((s) => s.name)).toEqual(['card_profile', 'card_activity', 'merchant_risk']);
    expect(entityStepSets(vector.sets, merchant).map((s) => s.name)).toEqual(['merchant_activity']);
    const before = featuresBefore(vector, merchant);
    const merchantWindows = new Set(merchantActivitySet().fields.map((f) => f.name));
    expect(before).toEqual(vector.names.filter((n) => !merchantWindows.has(n)));
    expect(before).toContain('card_ms_since_prev');
    expect(before).not.toContain('merchant_txn_count_24h');
    expect(featuresBefore(vector, card)).toEqual(vector.base.names);
    // The model's order: merchant windows between the card windows and merchant_risk.
    expect(vector.names.indexOf('merchant_txn_count_24h')).toBeGreaterThan(vector.names.indexOf('card_ms_since_prev'));
    expect(vector.names.indexOf('merchant_txn_count_24h')).toBeLessThan(vector.names.indexOf('merchant_chargeback_rate'));
  });

  it('names the bad field paths of a chained stage and refuses internal steps or topics that clash with declared ones', () => {
    const withMerchantSet = (d: any) => {
      d.features.sets.push(merchantActivitySet());
      d.stages[0].config.features.push('merchant_activity');
    };
    expect(topologyErrorFor((d) => {
      withMerchantSet(d);
      d.features.sets.find((s: any) => s.name === 'merchant_activity').entity = 'shopId';
    })).toMatch(/stages\[0\]\.partitionBy \(implied by the processor's per-entity state\): event has no field 'shopId'/);
    expect(topologyErrorFor((d) => {
      withMerchantSet(d);
      d.stages.push({ ...d.stages[1], name: 'extract-cardId' });
    })).toMatch(/stages\[0\]\.name: the stage's internal step 'extract-cardId' has the name of another stage/);
    expect(topologyErrorFor((d) => {
      withMerchantSet(d);
      d.topics.push({ name: 'fraud-detection.extract-merchantId-repartition', partitions: 3, schema: 'partial-vector' });
    })).toMatch(/stages\[0\]\.name: the stage's internal topic 'fraud-detection\.extract-merchantId-repartition' is also declared in topics/);
    // A processor that cannot run per entity still has to choose.
    expect(() => partitionDecision({ name: 's', processor: 'p', input: { topic: 'in' }, output: { topic: 'out' }, config: {} }, ['a', 'b'])).toThrow(/several entities \(a, b\)/);
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

/** The demo topology with card and merchant windows in one vector (test/helpers/two-entities.ts). */
function twoEntities(features?: string[], edit?: (extract: StageSpec) => void): LoadedTopology {
  const doc = parse(fs.readFileSync(DEMO_TOPOLOGY, 'utf8')) as TopologySpec;
  twoEntityExtract(doc, features);
  edit?.(doc.stages[0]);
  return validateTopology(doc, DEMO_TOPOLOGY, LOAD_OPTIONS);
}

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

  it('a per-entity step writes a partial record (original event bytes + features so far) keyed by the next entity with the original lineage, key, timestamp and headers; the next step sees the original event and the partial values, and dead-letters the event bytes', async () => {
    const written: unknown[] = [];
    const capture = { encodeWithId: (_: number, v: unknown) => (written.push(v), Buffer.from(`partial-${written.length - 1}`)) } as never;
    const partial = { names: ['a', 'b'], values: [1, 2], featureSetVersions: { card_profile: 'v1' } };
    const card: Processor = { processBatch: async (rs) => rs.map(() => ({ key: 'm', value: partial })), close: async () => {} };
    const step = new Chain({ stages: [{ spec: { name: 'extract-cardId', processor: 'feature_extraction', input: { topic: 'rep' }, output: { topic: 'rep2' }, config: {} }, processor: card, encoder: capture, schemaId: 1, wrapsEvent: true }], decoder: fakeDecoder, dlqEncoder: fakeEncoder, dlqSchemaId: 2, deadLetterMaxValueBytes: 1000, replies: { topic: 'replies', partitions: 4 }, log: createLogger('test') });
    const message = { key: Buffer.from('card-9'), value: valueBytes, timestamp: '1234', offset: '7', headers: { 'x-request-id': Buffer.from('r1'), [LINEAGE_HEADER]: Buffer.from(JSON.stringify({ topic: 'in', partition: 2, offset: 41 })), [KEY_HEADER]: Buffer.from('t-1'), 'tributary-correlation-id': Buffer.from('c1'), 'tributary-reply-topic': Buffer.from('replies'), 'tributary-reply-partition': Buffer.from('1') } } as unknown as KafkaMessage;
    const [rec] = await step.process('rep', 0, [message]);
    expect(written).toEqual([{ event: valueBytes, ...partial }]);
    const out = rec.outputs[0].message;
    expect([out.key, out.timestamp, String(out.headers!['x-request-id']), String(out.headers![KEY_HEADER])]).toEqual(['m', '1234', 'r1', 't-1']);
    expect(JSON.parse(String(out.headers![LINEAGE_HEADER]))).toEqual({ topic: 'in', partition: 2, offset: 41 });
    expect(rec.replies!()).toEqual([]); // a partial record is internal: no reply copy

    // The next step: the partial record decoded, the event inside it decoded as the input topic's.
    const seen: InputRecord<unknown>[] = [];
    const merchant: Processor = { processBatch: async (rs) => rs.map((r) => (seen.push(r), r.partial!.values[0] === 1 ? new RecordRejection('PROCESSING_ERROR', 'no') : { key: 'k', value: {} })), close: async () => {} };
    const partialDecoder = { decode: async () => ({ event: valueBytes, ...partial }) };
    const eventDecoder = { decode: async (b: Buffer) => (b === valueBytes ? tx : new RecordRejection('DECODE_ERROR', 'bad')) };
    const dead: unknown[] = [];
    const dlq = { encodeWithId: (_: number, v: unknown) => (dead.push(v), Buffer.from('dl')) } as never;
    const last = new Chain({ stages: [{ spec: { name: 'extract', processor: 'feature_extraction', input: { topic: 'rep2' }, output: { topic: 'out' }, config: {} }, processor: merchant, encoder: fakeEncoder, schemaId: 1 }], decoder: new PartialVectorDecoder(partialDecoder as never, eventDecoder as never), dlqEncoder: dlq, dlqSchemaId: 2, deadLetterMaxValueBytes: 1000, log: createLogger('test') });
    const [rec2] = await last.process('rep2', 1, [{ ...out, offset: '3', headers: out.headers } as unknown as KafkaMessage]);
    expect(seen[0]).toMatchObject({ value: tx, timestamp: 1234, lineage: { topic: 'in', partition: 2, offset: 41 }, source: { topic: 'rep2', partition: 1, offset: 3 }, partial });
    expect(seen[0].key!.toString()).toBe('t-1');
    rec2.toDeadLetter(rec2.rejection!);
    expect(dead[0]).toMatchObject({ stage: 'extract', value: valueBytes, lineage: { topic: 'in', partition: 2, offset: 41 } });
    // A bad event inside a partial record is rejected as such.
    const bad = await new PartialVectorDecoder({ decode: async () => ({ event: Buffer.from('x'), names: [], values: [] }) } as never, eventDecoder as never).decode(Buffer.from('p'));
    expect(bad).toEqual(new RecordRejection('DECODE_ERROR', "the partial record's event: bad"));
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
