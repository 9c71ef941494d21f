import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { DriftAlert, FeatureVector, Feedback, Prediction } from '../client/generated/avro-types';
import { ensureTopics } from '../kafka/admin';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import { idempotentProducer, type IdempotentProducer } from '../kafka/client';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { modelDir, readModelCard } from '../inference/model-card';
import type { ChainRunner } from '../engine/chain-runner';
import { offsetsOnlyConsumer, sideEffectProcessor } from '../engine/offsets-only';
import type { InputRecord } from '../stages/processor';
import type { LoadedTopology } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger, type Logger } from '../util/logger';
import type { StageMetrics } from './metrics';
import { DriftMetrics, DriftMonitor, type DriftConfig, type DriftReport } from './drift-monitor';
import { FeedbackMonitor, type FeedbackConfig } from './feedback-monitor';

export interface DriftServiceOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  /** schemas/ folder. */
  schemasDir: string;
  /** Feature-vector topic (the scoring stage's input). */
  featuresTopic: string;
  /** Prediction topic (the scoring stage's output). */
  predictionsTopic: string;
  /** Where DriftAlert events go (created with 1 partition if missing). */
  alertTopic: string;
  /** The monitored model version's directory (its card holds monitoring.baseline). */
  modelDir: string;
  groupId: string;
  config?: DriftConfig;
  metricsRegistry?: Registry;
  /**
   * The engine's consumer metrics of the monitor (stage `drift`: records in, lag, errors); default a
   * registry of their own, so a pipeline sharing its registry shows only its stages.
   */
  engineMetrics?: StageMetrics;
  /** Read the inputs from the beginning when the group has no committed offsets (default false: from now on). */
  fromBeginning?: boolean;
  /** Emit an alert for every closed window, OK ones included (default: WARN and ALERT only). */
  emitAll?: boolean;
  /** Labels arriving later (schemas/feedback.avsc, keyed by the event key): rolling precision/recall/AUC. */
  feedbackTopic?: string;
  feedback?: FeedbackConfig;
  logger?: Logger;
}

/**
 * The drift monitor as its own consumer group, off the live path: reads the scoring stage's input
 * (feature vectors) and output (predictions) topics, counts them into windows against the model
 * card's training baseline, sets the drift metrics and publishes a DriftAlert for every closed window
 * at WARN or ALERT. An offsets-only consumer of the engine: offsets are committed as records are
 * counted (at-least-once); window state lives in memory, so a restart starts fresh windows — it is a
 * monitor, not a ledger. Alerts that fail to publish are kept and retried every second. Undecodable
 * records are skipped (counted as ignored, reason `undecodable`).
 */
export class DriftService {
  readonly monitor: DriftMonitor;
  readonly feedback?: FeedbackMonitor;
  readonly alerts: DriftAlert[] = [];
  private readonly consumer: ChainRunner;
  private readonly producer: IdempotentProducer;
  private readonly alertEncoder: AvroEncoder<DriftAlert>;
  private readonly metrics?: DriftMetrics;
  private readonly log: Logger;
  /** Closed windows to alert on, not published yet. */
  private unpublished: DriftReport[] = [];
  private publishing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(private readonly opts: DriftServiceOptions) {
    const card = readModelCard(opts.modelDir);
    this.monitor = new DriftMonitor(card, opts.config, opts.metricsRegistry);
    this.metrics = opts.metricsRegistry ? DriftMetrics.for(opts.metricsRegistry) : undefined;
    this.log = opts.logger ?? createLogger('drift-monitor').child({ model: `${card.name}@${card.version}`, group: opts.groupId });
    const catalog = new SchemaCatalog(opts.schemasDir);
    this.alertEncoder = new AvroEncoder(opts.registry, catalog.get('drift-alert'), opts.alertTopic);
    const inputs: { topic: string; decoder: AvroDecoder<unknown> }[] = [
      { topic: opts.featuresTopic, decoder: new AvroDecoder(opts.registry, catalog.get('feature-vector').type) },
      { topic: opts.predictionsTopic, decoder: new AvroDecoder(opts.registry, catalog.get('prediction').type) },
    ];
    if (opts.feedbackTopic) {
      this.feedback = new FeedbackMonitor(card.name, card.version, opts.feedback, opts.metricsRegistry);
      inputs.push({ topic: opts.feedbackTopic, decoder: new AvroDecoder(opts.registry, catalog.get('feedback').type) });
    }
    this.consumer = offsetsOnlyConsumer({
      kafka: opts.kafka,
      name: 'drift',
      groupId: opts.groupId,
      inputs,
      processor: sideEffectProcessor((records) => this.observe(records)),
      fromBeginning: opts.fromBeginning ?? false,
      consumer: { maxWaitTimeMs: 200 },
      metrics: opts.engineMetrics,
      onRejected: (count) => this.metrics?.ignored.inc({ model: card.name, reason: 'undecodable' }, count),
    });
    this.producer = idempotentProducer(opts.kafka, { name: 'drift-alerts', logger: this.log });
  }

