import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { avroToJson, jsonSchemaOf, jsonToAvro } from '../../src/gateway/avro-json';
import { CORRELATION_HEADER, REPLY_PARTITION_HEADER, REPLY_TOPIC_HEADER, replyTarget } from '../../src/engine/replies';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';

const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
const tx = { transactionId: 't1', cardId: 'c1', merchantId: 'm1', amount: 12.5, currency: 'USD', merchantCategory: 'grocery', country: 'US', eventTime: 1700000000000 };

describe('gateway JSON ⇄ Avro', () => {
  const transaction = catalog.get('transaction').type;
  const prediction = catalog.get('prediction').type;

  it('accepts a valid event unchanged and reports every bad field by its path', () => {
    expect(jsonToAvro(transaction, tx)).toEqual({ value: tx, problems: [] });
    const { problems } = jsonToAvro(transaction, { ...tx, amount: 'x', country: undefined, extra: true });
    expect(problems.map((p) => p.path).sort()).toEqual(['amount', 'country', 'extra']);
    expect(problems.find((p) => p.path === 'amount')!.expected).toBe('double');
    expect(jsonToAvro(transaction, [1]).problems).toEqual([{ path: '(root)', expected: 'record tributary.fraud.Transaction' }]);
    expect(jsonToAvro(transaction, { ...tx, eventTime: 2 ** 60 }).problems.map((p) => p.path)).toEqual(['eventTime']);
  });

  it('fills defaults, unwraps nullable unions and nested records', () => {
    const p = { key: 'k', modelName: 'm', modelVersion: '1', score: 0.5, label: true, threshold: 0.5, eventTime: 1, ingestTime: 2, producedTime: 3, lineage: { topic: 't', partition: 0, offset: 5 } };
    const { value, problems } = jsonToAvro(prediction, p);
    expect(problems).toEqual([]);
    expect(value).toMatchObject({ featureSetVersions: {}, route: null, latencyMs: null });
    expect(jsonToAvro(prediction, { ...p, route: 'live', lineage: { ...p.lineage, partition: 'x' } }).problems.map((x) => x.path)).toEqual(['lineage.partition']);
    expect(avroToJson({ b: Buffer.from('hi'), n: [1] })).toEqual({ b: 'aGk=', n: [1] });
  });

  it('JSON Schema of the input: required fields, docs, long bounded to safe integers, nullable unions', () => {
    const s = jsonSchemaOf(transaction) as { required: string[]; properties: Record<string, Record<string, unknown>>; additionalProperties: boolean };
    expect(s.required).toEqual(Object.keys(tx));
    expect(s.additionalProperties).toBe(false);
    expect(s.properties.eventTime).toMatchObject({ type: 'integer', maximum: 9007199254740990 });
    expect(jsonToAvro(transaction, { ...tx, eventTime: 9007199254740990 }).problems).toEqual([]);
    expect(s.properties.amount).toMatchObject({ type: 'number', description: 'Amount in the transaction currency.' });
    const p = jsonSchemaOf(prediction) as { required: string[]; properties: Record<string, Record<string, unknown>> };
    expect(p.properties.route).toMatchObject({ type: 'string', nullable: true });
    expect(p.required).not.toContain('route');
  });
});

describe('reply targets (engine side of request-reply)', () => {
  const route = { topic: 'x.replies', partitions: 8 };
  const h = (topic: string, partition: string) => ({ [CORRELATION_HEADER]: Buffer.from('c'), [REPLY_TOPIC_HEADER]: Buffer.from(topic), [REPLY_PARTITION_HEADER]: Buffer.from(partition) });
  it('replies only to the topology reply topic and partitions it has; never without a route (backfills)', () => {
    expect(replyTarget(h('x.replies', '3'), route)).toEqual({ topic: 'x.replies', partition: 3 });
    expect(replyTarget(h('x.replies', '8'), route)).toBeNull();
    expect(replyTarget(h('x.replies', '-1'), route)).toBeNull();
    expect(replyTarget(h('other', '1'), route)).toBeNull();
    expect(replyTarget({}, route)).toBeNull();
    expect(replyTarget(h('x.replies', '1'), undefined)).toBeNull();
  });
});
