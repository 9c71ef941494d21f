import * as path from 'node:path';
import { TopicConsumer } from '../client/topic-consumer';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { createKafka } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { Pipeline, type PipelineEndpoints } from '../stages/pipeline';
import { loadTopology } from '../topology/loader';
import { builtinProcessors } from '../stages/builtin';
import { repoRoot } from '../stack/paths';
import { createLogger } from '../util/logger';
import { prepareFeatureSets } from '../features/prepare';
import { malformedTransactions } from './malformed';
import { produceDemoEvents } from './produce';

const log = createLogger('demo');

export interface DemoOptions {
  endpoints: PipelineEndpoints;
  topologyFile: string;
  count: number;
  rate: number;
  seed: number;
  /** Malformed events mixed in to show the dead-letter path (one of each kind, up to 5). */
  malformed: number;
  timeoutMs?: number;
}

export interface DemoSummary {
  produced: number;
  malformedInjected: number;
  predictions: number;
  flagged: number;
  flaggedRate: number;
  plantedFraud: number;
  precision: number;
  recall: number;
  latencyMs: { p50: number; p99: number; max: number };
  deadLettered: number;
  deadLetterKinds: Record<string, number>;
  seconds: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** Runs the topology in-process, produces the demo events, and waits until every one is accounted for. */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const topology = loadTopology(options.topologyFile, { registry: builtinProcessors(), baseDir: repoRoot() });
  const topics = topology.spec;
  const input = topics.stages[0].input.topic;
  const predictionsTopic = topics.stages[topics.stages.length - 1].output.topic;
  const runId = `demo-${options.seed}-${started}`;
  // Batch feature sets from their files (new version + atomic flip) and a fresh streaming state.
  if (topology.spec.features && options.endpoints.redisUrl) await prepareFeatureSets(topology, options.endpoints.redisUrl, { resetStreaming: true });
  const pipeline = await Pipeline.start({ topology, endpoints: options.endpoints });

  const truth = new Map<string, boolean>();
  const latencies: number[] = [];
  let predictions = 0;
  let flagged = 0;
  let truePositives = 0;
  const dlqKinds: Record<string, number> = {};
  let deadLettered = 0;
  const ours = (key: string | null) => key !== null && (truth.has(key) || key.startsWith(`${runId}-bad-`));

  const predictionConsumer = new TopicConsumer({ brokers: options.endpoints.brokers, schemaRegistryUrl: options.endpoints.schemaRegistryUrl, topic: predictionsTopic, schema: 'prediction', groupId: `${runId}-predictions`, fromBeginning: true });
  const dlqConsumer = new TopicConsumer({ brokers: options.endpoints.brokers, schemaRegistryUrl: options.endpoints.schemaRegistryUrl, topic: topics.deadLetter.topic, schema: 'dead-letter', groupId: `${runId}-dlq`, fromBeginning: true });
  try {
    await Promise.all([
      predictionConsumer.run((p) => {
        if (!ours(p.key)) return;
        predictions++;
        latencies.push(p.producedTime - p.ingestTime);
        if (p.label) {
          flagged++;
          if (truth.get(p.key)) truePositives++;
        }
      }),
      dlqConsumer.run((d) => {
        const key = d.key?.toString() ?? null;
        if (!ours(key)) return;
        deadLettered++;
        dlqKinds[d.errorKind] = (dlqKinds[d.errorKind] ?? 0) + 1;
      }),
    ]);

    const registry = new SchemaRegistryClient({ url: options.endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
    const bad = (await malformedTransactions(registry, catalog.get('transaction'), `${runId}-bad-`)).slice(0, options.malformed);
    let seq = 0;
    const produceBad = async () => {
      if (bad.length === 0) return;
      const kafka = createKafka({ clientId: 'tributary-demo-malformed', brokers: options.endpoints.brokers });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: input, messages: bad.map((b) => ({ key: b.key, value: b.value })) });
      await producer.disconnect();
    };
    const [{ seconds }] = await Promise.all([
      produceDemoEvents({
        brokers: options.endpoints.brokers,
        schemaRegistryUrl: options.endpoints.schemaRegistryUrl,
        topic: input,
        count: options.count,
        rate: options.rate,
        seed: options.seed,
        onEvent: (tx, isFraud) => {
          seq++;
          truth.set(tx.transactionId, isFraud);
        },
      }),
      produceBad(),
    ]);
    log.info({ produced: seq, seconds }, 'demo events produced');

    const expected = options.count + bad.length;
    const deadline = Date.now() + (options.timeoutMs ?? 120000);
    while (predictions + deadLettered < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (predictions + deadLettered < expected) {
      log.error({ predictions, deadLettered, expected }, 'timed out waiting for every event to be accounted for');
    }
  } finally {
    await Promise.allSettled([predictionConsumer.stop(), dlqConsumer.stop()]);
    await pipeline.stop();
  }
  latencies.sort((a, b) => a - b);
  const planted = [...truth.values()].filter(Boolean).length;
  return {
    produced: options.count,
    malformedInjected: Math.min(options.malformed, 5),
    predictions,
    flagged,
    flaggedRate: predictions > 0 ? flagged / predictions : 0,
    plantedFraud: planted,
    precision: flagged > 0 ? truePositives / flagged : 0,
    recall: planted > 0 ? truePositives / planted : 0,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN },
    deadLettered,
    deadLetterKinds: dlqKinds,
    seconds: (Date.now() - started) / 1000,
  };
}

export function formatSummary(s: DemoSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    'Tributary demo — fraud-detection topology',
    `  events produced        ${s.produced} (+${s.malformedInjected} malformed injected)`,
    `  predictions            ${s.predictions}`,
    `  flagged as fraud       ${s.flagged} (${pct(s.flaggedRate)}); planted fraud ${s.plantedFraud}`,
    `  precision / recall     ${pct(s.precision)} / ${pct(s.recall)} (against the generator's planted labels)`,
    `  latency p50 / p99      ${s.latencyMs.p50} ms / ${s.latencyMs.p99} ms (event in Kafka -> prediction produced)`,
    `  dead-lettered          ${s.deadLettered} ${JSON.stringify(s.deadLetterKinds)}`,
    `  wall time              ${s.seconds.toFixed(1)} s`,
  ].join('\n');
}
