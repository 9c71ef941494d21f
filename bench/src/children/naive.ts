/**
 * Baseline: the fraud pipeline of a topology variant written "the obvious way" with kafkajs —
 * eachMessage, and per event: decode, assemble the same feature vector as the topology's extraction
 * stage (same base feature set; the same Redis batch and streaming feature sets through the same
 * `Enricher`, called with a batch of one event, so the same Redis reads), one onnxruntime run of a
 * 1-row batch of the topology's model, encode, one producer.send (acks=all, idempotent producer);
 * offsets auto-committed by kafkajs (at-least-once). What it does differently from the topology is
 * derived from the topology in main.ts (`naiveDifferences`), not written here.
 */
import Redis from 'ioredis';
import * as path from 'node:path';
import type { Prediction } from '../../../src/client/generated/avro-types';
import { Enricher } from '../../../src/features/enricher';
import { OnnxModel } from '../../../src/inference/onnx-model';
import { SchemaCatalog } from '../../../src/kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../../../src/kafka/avro-serde';
import { createKafka } from '../../../src/kafka/client';
import { RecordRejection } from '../../../src/kafka/dead-letter';
import { SchemaRegistryClient } from '../../../src/kafka/schema-registry';
import { extractionVector, type ExtractionConfig } from '../../../src/stages/extraction';
import type { InferenceConfig } from '../../../src/stages/inference';
import { childConfig, tell } from '../common';
import { loadVariant, topologyFacts } from '../topologies';
import { loadCode, ownCode } from '../tributary-code';
import { FRAUD_SCHEMAS_DIR, type Transaction } from '../../../examples/fraud/schemas';

async function main(): Promise<void> {
  const cfg = childConfig();
  const topology = loadVariant(loadCode(ownCode()), { variant: cfg.variant ?? 'default', suffix: cfg.suffix, partitions: cfg.partitions });
  const facts = topologyFacts(topology);
  const extract = topology.spec.stages.find((s) => s.processor === 'feature_extraction')!;
  const score = topology.spec.stages.find((s) => s.processor === 'onnx_inference')!;
  const scfg = score.config as unknown as InferenceConfig & { model: { repository: string; name: string; version: string } };
  const input = facts.inputTopic;
  const output = facts.predictionTopic;
  const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
  const registry = new SchemaRegistryClient({ url: cfg.schemaRegistryUrl });
  const decoder = new AvroDecoder<Transaction>(registry, catalog.get('transaction').type);
  const encoder = new AvroEncoder<Prediction>(registry, catalog.get('prediction'), output);
  const vector = extractionVector(extract.config as unknown as ExtractionConfig, { topology });
  const redis = vector.sets.length > 0 ? new Redis(cfg.redisUrl) : undefined;
  const groupId = `bench-naive-${cfg.suffix}`;
  const enricher = redis ? new Enricher(vector, { redis, namespace: groupId }) : undefined;
  await enricher?.init();
  const model = await OnnxModel.load(path.join(topology.baseDir, scfg.model.repository), scfg.model.name, scfg.model.version, { intraOpNumThreads: scfg.intraOpNumThreads });
  const threshold = scfg.threshold ?? model.card.threshold;

  const kafka = createKafka({ clientId: 'bench-naive', brokers: cfg.brokers });
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const producer = kafka.producer({ idempotent: true });
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
      let values: number[];
      if (enricher) {
        const [r] = await enricher.enrich([{ event: tx, eventTime: tx.eventTime, topic: input, partition, offset: Number(message.offset) }]);
        if ('error' in r) {
          counters.rejected++;
          return;
        }
        values = r.values;
      } else values = vector.base.extract(tx);
      const [p] = await model.score(Float32Array.from(values), 1);
      const prediction: Prediction = {
        key: message.key?.toString() ?? tx.transactionId,
        modelName: model.card.name,
        modelVersion: model.card.version,
        score: p,
        label: p >= threshold,
        threshold,
        eventTime: tx.eventTime,
        ingestTime: Number(message.timestamp),
        producedTime: Date.now(),
        lineage: { topic: input, partition, offset: Number(message.offset) },
      };
      await producer.send({ topic: output, acks: -1, messages: [{ key: prediction.key, value: await encoder.encode(prediction) }] });
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
    tell({ type: 'stopped', counters: { ...counters, redisRoundTrips: enricher?.stats.roundTrips ?? 0 } });
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', () => void stop());
  process.on('message', (m: { type?: string }) => m?.type === 'stop' && void stop());
}

main().catch((err) => {
  tell({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
