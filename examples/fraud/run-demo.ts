import * as path from 'node:path';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { createKafka, idempotentProducer } from '../../src/kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../src/kafka/schema-registry';
import { Pipeline, type PipelineEndpoints } from '../../src/stages/pipeline';
import { loadTopology, topicSchema } from '../../src/stages/load-topology';
import type { LoadedTopology } from '../../src/topology/spec';
import { repoRoot } from '../../src/util/paths';
import { createLogger } from '../../src/util/logger';
import { prepareFeatureSets } from '../../src/features/prepare';
import type { ShadowReport } from '../../src/shadow/report';
import { writeShadowReport } from '../../src/shadow/write-report';
import { malformedTransactions } from './malformed';
import { batchAsOf, produceDemoEvents } from './produce';
import { transactionSchema } from './schemas';

const log = createLogger('demo');

export interface DemoOptions {
  endpoints: PipelineEndpoints;
  topologyFile: string;
  count: number;
  rate: number;
  seed: number;
  /** Malformed events mixed in to show the dead-letter path (one of each kind, up to 5). */
  malformed: number;
  /** Generator clock at the first event (ms); default now, so every run has fresh event times. */
  startTime?: number;
  /** Publish the planted labels to the topology's feedback topic (default true when it has one). */
  feedback?: boolean;
  /** Write the shadow report when the topology has a shadow stage (default true). */
  shadowReport?: boolean;
  /** Where the report goes; default .tributary/reports/demo-<time>. */
  reportDir?: string;
  /** Bootstrap resamples for the report's intervals (default 300). */
  bootstrap?: number;
  timeoutMs?: number;
}

export interface DemoShadowSummary {
  stage: string;
  topic: string;
  records: number;
  /** Absent when the report was skipped. */
  report?: {
    json: string;
    html: string;
    models: ShadowReport['models'];
    /** The live route the shadow was compared with (the canary's control arm), if any. */
    route?: string;
    matched: number;
    agreement: number;
    psi: number;
    metrics?: { n: number; positives: number; live: { rocAuc: number; precision: number; recall: number }; shadow: { rocAuc: number; precision: number; recall: number } };
    notes: string[];
    verdict: string;
  };
}

