/**
 * The IoT example end to end on the local stack (`npm run demo:iot`): starts the stack (or reuses a
 * running one), loads the batch feature files (re-dated to the day before the run, as in training)
 * with the same loader as `tributary features load`, runs examples/iot/topology.yaml in-process on
 * the unchanged engine, produces generated readings dated now plus malformed ones, waits until every
 * reading is accounted for (a prediction or a dead letter) and prints a summary against the
 * generator's planted anomalies. Stops what it started. The streaming state starts empty each run
 * (like a training session); readings of earlier runs on the topics are skipped by key.
 *
 *   node dist-examples/examples/iot/demo.js [--count N] [--rate R] [--seed S] [--malformed 0-5] [--json]
 */
import { TopicConsumer } from '../../src/client/topic-consumer';
import { createKafka, idempotentProducer } from '../../src/kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../src/kafka/schema-registry';
import { prepareFeatureSets } from '../../src/features/prepare';
import { Pipeline, type PipelineEndpoints } from '../../src/stages/pipeline';
import { ensurePrerequisites } from '../../src/stack/ensure-prerequisites';
import { ENDPOINT_ENV } from '../../src/stack/endpoints';
import { startTestStack } from '../../src/stack/test-harness';
import { createLogger } from '../../src/util/logger';
import { SensorGenerator, type AnomalyKind } from './generator';
import { malformedReadings } from './malformed';
import { produceReadings, readingSchema } from './produce';
import { iotRoles, loadIotTopology } from './topology';

const log = createLogger('iot-demo');
const DAY = 86_400_000;

export interface IotDemoOptions {
  endpoints: PipelineEndpoints;
  count: number;
  rate: number;
  seed: number;
  /** Malformed readings mixed in (one of each kind, up to 5). */
  malformed: number;
  /** Generator clock at the first reading (default now). */
  startTime?: number;
  /** Topic/topology suffix (tests: their own topics and state); default none: the topology's topics, as `tributary run` would use them. */
  suffix?: string;
  timeoutMs?: number;
}

