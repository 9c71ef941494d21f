/**
 * One malformed reading of each kind a misbehaving gateway can really send, for the demo and the
 * e2e test: bytes that are not Avro, an unregistered schema id, a writer schema lacking a required
 * field (temperatureC), one with a wrongly typed field (temperatureC as a string) and a body cut
 * short. Each must be dead-lettered with the kind named here.
 */
import * as avro from 'avsc';
import type { ErrorKind } from '../../src/kafka/dead-letter';
import type { LocalSchema } from '../../src/kafka/avro-schemas';
import type { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import type { SensorReading } from './generator';

export interface MalformedReading {
  key: string;
  value: Buffer;
  expectedKind: ErrorKind;
}

function frame(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

export async function malformedReadings(registry: SchemaRegistryClient, schema: LocalSchema, sample: SensorReading, keyPrefix: string): Promise<MalformedReading[]> {
  const json = JSON.parse(schema.text) as { name: string; fields: { name: string; type: unknown }[] } & Record<string, unknown>;
  const withoutTemp = { ...json, name: 'SensorReadingWithoutTemperature', fields: json.fields.filter((f) => f.name !== 'temperatureC') };
  const tempAsString = { ...json, name: 'SensorReadingTemperatureAsString', fields: json.fields.map((f) => (f.name === 'temperatureC' ? { ...f, type: 'string' } : f)) };
  const { temperatureC: _drop, ...rest } = sample;
  const missingId = await registry.register('tributary-iot-malformed-missing-field-value', JSON.stringify(withoutTemp));
  const wrongId = await registry.register('tributary-iot-malformed-wrong-type-value', JSON.stringify(tempAsString));
  const goodId = await registry.register('tributary-iot-malformed-truncated-value', schema.text);
  const good = schema.type.toBuffer(sample);
  return [
    { key: `${keyPrefix}not-avro`, value: Buffer.from(JSON.stringify(sample)), expectedKind: 'NOT_AVRO' },
    { key: `${keyPrefix}unknown-schema`, value: frame(987654, good), expectedKind: 'UNKNOWN_SCHEMA' },
    { key: `${keyPrefix}missing-field`, value: frame(missingId, avro.Type.forSchema(withoutTemp as avro.Schema).toBuffer(rest)), expectedKind: 'MISSING_FIELD' },
    { key: `${keyPrefix}wrong-type`, value: frame(wrongId, avro.Type.forSchema(tempAsString as avro.Schema).toBuffer({ ...sample, temperatureC: 'hot' })), expectedKind: 'WRONG_TYPE' },
    { key: `${keyPrefix}truncated`, value: frame(goodId, good.subarray(0, 12)), expectedKind: 'DECODE_ERROR' },
  ];
}