  /** The live prediction topic this monitor reads. */
  get predictionsTopic(): string {
    return this.opts.predictionsTopic;
  }

  async start(timeoutMs = 60000): Promise<void> {
    await ensureTopics(this.opts.kafka, [
      { name: this.opts.alertTopic, partitions: 1, schema: 'drift-alert' },
      ...(this.opts.feedbackTopic ? [{ name: this.opts.feedbackTopic, partitions: 3, schema: 'feedback' }] : []),
    ]);
    await this.alertEncoder.id();
    await this.producer.connect();
    this.running = true;
    const joined = this.consumer.waitForAssignment(timeoutMs).catch(() => {
      throw new TributaryError(`drift monitor: no partition assignment within ${timeoutMs} ms`);
    });
    await this.consumer.start();
    await joined;
    this.timer = setInterval(() => this.enqueue(this.monitor.tick()), 1000);
    this.log.info({ features: this.opts.featuresTopic, predictions: this.opts.predictionsTopic, alerts: this.opts.alertTopic, config: this.monitor.config }, 'drift monitor running');
  }

  health(): { stage: string; running: boolean; assignedPartitions: number; ready: boolean } {
    const h = this.consumer.health();
    return { stage: 'drift', running: this.running && h.running, assignedPartitions: h.assignedPartitions, ready: this.running && h.ready };
  }

  /** Graceful: what the consumer holds is counted and committed, pending alerts get a last try. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    await this.consumer.stop();
    this.enqueue([]);
    await this.publishing;
    await this.producer.disconnect();
  }

  /** Counts one chunk of one input partition (all of one topic) into the windows. */
  private async observe(records: readonly InputRecord<unknown>[]): Promise<void> {
    if (records.length === 0) return;
    const card = this.monitor.card;
    const topic = records[0].lineage.topic;
    if (this.feedback && topic === this.opts.feedbackTopic) {
      for (const r of records as readonly InputRecord<Feedback>[]) this.feedback.observeFeedback(r.value.key, r.value.label);
      this.feedback.flush();
      return;
    }
    const reports: DriftReport[] = [];
    if (topic === this.opts.featuresTopic) {
      for (const { value: fv } of records as readonly InputRecord<FeatureVector>[]) {
        if (fv.featureSet !== card.features.set || fv.featureVersion !== card.features.version) this.metrics?.ignored.inc({ model: card.name, reason: 'feature_set' });
        else {
          const r = this.monitor.observeVector(fv.names, fv.values);
          if (r) reports.push(r);
        }
      }
    } else {
      for (const { value: p } of records as readonly InputRecord<Prediction>[]) {
        if (p.modelName !== card.name || p.modelVersion !== card.version) this.metrics?.ignored.inc({ model: card.name, reason: 'model_version' });
        else {
          const r = this.monitor.observeScore(p.score);
          if (r) reports.push(r);
          this.feedback?.observePrediction(p.key, p.score, p.label);
        }
      }
    }
    this.feedback?.flush();
    this.enqueue(reports);
  }