export interface IotDemoSummary {
  topology: string;
  seed: number;
  produced: number;
  malformedInjected: number;
  predictions: number;
  flagged: number;
  plantedAnomalies: number;
  precision: number;
  recall: number;
  /** Recall per planted anomaly kind (flagged / planted). */
  recallByKind: Record<string, { planted: number; flagged: number }>;
  latencyMs: { p50: number; p99: number };
  deadLettered: number;
  deadLetterKinds: Record<string, number>;
  topics: { input: string; predictions: string; dlq: string };
  seconds: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export async function runIotDemo(options: IotDemoOptions): Promise<IotDemoSummary> {
  const started = Date.now();
  const topology = loadIotTopology({ suffix: options.suffix });
  const runId = `iot-demo-${options.seed}-${started}`;
  const roles = iotRoles(topology);
  const startTime = options.startTime ?? started;
  if (options.endpoints.redisUrl) {
    await prepareFeatureSets(topology, options.endpoints.redisUrl, { resetStreaming: true, redateTo: Math.floor(startTime / DAY) * DAY - DAY });
  }
  const readings = new SensorGenerator({ seed: options.seed, startTime }).take(options.count);
  const truth = new Map(readings.map((g) => [g.event.readingId, g.kind] as [string, AnomalyKind | null]));
  // Other runs' records on the same topics are told apart by key (reading ids carry the seed).
  const badPrefix = `${runId}-bad-`;
  const ours = (key: string | null) => key !== null && (truth.has(key) || key.startsWith(badPrefix));

  const pipeline = await Pipeline.start({ topology, endpoints: options.endpoints });
  let predictions = 0;
  let deadLettered = 0;
  const flaggedKeys = new Set<string>();
  const latencies: number[] = [];
  const dlqKinds: Record<string, number> = {};
  const consumerOf = <S extends 'prediction' | 'dead-letter'>(topic: string, schema: S) =>
    new TopicConsumer({ brokers: options.endpoints.brokers, schemaRegistryUrl: options.endpoints.schemaRegistryUrl, topic, schema, groupId: `${runId}-${schema}`, fromBeginning: true });
  const predictionConsumer = consumerOf(roles.predictions, 'prediction');
  const dlqConsumer = consumerOf(roles.dlq, 'dead-letter');
  const malformed = Math.min(options.malformed, 5);
  try {
    await Promise.all([
      predictionConsumer.run((p) => {
        if (!ours(p.key)) return;
        predictions++;
        latencies.push(p.producedTime - p.ingestTime);
        if (p.label) flaggedKeys.add(p.key);
      }),
      dlqConsumer.run((d) => {
        const key = d.key?.toString() ?? null;
        if (!ours(key)) return;
        deadLettered++;
        dlqKinds[d.errorKind] = (dlqKinds[d.errorKind] ?? 0) + 1;
      }),
    ]);
    const registry = new SchemaRegistryClient({ url: options.endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const bad = malformed > 0 ? (await malformedReadings(registry, readingSchema(), readings[0].event, badPrefix)).slice(0, malformed) : [];
    const seconds = await produceReadings(readings.map((g) => g.event), { brokers: options.endpoints.brokers, schemaRegistryUrl: options.endpoints.schemaRegistryUrl, topic: roles.input, rate: options.rate });
    if (bad.length > 0) {
      const producer = idempotentProducer(createKafka({ clientId: 'tributary-iot-malformed', brokers: options.endpoints.brokers }));
      await producer.connect();
      await producer.send({ topic: roles.input, messages: bad.map((b) => ({ key: b.key, value: b.value })) });
      await producer.disconnect();
    }
    log.info({ produced: readings.length, malformed: bad.length, seconds }, 'readings produced');
    const deadline = Date.now() + (options.timeoutMs ?? 120000);
    while (predictions + deadLettered < readings.length + bad.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (predictions + deadLettered < readings.length + bad.length) log.error({ predictions, deadLettered, expected: readings.length + bad.length }, 'timed out waiting for every reading to be accounted for');
  } finally {
    await Promise.allSettled([predictionConsumer.stop(), dlqConsumer.stop()]);
    await pipeline.stop();
  }

  const recallByKind: Record<string, { planted: number; flagged: number }> = {};
  let planted = 0;
  let truePositives = 0;
  for (const [key, kind] of truth) {
    if (kind === null) continue;
    planted++;
    const k = (recallByKind[kind] ??= { planted: 0, flagged: 0 });
    k.planted++;
    if (flaggedKeys.has(key)) {
      k.flagged++;
      truePositives++;
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    topology: topology.file,
    seed: options.seed,
    produced: readings.length,
    malformedInjected: malformed,
    predictions,
    flagged: flaggedKeys.size,
    plantedAnomalies: planted,
    precision: flaggedKeys.size > 0 ? truePositives / flaggedKeys.size : 0,
    recall: planted > 0 ? truePositives / planted : 0,
    recallByKind,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    deadLettered,
    deadLetterKinds: dlqKinds,
    topics: roles,
    seconds: (Date.now() - started) / 1000,
  };
}

export function formatIotSummary(s: IotDemoSummary): string {
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
  return [
    `Tributary IoT example — sensor anomaly scoring (seed ${s.seed})`,
    `  readings produced      ${s.produced} (+${s.malformedInjected} malformed injected) to ${s.topics.input}`,
    `  predictions            ${s.predictions} on ${s.topics.predictions}`,
    `  flagged as anomalous   ${s.flagged}; planted anomalies ${s.plantedAnomalies}`,
    `  precision / recall     ${pct(s.precision)} / ${pct(s.recall)} (against the generator's planted anomalies)`,
    `  recall by kind         ${Object.entries(s.recallByKind).sort().map(([k, v]) => `${k} ${v.flagged}/${v.planted}`).join(', ') || '–'}`,
    `  latency p50 / p99      ${s.latencyMs.p50} ms / ${s.latencyMs.p99} ms (reading in Kafka -> prediction produced)`,
    `  dead-lettered          ${s.deadLettered} ${JSON.stringify(s.deadLetterKinds)} on ${s.topics.dlq}`,
    `  wall time              ${s.seconds.toFixed(1)} s`,
  ].join('\n');
}

function parseArgs(argv: string[]): { count: number; rate: number; seed: number; malformed: number; json: boolean } {
  const get = (name: string, dflt: number): number => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return dflt;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) {
      process.stderr.write(`--${name}: expected a non-negative integer, got '${argv[i + 1] ?? ''}'\n`);
      process.exit(2);
    }
    return v;
  };
  const known = new Set(['--count', '--rate', '--seed', '--malformed', '--json']);
  const unknown = argv.filter((a, i) => a.startsWith('--') && !known.has(a) && !(i > 0 && known.has(argv[i - 1])));
  if (unknown.length > 0) {
    process.stderr.write(`unknown option ${unknown[0]} (options: ${[...known].join(', ')})\n`);
    process.exit(2);
  }
  const malformed = get('malformed', 5);
  if (malformed > 5) {
    process.stderr.write(`--malformed: expected 0-5 (one of each kind), got ${malformed}\n`);
    process.exit(2);
  }
  return { count: get('count', 1000), rate: get('rate', 250), seed: get('seed', Date.now() % 1_000_000_000), malformed, json: argv.includes('--json') };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  loadIotTopology(); // fail fast on a bad topology, before starting servers
  if (!Object.values(ENDPOINT_ENV).every((name) => Boolean(process.env[name]?.trim()))) await ensurePrerequisites({ set: 'stack' });
  const stack = await startTestStack();
  try {
    const summary = await runIotDemo({ endpoints: stack.endpoints, ...args });
    process.stdout.write(`${args.json ? JSON.stringify(summary, null, 2) : formatIotSummary(summary)}\n`);
    if (summary.predictions + summary.deadLettered < summary.produced + summary.malformedInjected) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