export interface DemoSummary {
  topology: string;
  seed: number;
  /** ISO date of the generator clock's first event (event times fall on that UTC day). */
  eventDay: string;
  /** ISO time the first event was sent: `--from` for a backfill of this run. */
  producedFrom: string;
  produced: number;
  malformedInjected: number;
  predictions: number;
  /** Predictions by route (`canary:<arm>`) when the live stage routes between versions. */
  routes: Record<string, number>;
  flagged: number;
  flaggedRate: number;
  plantedFraud: number;
  precision: number;
  recall: number;
  latencyMs: { p50: number; p99: number; max: number };
  deadLettered: number;
  deadLetterKinds: Record<string, number>;
  /** Labels published to the feedback topic (0 when skipped or the topology has none). */
  labels: number;
  feedbackTopic?: string;
  shadow?: DemoShadowSummary;
  seconds: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** The stages and topics the demo drives: input, the live scorer, an optional shadow, an optional feedback topic. */
export function demoRoles(topology: LoadedTopology): { input: string; predictions: string; controlRoute?: string; shadow?: { stage: string; topic: string }; feedback?: string; dlq: string } {
  const spec = topology.spec;
  const live = spec.stages.find((s) => s.processor === 'onnx_inference') ?? spec.stages[spec.stages.length - 1];
  const shadow = spec.stages.find((s) => s.processor === 'onnx_shadow');
  const arms = (live.config as { routing?: { arms: { name: string }[] } }).routing?.arms;
  return {
    input: spec.stages[0].input.topic,
    predictions: live.output.topic,
    // With a canary, the shadow is compared with the control arm (a treatment may serve the shadow's own version).
    controlRoute: arms ? `canary:${arms[0].name}` : undefined,
    shadow: shadow && { stage: shadow.name, topic: shadow.output.topic },
    feedback: spec.topics.find((t) => t.schema === 'feedback')?.name,
    dlq: spec.deadLetter.topic,
  };
}

/**
 * Runs the topology in-process (shadow stages included), produces the demo events with fresh event
 * times, publishes their planted labels, waits until every event is accounted for (and the shadow
 * has logged each one), then writes the shadow report.
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const topology = loadTopology(options.topologyFile);
  const roles = demoRoles(topology);
  const startTime = options.startTime ?? started;
  const runId = `demo-${options.seed}-${started}`;
  const feedbackTopic = options.feedback === false ? undefined : roles.feedback;
  // Batch feature sets from their files, dated the day before the run's first event (as the
  // training data's batch job was), plus a fresh streaming state: the world the model was trained on, today.
  if (topology.spec.features && options.endpoints.redisUrl) {
    await prepareFeatureSets(topology, options.endpoints.redisUrl, { resetStreaming: true, redateTo: batchAsOf(startTime) });
  }
  const pipeline = await Pipeline.start({ topology, endpoints: options.endpoints });

  const truth = new Map<string, boolean>();
  const latencies: number[] = [];
  const routes: Record<string, number> = {};
  let predictions = 0;
  let flagged = 0;
  let truePositives = 0;
  let shadowRecords = 0;
  const dlqKinds: Record<string, number> = {};
  let deadLettered = 0;
  let labels = 0;
  let producedFrom = Date.now();
  const ours = (key: string | null) => key !== null && (truth.has(key) || key.startsWith(`${runId}-bad-`));
  const consumerOf = <S extends 'prediction' | 'dead-letter' | 'shadow-prediction'>(topic: string, schema: S, name: string) =>
    new TopicConsumer({ brokers: options.endpoints.brokers, schemaRegistryUrl: options.endpoints.schemaRegistryUrl, topic, schema, groupId: `${runId}-${name}`, fromBeginning: true });

  const predictionConsumer = consumerOf(roles.predictions, 'prediction', 'predictions');
  const dlqConsumer = consumerOf(roles.dlq, 'dead-letter', 'dlq');
  const shadowConsumer = roles.shadow && consumerOf(roles.shadow.topic, 'shadow-prediction', 'shadow');
  const expected = () => truth.size + Math.min(options.malformed, 5);
  try {
    await Promise.all([
      predictionConsumer.run((p: Prediction) => {
        if (!ours(p.key)) return;
        predictions++;
        latencies.push(p.producedTime - p.ingestTime);
        if (p.route) routes[p.route] = (routes[p.route] ?? 0) + 1;
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
      shadowConsumer?.run((s) => {
        if (ours(s.key)) shadowRecords++;
      }),
    ]);

    const registry = new SchemaRegistryClient({ url: options.endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const bad = (await malformedTransactions(registry, transactionSchema(), `${runId}-bad-`)).slice(0, options.malformed);
    const produceBad = async () => {
      if (bad.length === 0) return;
      const kafka = createKafka({ clientId: 'tributary-demo-malformed', brokers: options.endpoints.brokers });
      const producer = idempotentProducer(kafka);
      await producer.connect();
      await producer.send({ topic: roles.input, messages: bad.map((b) => ({ key: b.key, value: b.value })) });
      await producer.disconnect();
    };
    producedFrom = Date.now();
    const [res] = await Promise.all([
      produceDemoEvents({
        brokers: options.endpoints.brokers,
        schemaRegistryUrl: options.endpoints.schemaRegistryUrl,
        topic: roles.input,
        count: options.count,
        rate: options.rate,
        seed: options.seed,
        startTime,
        feedbackTopic,
        onEvent: (tx, isFraud) => truth.set(tx.transactionId, isFraud),
      }),
      produceBad(),
    ]);
    labels = res.labels;
    log.info({ produced: res.produced, labels, seconds: res.seconds }, 'demo events produced');

    const deadline = Date.now() + (options.timeoutMs ?? 120000);
    const settled = () => predictions + deadLettered >= expected() && (!shadowConsumer || shadowRecords >= predictions);
    while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (predictions + deadLettered < expected()) log.error({ predictions, deadLettered, expected: expected() }, 'timed out waiting for every event to be accounted for');
    else if (!settled()) log.error({ shadowRecords, predictions }, 'timed out waiting for the shadow to log every event');
  } finally {
    await Promise.allSettled([predictionConsumer.stop(), dlqConsumer.stop(), shadowConsumer?.stop()]);
    await pipeline.stop();
  }

  let shadow: DemoShadowSummary | undefined;
  if (roles.shadow) {
    shadow = { stage: roles.shadow.stage, topic: roles.shadow.topic, records: shadowRecords };
    if (options.shadowReport !== false) {
      const outDir = path.resolve(options.reportDir ?? path.join(repoRoot(), '.tributary', 'reports', `demo-${new Date(started).toISOString().replace(/[:.]/g, '-')}`));
      const written = await writeShadowReport({
        kafka: createKafka({ clientId: 'tributary-demo-report', brokers: options.endpoints.brokers }),
        registry: new SchemaRegistryClient({ url: options.endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }),
        live: roles.predictions,
        shadow: roles.shadow.topic,
        feedback: feedbackTopic,
        // The input topic's schema as the topology declares it (the engine assumes none).
        events: { topic: roles.input, schema: topicSchema(topology, roles.input) },
        segmentBy: ['country', 'merchantCategory'],
        from: producedFrom,
        timeoutMs: 60000,
        outDir,
        options: { bootstrapIterations: options.bootstrap ?? 300, compareRoute: roles.controlRoute },
      });
      const r = written.report;
      const pick = (m: Record<string, number>) => ({ rocAuc: m.rocAuc, precision: m.precision, recall: m.recall });
      shadow.report = {
        json: written.json,
        html: written.html,
        models: r.models,
        route: roles.controlRoute,
        matched: r.counts.matched,
        agreement: r.agreement.rate,
        psi: r.divergence.psi,
        metrics: r.metrics && { n: r.metrics.n, positives: r.metrics.positives, live: pick(r.metrics.live), shadow: pick(r.metrics.shadow) },
        notes: r.notes,
        verdict: r.verdict.text,
      };
    }
  }

  latencies.sort((a, b) => a - b);
  const planted = [...truth.values()].filter(Boolean).length;
  return {
    topology: topology.file,
    seed: options.seed,
    eventDay: new Date(startTime - (startTime % 86_400_000)).toISOString().slice(0, 10),
    producedFrom: new Date(producedFrom).toISOString(),
    produced: options.count,
    malformedInjected: Math.min(options.malformed, 5),
    predictions,
    routes,
    flagged,
    flaggedRate: predictions > 0 ? flagged / predictions : 0,
    plantedFraud: planted,
    precision: flagged > 0 ? truePositives / flagged : 0,
    recall: planted > 0 ? truePositives / planted : 0,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN },
    deadLettered,
    deadLetterKinds: dlqKinds,
    labels,
    feedbackTopic,
    shadow,
    seconds: (Date.now() - started) / 1000,
  };
}

export function formatSummary(s: DemoSummary): string {
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
  const num = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '–');
  const lines = [
    `Tributary demo — ${path.relative(repoRoot(), s.topology) || s.topology} (seed ${s.seed}, events dated ${s.eventDay})`,
    `  events produced        ${s.produced} (+${s.malformedInjected} malformed injected)`,
    `  predictions            ${s.predictions}${Object.keys(s.routes).length > 1 ? ` by route ${Object.entries(s.routes).sort().map(([r, n]) => `${r} ${n}`).join(', ')}` : ''}`,
    `  flagged as fraud       ${s.flagged} (${pct(s.flaggedRate)}); planted fraud ${s.plantedFraud}`,
    `  precision / recall     ${pct(s.precision)} / ${pct(s.recall)} (against the generator's planted labels)`,
    `  latency p50 / p99      ${s.latencyMs.p50} ms / ${s.latencyMs.p99} ms (event in Kafka -> prediction produced)`,
    `  dead-lettered          ${s.deadLettered} ${JSON.stringify(s.deadLetterKinds)}`,
    `  labels                 ${s.feedbackTopic ? `${s.labels} published to ${s.feedbackTopic}` : 'not published'}`,
  ];
  if (s.shadow) {
    const r = s.shadow.report;
    lines.push(`  shadow                 ${s.shadow.records} records on ${s.shadow.topic} (stage ${s.shadow.stage})`);
    if (r) {
      lines.push(`  shadow vs live         ${r.models.shadow.join(', ')} vs ${r.models.live.join(', ')}${r.route ? ` (route ${r.route})` : ''}: ${r.matched} matched, agreement ${pct(r.agreement)}, PSI ${num(r.psi)}`);
      if (r.metrics) {
        const m = r.metrics;
        lines.push(`  quality (${m.n} labelled) ROC AUC ${num(m.live.rocAuc)} -> ${num(m.shadow.rocAuc)}, precision ${num(m.live.precision)} -> ${num(m.shadow.precision)}, recall ${num(m.live.recall)} -> ${num(m.shadow.recall)} (live -> shadow)`);
      }
      for (const n of r.notes) lines.push(`  note                   ${n}`);
      lines.push(`  verdict                ${r.verdict}`);
      lines.push(`  shadow report          ${r.html}`);
      lines.push(`                         ${r.json}`);
    } else lines.push('  shadow report          skipped (--no-report)');
  }
  // The demo's streaming state started empty at its first event: --warmup-from at the same point says so.
  lines.push(`  replay this run        tributary backfill ${path.relative(repoRoot(), s.topology) || s.topology} --from ${s.producedFrom} --warmup-from ${s.producedFrom} --output file:.tributary/backfill-demo.jsonl`);
  lines.push(`  wall time              ${s.seconds.toFixed(1)} s`);
  return lines.join('\n');
}
