import { Registry } from 'prom-client';
import { ShadowAgreementConsumer } from '../../src/monitoring/shadow-agreement';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { Prediction, ShadowPrediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { builtinProcessors } from '../../src/stages/builtin';
import { validateTopology } from '../../src/stages/load-topology';
import { v1Topology, stage } from '../helpers/model-repo';
import { CLI, StageProcess } from '../helpers/processes';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, transactionSchema, type FraudSchemaTypes, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

const lineageKey = (l: { topic: string; partition: number; offset: number }) => `${l.topic}/${l.partition}/${l.offset}`;

/**
 * Acceptance for shadow deployment (issue 5): a shadow far slower than live (1 s a model call) never holds
 * live back and still completes its log; killing the shadow does not affect live output.
 */
describe('shadow model stage (onnx_shadow) beside the live stage, through real Kafka', () => {
  const suffix = uniqueSuffix();
  const topology = v1Topology(suffix, path.join(repoRoot(), 'models'), (spec) => {
    spec.topics.push({ name: `fraud.shadow.${suffix}`, partitions: 3, schema: 'shadow-prediction' });
    spec.topics.push({ name: `fraud.feedback.${suffix}`, partitions: 1, schema: 'feedback' });
    spec.stages.push({
      name: 'shadow',
      processor: 'onnx_shadow',
      input: { topic: `fraud.features.${suffix}` },
      output: { topic: `fraud.shadow.${suffix}` },
      consumer: { sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 },
      config: { model: { repository: 'models', name: 'fraud', version: '1' }, shadowOf: 'score', threshold: 0.5, timeoutMs: 10000 },
    });
  });
  const shadowTopic = `fraud.shadow.${suffix}`;
  let live: Pipeline;
  const predictions: Prediction[] = [];
  const shadowLog: ShadowPrediction[] = [];
  const consumers: TopicConsumer<'prediction' | 'shadow-prediction'>[] = [];
  let producer: TopicProducer<'transaction', FraudSchemaTypes>;
  const generator = new TransactionGenerator({ seed: 5 });
  const sent: Transaction[] = [];
  const truth = new Map<string, boolean>();

  /** Steady load: `n` events in chunks of 10 every 50 ms (200/s). */
  const stream = async (n: number) => {
    for (let i = 0; i < n; i += 10) {
      const events = Array.from({ length: Math.min(10, n - i) }, () => {
        const g = generator.next();
        truth.set(g.tx.transactionId, g.isFraud);
        return g.tx;
      });
      sent.push(...events);
      await producer.send(events);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const liveLatencies = (from: number, to: number) => {
    const keys = new Set(sent.slice(from, to).map((e) => e.transactionId));
    return predictions.filter((p) => keys.has(p.key)).map((p) => p.producedTime - p.ingestTime);
  };

  beforeAll(async () => {
    live = await Pipeline.start({ topology, endpoints, stages: ['extract', 'score'] });
    const p = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `verify-p-${suffix}` });
    await p.run((v) => void predictions.push(v));
    const s = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: shadowTopic, schema: 'shadow-prediction', groupId: `verify-s-${suffix}` });
    await s.run((v) => void shadowLog.push(v));
    consumers.push(p, s);
    producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    await producer.connect();
  });
  afterAll(async () => {
    await producer?.disconnect();
    await Promise.all(consumers.map((c) => c.stop()));
    await live?.stop();
  });

  it('a shadow far slower than live (1 s per model call) never holds live back, and its log completes with lineage that joins the live log exactly', async () => {
    // Phase A: live alone.
    await stream(400);
    await waitFor(() => predictions.length >= 400, 30000, () => `${predictions.length}/400 live predictions`);
    const a = liveLatencies(0, 400);
    const liveModelMs = quantile(predictions.map((p) => p.latencyMs ?? 0), 0.5);

    // Phase B: the same load with a shadow whose every model call takes 1 s (hundreds of times the
    // live model's): were live to wait on the shadow, each live prediction would take at least that.
    const delay = Math.max(1000, 10 * liveModelMs);
    (stage(topology.spec, 'shadow').config as { simulateDelayMs?: number }).simulateDelayMs = delay;
    const shadow = await Pipeline.start({ topology, endpoints, stages: ['shadow'] });
    try {
      // The shadow starts in this process (sharing its event loop) and first catches up on phase A's
      // 400 records; phase B measures the steady state beside it, not that start-up burst (a CI run
      // on a cold 2-core machine once moved live p50 from 9 to 42 ms while the shadow caught up).
      await waitFor(() => shadowLog.length >= 400, 60000, () => `${shadowLog.length}/400 shadow records (catching up on phase A)`);
      await stream(400);
      await waitFor(() => predictions.length >= 800, 30000, () => `${predictions.length}/800 live predictions`);
      const b = liveLatencies(400, 800);
      const p99A = quantile(a, 0.99);
      const p99B = quantile(b, 0.99);
      const shadowMs = quantile(shadowLog.map((s) => s.latencyMs), 0.5);
      process.stderr.write(`shadow acceptance: live p50/p99 without shadow ${quantile(a, 0.5)}/${p99A} ms, with a ${delay.toFixed(1)} ms-slower shadow ${quantile(b, 0.5)}/${p99B} ms; live model p50 ${liveModelMs.toFixed(2)} ms, shadow model p50 ${shadowMs?.toFixed(1)} ms\n`);
      // Live does not wait on the shadow: its p99 stays under half of one shadow model call. The
      // bound is what decides the property, not a noise band around phase A: on a shared 2-core CI
      // machine the shadow's own group and exactly-once commits compete for the cores, and a former
      // bound of 1.5x phase A's p99 + 50 ms failed once (107 -> 223 ms) with the shadow keeping up.
      // How much a shadow costs live is a speed figure (printed above; bench/ for targets).
      expect(p99B).toBeLessThan(delay / 2);

      // The shadow log completes: every input once, OK, with the live prediction's lineage.
      await waitFor(() => shadowLog.length >= 800, 60000, () => `${shadowLog.length}/800 shadow records`);
      await new Promise((r) => setTimeout(r, 1000));
      expect(shadowLog).toHaveLength(800);
      expect(shadowLog.every((s) => s.status === 'OK' && s.modelVersion === '1' && s.shadow === 'shadow' && s.latencyMs >= delay * 0.9)).toBe(true);
      const liveByLineage = new Map(predictions.map((p) => [lineageKey(p.lineage), p]));
      expect(liveByLineage.size).toBe(800);
      for (const s of shadowLog) {
        const p = liveByLineage.get(lineageKey(s.lineage));
        expect(p?.key).toBe(s.key);
        expect(Math.abs(p!.score - s.score!)).toBeLessThan(1e-6); // same model version: same score
      }

      // The online agreement metric joins the two logs the same way: same model => full agreement.
      const registry = new Registry();
      const agreement = new ShadowAgreementConsumer({
        kafka: createKafka({ clientId: 'agreement-test', brokers: endpoints.brokers }),
        registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl }),
        metricsRegistry: registry,
        predictionsTopic: `fraud.predictions.${suffix}`,
        shadowTopic,
        groupId: `agreement-${suffix}`,
      });
      await agreement.start();
      try {
        const joined = async () => (await registry.getSingleMetricAsString('tributary_shadow_joined_total'));
        const deadline = Date.now() + 30000;
        while (!/result="agree"\} 800/.test(await joined()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        expect(await joined()).toMatch(/tributary_shadow_joined_total\{model="fraud",shadow_version="1",result="agree"\} 800/);
        expect(await registry.getSingleMetricAsString('tributary_shadow_agreement_ratio')).toMatch(/tributary_shadow_agreement_ratio\{model="fraud",shadow_version="1"\} 1/);
      } finally {
        await agreement.stop();
      }
    } finally {
      await shadow.stop();
    }
  });

  it('killing the shadow stage (kill -9, its own process) does not affect the live output; restarted, its log completes exactly once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-shadow-'));
    const file = path.join(dir, 'topology.yaml');
    const spec = JSON.parse(JSON.stringify(topology.spec));
    spec.stages.find((s: { name: string }) => s.name === 'shadow').config.simulateDelayMs = 20;
    validateTopology(spec, file, { registry: builtinProcessors(), baseDir: repoRoot() });
    fs.writeFileSync(file, stringify(spec));

    const first = new StageProcess(file, ['--stage', 'shadow']);
    await first.waitForLog('pipeline running', 40000);
    const before = sent.length;
    const streaming = stream(400);
    await waitFor(() => shadowLog.length >= 850, 30000, () => `${shadowLog.length} shadow records`);
    first.kill('SIGKILL');
    await first.exited;
    await streaming;
    const total = sent.length;
    await waitFor(() => predictions.length >= total, 30000, () => `${predictions.length}/${total} live predictions after the shadow was killed`);
    await new Promise((r) => setTimeout(r, 1000));
    expect(predictions).toHaveLength(total);
    expect(new Set(predictions.map((p) => p.key)).size).toBe(total);
    expect(live.readiness().ready).toBe(true);
    expect(shadowLog.length).toBeLessThan(total); // the shadow really was behind when killed

    const second = new StageProcess(file, ['--stage', 'shadow']);
    try {
      await second.waitForLog('pipeline running', 40000);
      await waitFor(() => shadowLog.length >= total, 60000, () => `${shadowLog.length}/${total} shadow records after restart`);
      await new Promise((r) => setTimeout(r, 1500));
      expect(shadowLog).toHaveLength(total);
      expect(new Set(shadowLog.map((s) => lineageKey(s.lineage))).size).toBe(total);
      expect(sent.length - before).toBe(400);
    } finally {
      await second.stop();
    }
  });

  it('`tributary shadow report` reads both logs, labels and events from Kafka and writes JSON + HTML: every event matched, same model => full agreement', async () => {
    const feedback = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.feedback.${suffix}`, schema: 'feedback', key: (f) => f.key });
    await feedback.connect();
    await feedback.send(sent.map((e) => ({ key: e.transactionId, label: truth.get(e.transactionId)!, source: 'planted', labelTime: Date.now() })));
    await feedback.disconnect();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-report-'));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, 'shadow', 'report', '--live', `fraud.predictions.${suffix}`, '--shadow', shadowTopic, '--feedback', `fraud.feedback.${suffix}`, '--events', `fraud.transactions.${suffix}`, '--events-schema', transactionSchema().file, '--segment-by', 'country,merchantCategory', '--out', out, '--bootstrap', '100'],
      { cwd: repoRoot(), env: process.env },
    );
    expect(stdout).toContain('report.html');
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    const n = sent.length;
    expect(report.counts).toMatchObject({ live: n, shadow: n, matched: n, unmatchedLive: 0, unmatchedShadow: 0, duplicateLive: 0, duplicateShadow: 0, feedback: n, feedbackUnmatched: 0, labelledPairs: n });
    expect(report.agreement.rate).toBe(1);
    expect(report.divergence.psi).toBeCloseTo(0, 6);
    expect(report.metrics.live.rocAuc).toBeGreaterThan(0.8);
    expect(report.metrics.deltas.rocAuc.estimate).toBeCloseTo(0, 6);
    expect(report.segments.filter((s: { by: string }) => s.by === 'merchantCategory').length).toBeGreaterThan(3);
    expect(report.latency.model.shadow.p50).toBeGreaterThan(report.latency.model.live.p50);
    expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('data-plot="roc"');
  });
});
