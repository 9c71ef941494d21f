import * as avro from 'avsc';
import type { ErrorKind } from '../../src/kafka/dead-letter';
import type { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import type { LocalSchema } from '../../src/kafka/avro-schemas';

export interface MalformedEvent {
  key: string;
  value: Buffer;
  /** The dead-letter kind the pipeline must assign. */
  expectedKind: ErrorKind;
}

function frame(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

/**
 * One malformed input of each kind a producer can really send: bytes that are not Avro, an
 * unregistered schema id, a schema lacking a required field, a schema with a wrongly typed
 * field, and a body cut short. Used by the demo and the tests.
 */
export async function malformedTransactions(registry: SchemaRegistryClient, transaction: LocalSchema, keyPrefix: string): Promise<MalformedEvent[]> {
  const schema = JSON.parse(transaction.text) as { fields: { name: string; type: unknown }[] } & Record<string, unknown>;
  const withoutAmount = { ...schema, name: 'TransactionWithoutAmount', fields: schema.fields.filter((f) => f.name !== 'amount') };
  const amountAsString = { ...schema, name: 'TransactionAmountAsString', fields: schema.fields.map((f) => (f.name === 'amount' ? { ...f, type: 'string' } : f)) };
  const sample = { transactionId: `${keyPrefix}x`, cardId: 'card-x', merchantId: 'm-x', currency: 'USD', merchantCategory: 'grocery', country: 'US', eventTime: Date.now() };
  const missingId = await registry.register('tributary-malformed-missing-field-value', JSON.stringify(withoutAmount));
  const wrongId = await registry.register('tributary-malformed-wrong-type-value', JSON.stringify(amountAsString));
  const goodId = await registry.register('tributary-malformed-truncated-value', transaction.text);
  const good = transaction.type.toBuffer({ ...sample, amount: 12.5 });
  return [
    { key: `${keyPrefix}not-avro`, value: Buffer.from(JSON.stringify({ ...sample, amount: 1 })), expectedKind: 'NOT_AVRO' },
    { key: `${keyPrefix}unknown-schema`, value: frame(987654, good), expectedKind: 'UNKNOWN_SCHEMA' },
    { key: `${keyPrefix}missing-field`, value: frame(missingId, avro.Type.forSchema(withoutAmount as avro.Schema).toBuffer(sample)), expectedKind: 'MISSING_FIELD' },
    { key: `${keyPrefix}wrong-type`, value: frame(wrongId, avro.Type.forSchema(amountAsString as avro.Schema).toBuffer({ ...sample, amount: 'ten' })), expectedKind: 'WRONG_TYPE' },
    { key: `${keyPrefix}truncated`, value: frame(goodId, good.subarray(0, 9)), expectedKind: 'DECODE_ERROR' },
  ];
}
