import * as path from 'node:path';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { DriftAlert, FeatureVector, Feedback, Prediction } from '../client/generated/avro-types';
import { ensureTopics } from '../kafka/admin';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import { idempotentProducer, type IdempotentProducer } from '../kafka/client';
import { RecordRejection } from '../kafka/dead-letter';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { modelDir, readModelCard } from '../inference/model-card';
import type { LoadedTopology } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger, type Logger } from '../util/logger';
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
 * at WARN or ALERT. Offsets are committed as batches are counted (at-least-once); window state lives
 * in memory, so a restart starts fresh windows — it is a monitor, not a ledger.
 */
export class DriftService {
  readonly monitor: DriftMonitor;
  readonly feedback?: FeedbackMonitor;
  private readonly feedbackDecoder?: AvroDecoder<Feedback>;
  readonly alerts: DriftAlert[] = [];
  private readonly consumer: Consumer;
  private readonly producer: IdempotentProducer;
  private readonly featureDecoder: AvroDecoder<FeatureVector>;
  private readonly predictionDecoder: AvroDecoder<Prediction>;
  private readonly alertEncoder: AvroEncoder<DriftAlert>;
  private readonly metrics?: DriftMetrics;
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private assigned = 0;
  private running = false;

  constructor(private readonly opts: DriftServiceOptions) {
    const card = readModelCard(opts.modelDir);
    this.monitor = new DriftMonitor(card, opts.config, opts.metricsRegistry);
    this.metrics = opts.metricsRegistry ? DriftMetrics.for(opts.metricsRegistry) : undefined;
    this.log = opts.logger ?? createLogger('drift-monitor').child({ model: `${card.name}@${card.version}`, group: opts.groupId });
    const catalog = new SchemaCatalog(opts.schemasDir);
    this.featureDecoder = new AvroDecoder(opts.registry, catalog.get('feature-vector').type);
    this.predictionDecoder = new AvroDecoder(opts.registry, catalog.get('prediction').type);
    this.alertEncoder = new AvroEncoder(opts.registry, catalog.get('drift-alert'), opts.alertTopic);
    if (opts.feedbackTopic) {
      this.feedback = new FeedbackMonitor(card.name, card.version, opts.feedback, opts.metricsRegistry);
      this.feedbackDecoder = new AvroDecoder(opts.registry, catalog.get('feedback').type);
    }
    this.consumer = opts.kafka.consumer({ groupId: opts.groupId, sessionTimeout: 30000, heartbeatInterval: 3000, maxWaitTimeInMs: 200, readUncommitted: false });
    this.producer = idempotentProducer(opts.kafka, { name: 'drift-alerts', logger: this.log });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.assigned = Object.values(payload.memberAssignment).reduce((n, parts) => n + parts.length, 0);
    });
    for (const e of [this.consumer.events.CRASH, this.consumer.events.STOP, this.consumer.events.DISCONNECT]) this.consumer.on(e, () => (this.assigned = 0));
  }

  /** Resolves once the group has assigned this instance its partitions. */
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
    await this.consumer.connect();
    const topics = [this.opts.featuresTopic, this.opts.predictionsTopic, ...(this.opts.feedbackTopic ? [this.opts.feedbackTopic] : [])];
    await this.consumer.subscribe({ topics, fromBeginning: this.opts.fromBeginning ?? false });
    const joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TributaryError(`drift monitor: no partition assignment within ${timeoutMs} ms`)), timeoutMs);
      const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
    this.running = true;
    await this.consumer.run({ eachBatch: (p) => this.handleBatch(p) });
    await joined;
    this.timer = setInterval(() => void this.publish(this.monitor.tick()).catch((err: Error) => this.log.warn({ err: err.message }, 'publishing a drift alert failed')), 1000);
    this.log.info({ features: this.opts.featuresTopic, predictions: this.opts.predictionsTopic, alerts: this.opts.alertTopic, config: this.monitor.config }, 'drift monitor running');
  }

  health(): { stage: string; running: boolean; assignedPartitions: number; ready: boolean } {
    return { stage: 'drift', running: this.running, assignedPartitions: this.assigned, ready: this.running && this.assigned > 0 };
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async handleBatch({ batch, heartbeat, resolveOffset }: EachBatchPayload): Promise<void> {
    const card = this.monitor.card;
    const reports: DriftReport[] = [];
    const isFeatures = batch.topic === this.opts.featuresTopic;
    if (this.feedbackDecoder && batch.topic === this.opts.feedbackTopic) {
      for (const m of batch.messages) {
        const f = await this.feedbackDecoder.decode(m.value);
        if (f instanceof RecordRejection) this.metrics?.ignored.inc({ model: card.name, reason: 'undecodable' });
        else this.feedback!.observeFeedback(f.key, f.label);
        resolveOffset(m.offset);
      }
      this.feedback!.flush();
      await heartbeat();
      return;
    }
    for (const m of batch.messages) {
      if (isFeatures) {
        const fv = await this.featureDecoder.decode(m.value);
        if (fv instanceof RecordRejection) this.metrics?.ignored.inc({ model: card.name, reason: 'undecodable' });
        else if (fv.featureSet !== card.features.set || fv.featureVersion !== card.features.version) this.metrics?.ignored.inc({ model: card.name, reason: 'feature_set' });
        else {
          const r = this.monitor.observeVector(fv.names, fv.values);
          if (r) reports.push(r);
        }
      } else {
        const p = await this.predictionDecoder.decode(m.value);
        if (p instanceof RecordRejection) this.metrics?.ignored.inc({ model: card.name, reason: 'undecodable' });
        else if (p.modelName !== card.name || p.modelVersion !== card.version) this.metrics?.ignored.inc({ model: card.name, reason: 'model_version' });
        else {
          const r = this.monitor.observeScore(p.score);
          if (r) reports.push(r);
          this.feedback?.observePrediction(p.key, p.score, p.label);
        }
      }
      resolveOffset(m.offset);
    }
    this.feedback?.flush();
    await this.publish(reports);
    await heartbeat();
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
  deps: Pick<DriftServiceOptions, 'kafka' | 'registry' | 'config' | 'metricsRegistry' | 'fromBeginning' | 'emitAll' | 'feedbackTopic' | 'feedback'> & { stage?: string; alertTopic?: string; groupId?: string },
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
