/**
 * System under test #1: the fraud pipeline written "the obvious way" with kafkajs — eachMessage,
 * and per event: decode, extract features, (optionally) one Redis HGETALL of the card's hash,
 * one onnxruntime run of a 1-row batch, encode, one producer.send with acks=all. Offsets are
 * auto-committed by kafkajs. Same input topic, same model, same Avro schemas and serde as Tributary,
 * so the difference is the per-event structure (and the Redis read, when on).
 */
import * as path from 'node:path';
import Redis from 'ioredis';
import type { Prediction, Transaction } from '../../../src/client/generated/avro-types';
import { FraudFeatureExtractor, loadGeneratorSpec } from '../../../src/features/fraud-extractor';
import { OnnxModel } from '../../../src/inference/onnx-model';
import { SchemaCatalog } from '../../../src/kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../../../src/kafka/avro-serde';
import { createKafka } from '../../../src/kafka/client';
import { RecordRejection } from '../../../src/kafka/dead-letter';
import { SchemaRegistryClient } from '../../../src/kafka/schema-registry';
import { repoRoot } from '../../../src/stack/paths';
import { benchTopology, childConfig, inputTopic, predictionTopic, tell } from '../common';

async function main(): Promise<void> {
  const cfg = childConfig();
  const topology = benchTopology(cfg.suffix, cfg.partitions);
  const input = inputTopic(topology);
  const output = predictionTopic(topology);
  const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
  const registry = new SchemaRegistryClient({ url: cfg.schemaRegistryUrl });
  const decoder = new AvroDecoder<Transaction>(registry, catalog.get('transaction').type);
  const encoder = new AvroEncoder<Prediction>(registry, catalog.get('prediction'), output);
  const extractor = new FraudFeatureExtractor(loadGeneratorSpec());
  const model = await OnnxModel.load(path.join(repoRoot(), 'models'), 'fraud', '1');
  const threshold = model.card.threshold;
  const redis = cfg.redis ? new Redis(cfg.redisUrl) : undefined;

  const kafka = createKafka({ clientId: 'bench-naive', brokers: cfg.brokers });
  const consumer = kafka.consumer({ groupId: `bench-naive-${cfg.suffix}`, maxWaitTimeInMs: 100 });
  const producer = kafka.producer();
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  const counters = { consumed: 0, produced: 0, rejected: 0 };
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));

  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      counters.consumed++;
      const tx = await decoder.decode(message.value);
      if (tx instanceof RecordRejection) {
        counters.rejected++;
        return;
      }
      const features = new Float32Array(extractor.size);
      extractor.extractInto(tx, features);
      if (redis) await redis.hgetall(`bench:card:${tx.cardId}`);
      const [score] = await model.score(features, 1);
      const prediction: Prediction = {
        key: tx.transactionId,
        modelName: model.card.name,
        modelVersion: model.card.version,
        score,
        label: score >= threshold,
        threshold,
        eventTime: tx.eventTime,
        ingestTime: Number(message.timestamp),
        producedTime: Date.now(),
        lineage: { topic: input, partition, offset: Number(message.offset) },
      };
      await producer.send({ topic: output, messages: [{ key: tx.transactionId, value: await encoder.encode(prediction) }] });
      counters.produced++;
    },
  });
  await joined;
  tell({ type: 'ready' });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await consumer.disconnect();
    await producer.disconnect();
    redis?.disconnect();
    await model.close();
    tell({ type: 'stopped', counters });
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', () => void stop());
  process.on('message', (m: { type?: string }) => m?.type === 'stop' && void stop());
}

main().catch((err) => {
  tell({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