  /**
   * Queues closed windows for publishing (one publish at a time, in order). Publishing is not on
   * the consumer's path: a failure keeps the reports for the next tick rather than re-counting the
   * records they came from.
   */
  private enqueue(reports: DriftReport[]): void {
    this.unpublished.push(...reports);
    if (this.publishing || this.unpublished.length === 0) return;
    const batch = this.unpublished;
    this.unpublished = [];
    this.publishing = this.publish(batch)
      .catch((err: Error) => {
        this.unpublished.unshift(...batch);
        this.log.warn({ err: err.message, pending: this.unpublished.length }, 'publishing a drift alert failed; retrying on the next tick');
      })
      .finally(() => (this.publishing = undefined));
  }

  private async publish(reports: DriftReport[]): Promise<void> {
    const out = reports.filter((r) => this.opts.emitAll || r.level !== 'OK');
    for (const r of reports) {
      this.log[r.level === 'OK' ? 'debug' : 'warn'](
        { scope: r.scope, level: r.level, events: r.windowEvents, drifted: r.driftedFeatures, maxPsi: Math.max(...r.features.map((f) => f.psi)) },
        'drift window closed',
      );
    }
    if (out.length === 0) return;
    const id = await this.alertEncoder.id();
    const alerts = out.map((r) => this.toAlert(r));
    await this.producer.send({
      topic: this.opts.alertTopic,
      messages: alerts.map((a) => ({ key: `${a.modelName}@${a.modelVersion}/${a.scope}`, value: this.alertEncoder.encodeWithId(id, a) })),
    });
    for (const r of out) this.monitor.countAlert(r);
    this.alerts.push(...alerts);
  }

  private toAlert(r: DriftReport): DriftAlert {
    const { card, baseline, config } = this.monitor;
    return {
      modelName: card.name,
      modelVersion: card.version,
      monitor: this.opts.groupId,
      scope: r.scope,
      level: r.level,
      windowStart: r.windowStart,
      windowEnd: r.windowEnd,
      windowEvents: r.windowEvents,
      baselineRows: baseline.rows,
      correction: config.correction,
      alpha: config.alpha,
      driftedFeatures: r.driftedFeatures,
      features: r.features.map((f) => ({ ...f })),
      producedTime: Date.now(),
    };
  }
}

/** The drift service for a topology's onnx_inference stage (its input/output topics and model). */
export function driftServiceFor(
  topology: LoadedTopology,
  deps: Pick<DriftServiceOptions, 'kafka' | 'registry' | 'config' | 'metricsRegistry' | 'engineMetrics' | 'fromBeginning' | 'emitAll' | 'feedbackTopic' | 'feedback'> & { stage?: string; alertTopic?: string; groupId?: string },
): DriftService {
  const stages = topology.spec.stages.filter((s) => s.processor === 'onnx_inference' && (!deps.stage || s.name === deps.stage));
  if (stages.length !== 1) {
    throw new TributaryError(deps.stage ? `no onnx_inference stage '${deps.stage}' in ${topology.spec.name}` : `${topology.spec.name} has ${stages.length} onnx_inference stages: name one (--stage)`);
  }
  const stage = stages[0];
  const model = (stage.config as { model: { repository: string; name: string; version: string } }).model;
  const prefix = stage.output.topic.replace(/\.predictions(\.|$)/, '.monitoring$1');
  return new DriftService({
    ...deps,
    schemasDir: path.join(topology.baseDir, 'schemas'),
    featuresTopic: stage.input.topic,
    predictionsTopic: stage.output.topic,
    alertTopic: deps.alertTopic ?? (prefix !== stage.output.topic ? prefix : `${stage.output.topic}.monitoring`),
    modelDir: modelDir(path.resolve(topology.baseDir, model.repository), model.name, model.version),
    groupId: deps.groupId ?? `${topology.spec.name}.${stage.name}.drift`,
  });
}
