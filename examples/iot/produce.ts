/**
 * Publishes sensor readings to the example's input topic the way a site gateway would: Avro with the
 * registry's schema id (examples/iot/schemas/sensor-reading.avsc), keyed by readingId (predictions
 * and labels join on it), partitioned by deviceId (the streaming features' entity: a unit's readings
 * are applied in one order, which a replay reproduces), through an idempotent producer.
 */
import * as path from 'node:path';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { SchemaCatalog, type LocalSchema } from '../../src/kafka/avro-schemas';
import { AvroEncoder } from '../../src/kafka/avro-serde';
import { createKafka, idempotentProducer } from '../../src/kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../src/kafka/schema-registry';
import type { SensorReading } from './generator';

export const EXAMPLE_DIR = __dirname.includes(`${path.sep}dist-examples${path.sep}`) ? path.resolve(__dirname, '..', '..', '..', 'examples', 'iot') : __dirname;

/** The example's input schema (schemas/ beside the topology). */
export function readingSchema(): LocalSchema {
  return new SchemaCatalog(path.join(EXAMPLE_DIR, 'schemas')).get('sensor-reading');
}

export interface ProduceReadingsOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  /** Readings per second; 0 = as fast as possible. */
  rate: number;
  /** How long to wait for a pipeline starting alongside to create the topic. */
  waitForTopicMs?: number;
}

const partitioner = Partitioners.DefaultPartitioner();

/** Sends `readings` in order (chunks of up to 200, one send per 20 ms tick at the given rate). Returns seconds taken. */
export async function produceReadings(readings: readonly SensorReading[], options: ProduceReadingsOptions): Promise<number> {
  const kafka = createKafka({ clientId: 'tributary-iot-producer', brokers: options.brokers });
  const registry = new SchemaRegistryClient({ url: options.schemaRegistryUrl, auth: registryAuthFromEnv() });
  const schema = readingSchema();
  const encoder = new AvroEncoder<SensorReading>(registry, schema, options.topic);
  const partitions = await waitForTopic(kafka, options.topic, options.waitForTopicMs ?? 60000);
  const producer = idempotentProducer(kafka, { name: `iot-producer:${options.topic}` });
  await producer.connect();
  const id = await encoder.id();
  const started = Date.now();
  const perTick = options.rate > 0 ? Math.max(1, Math.round((options.rate * 20) / 1000)) : 200;
  try {
    for (let sent = 0; sent < readings.length; ) {
      const chunk = readings.slice(sent, sent + perTick);
      await producer.send({
        topic: options.topic,
        messages: chunk.map((r) => ({
          key: r.readingId,
          value: encoder.encodeWithId(id, r),
          partition: partitioner({ topic: options.topic, partitionMetadata: partitions, message: { key: r.deviceId, value: null } }),
        })),
      });
      sent += chunk.length;
      if (options.rate > 0) {
        const wait = started + (sent / options.rate) * 1000 - Date.now();
        if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      }
    }
  } finally {
    await producer.disconnect();
  }
  return (Date.now() - started) / 1000;
}

async function waitForTopic(kafka: ReturnType<typeof createKafka>, topic: string, waitMs: number): Promise<PartitionMetadata[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + waitMs;
    while (!(await admin.listTopics()).includes(topic)) {
      if (Date.now() >= deadline) throw new Error(`topic ${topic} does not exist (waited ${waitMs} ms)`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions;
  } finally {
    await admin.disconnect();
  }
}
