import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import type { DriftAlert } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { collectStatus } from '../../src/cli/commands/status';
import { driftServiceFor, type DriftService } from '../../src/monitoring/drift-service';
import { MonitoringServer } from '../../src/monitoring/http-server';
import { renderStatus } from '../../src/monitoring/status-view';
import { StageMetrics } from '../../src/monitoring/metrics';
import { Pipeline } from '../../src/stages/pipeline';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();
const WINDOW = 3000;

/**
 * Acceptance for drift: a real pipeline (extract -> score, model fraud/1 whose stateless features
 * the TypeScript generator reproduces) feeds the drift monitor through Kafka. One window of an
 * unshifted stream raises nothing; the next window of the same size with amounts tripled raises an
 * ALERT event on the monitoring topic and pushes tributary_drift_psi past the alert threshold.
 */
describe('drift monitor through the real stack', () => {
  const suffix = uniqueSuffix();
  const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
    spec.stages[0].config = { featureSet: { file: 'models/fraud/features/fraud_txn.yaml' } };
    (spec.stages[1].config as { model: { version: string } }).model.version = '1';
  });
  const metrics = new StageMetrics(new Registry());
  const kafka = createKafka({ clientId: `drift-test-${suffix}`, brokers: endpoints.brokers });
  let pipeline: Pipeline | undefined;
  let drift: DriftService | undefined;
  let alertsConsumer: TopicConsumer<'drift-alert'> | undefined;
  const received: DriftAlert[] = [];

  afterAll(async () => {
    await alertsConsumer?.stop();
    await drift?.stop();
    await pipeline?.stop();
  });

  const truth = new Map<string, boolean>();
  async function produce(seed: number, shift: (tx: Transaction) => void): Promise<void> {
    const producer = new TopicProducer({ ...endpoints, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    await producer.connect();
    const gen = new TransactionGenerator({ seed, startTime: Date.now() });
    for (let sent = 0; sent < WINDOW; sent += 500) {
      const batch = Array.from({ length: 500 }, () => {
        const { tx, isFraud } = gen.next();
        truth.set(tx.transactionId, isFraud);
        shift(tx);
        return tx;
      });
      await producer.send(batch);
    }
    await producer.disconnect();
  }

  const psiOf = (text: string, feature: string) => Number(new RegExp(`tributary_drift_psi\\{model="fraud",version="1",feature="${feature}"\\} ([0-9.e+-]+)`).exec(text)?.[1]);

  it('stays quiet on an unshifted window and alerts on a shifted one of the same size', async () => {
    pipeline = await Pipeline.start({ topology, endpoints, metrics });
    drift = driftServiceFor(topology, {
      kafka,
      registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl }),
      metricsRegistry: metrics.registry,
      config: { windowEvents: WINDOW, windowMs: 3_600_000 },
      fromBeginning: true,
      feedbackTopic: `fraud.feedback.${suffix}`,
    });
    await drift.start();
    const alertTopic = `fraud.monitoring.${suffix}`;
    alertsConsumer = new TopicConsumer({ ...endpoints, topic: alertTopic, schema: 'drift-alert', groupId: `drift-alerts-${suffix}` });
    await alertsConsumer.run((a) => void received.push(a));

    // Window 1: the training distribution.
    await produce(21, () => {});
    const scopes = () => ({ features: drift!.monitor.last.FEATURES, score: drift!.monitor.last.SCORE });
    await waitFor(() => !!scopes().features && !!scopes().score, 120000, () => `windows: features ${drift!.monitor.features.events}, score ${drift!.monitor.score.events}`);
    const clean = scopes();
    const cleanText = await metrics.registry.metrics();
    const cleanPsi = psiOf(cleanText, 'amount_usd');
    const cleanMax = Math.max(...clean.features!.features.map((f) => f.psi));
    expect(clean.features!.windowEvents).toBe(WINDOW);
    expect(clean.features!.level).toBe('OK');
    expect(clean.score!.level).toBe('OK');
    expect(cleanPsi).toBeLessThan(0.1);
    expect(drift.alerts).toHaveLength(0);

    // Labels arrive later for the first window (the generator's planted truth): rolling precision/recall/AUC.
    const labels = new TopicProducer({ ...endpoints, topic: `fraud.feedback.${suffix}`, schema: 'feedback', key: (f) => f.key });
    await labels.connect();
    await labels.send([...truth].map(([key, label]) => ({ key, label, source: 'chargeback', labelTime: Date.now() })));
    await labels.disconnect();
    await waitFor(() => drift!.feedback!.snapshot().labelled === WINDOW, 60000, () => JSON.stringify(drift!.feedback!.snapshot()));
    const fb = drift.feedback!.snapshot();
    // In line with the card's test-split metrics (fraud/1: AUC 0.936, precision 0.758, recall 0.381 at 0.5); ~75 positives here.
    expect(Math.abs(fb.rocAuc! - 0.936)).toBeLessThan(0.05);
    expect(Math.abs(fb.recall! - 0.381)).toBeLessThan(0.15);
    expect(fb.precision).toBeGreaterThan(0.5);
    expect(fb.correctedShare).toBeLessThan(0.05);
    expect(fb.confidentShare).toBeGreaterThan(0.8);
    expect(await metrics.registry.metrics()).toMatch(/tributary_feedback_roc_auc_ratio\{model="fraud",version="1"\} 0\.9/);
    process.stdout.write(`feedback on the unshifted window: ${JSON.stringify(fb)}\n`);
    truth.clear();

    // Window 2: same size, amounts tripled.
    await produce(22, (tx) => (tx.amount *= 3));
    await waitFor(() => received.some((a) => a.scope === 'FEATURES'), 120000, () => `features window ${drift!.monitor.features.events}; alerts ${received.length}`);
    const alert = received.find((a) => a.scope === 'FEATURES')!;
    expect(alert.level).toBe('ALERT');
    expect(alert.windowEvents).toBe(WINDOW);
    expect(alert.driftedFeatures).toEqual(expect.arrayContaining(['amount_usd', 'log_amount_usd']));
    const amount = alert.features.find((f) => f.feature === 'amount_usd')!;
    expect(amount.psi).toBeGreaterThan(0.25);
    expect(amount.adjustedPValue).toBeLessThan(0.01);
    const shiftedText = await metrics.registry.metrics();
    const shiftedPsi = psiOf(shiftedText, 'amount_usd');
    expect(shiftedPsi).toBeGreaterThan(0.25);
    expect(shiftedText).toMatch(/tributary_drift_alerts_total\{model="fraud",version="1",scope="FEATURES",level="ALERT"\} 1/);
    // The unshifted window never produced an event: the only feature alert is the shifted window's.
    expect(received.filter((a) => a.scope === 'FEATURES')).toHaveLength(1);

    await waitFor(() => drift!.monitor.last.SCORE !== clean.score, 60000, () => `score window ${drift!.monitor.score.events}`);
    const score = drift.monitor.last.SCORE!.features[0];
    process.stdout.write(
      `drift acceptance: amount_usd PSI unshifted ${cleanPsi.toFixed(4)} (max over features ${cleanMax.toFixed(4)}), shifted ${shiftedPsi.toFixed(4)}; ` +
        `KS shifted ${amount.ks?.toFixed(4)}; score PSI unshifted ${clean.score!.features[0].psi.toFixed(4)}, shifted ${score.psi.toFixed(4)} (${drift.monitor.last.SCORE!.level})\n`,
    );

    // The operator view reads the same metrics over HTTP: rates, lag, versions and the drift state.
    const server = new MonitoringServer({ registry: metrics.registry, port: 0, readiness: () => pipeline!.readiness() });
    const { url } = await server.start();
    try {
      await waitFor(() => pipeline!.stageCounters('score').consumed >= 2 * WINDOW, 60000, () => JSON.stringify(pipeline!.stageCounters('score')));
      // The lag gauge reads the broker at most once a second: poll until the caught-up offsets show.
      let [status] = await collectStatus([url], 500);
      for (let i = 0; i < 20 && (status.stages.find((st) => st.stage === 'score')?.lag ?? Infinity) > 3; i++) [status] = await collectStatus([url], 500);
      const text = renderStatus([status]);
      process.stdout.write(text);
      expect(status.ready).toBe(true);
      expect(status.stages.map((st) => st.stage)).toEqual(['extract', 'score']);
      // Caught up. The score stage reads a transactionally written topic: each partition's last
      // commit marker occupies an offset, so its committed lag rests at 1 per partition.
      expect(status.stages.find((st) => st.stage === 'extract')!.lag).toBe(0);
      expect(status.stages.find((st) => st.stage === 'score')!.lag).toBeLessThanOrEqual(3);
      expect(status.models).toEqual([expect.objectContaining({ model: 'fraud', version: '1', stage: 'score' })]);
      expect(text).toMatch(/drift fraud@1 features: ALERT after 2 windows \((log_)?amount_usd psi/);
    } finally {
      await server.stop();
    }

    const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
    if (promtool.status === 0) {
      const check = spawnSync(promtool.stdout.trim(), ['check', 'metrics'], { input: shiftedText, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    }
  });
});
