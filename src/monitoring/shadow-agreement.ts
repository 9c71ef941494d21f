import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Prediction, ShadowPrediction } from '../client/generated/avro-types';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import type { ChainRunner } from '../engine/chain-runner';
import { offsetsOnlyConsumer, sideEffectProcessor } from '../engine/offsets-only';
import { repoRoot } from '../util/paths';
import type { InputRecord } from '../stages/processor';
import type { StageMetrics } from './metrics';

/** A decision of either side, keyed by the input record it was made for. */
interface Decision {
  label: boolean;
  version: string;
}

interface LiveDecision extends Decision {
  threshold: number;
}

interface ShadowScore {
  score: number | null;
  version: string;
  ok: boolean;
}

/**
 * Live/shadow agreement, online: joins the live prediction log and a shadow log on the input
 * lineage (topic/partition/offset, carried by both) and keeps the share of joined records whose
 * decision at the live threshold agrees, over the last `window` joins. Unjoined records wait in a
 * bounded map (oldest dropped and counted). The offline report (`tributary shadow report`) has the
 * full statistics; this is the number operators watch.
 */
export class ShadowAgreement {
  private readonly live = new Map<string, LiveDecision>();
  private readonly shadow = new Map<string, ShadowScore>();
  private readonly recent: boolean[] = [];
  private agreements = 0;
  readonly gauge: Gauge<'model' | 'shadow_version'>;
  readonly joined: Counter<'model' | 'shadow_version' | 'result'>;
  private model = '';

  constructor(
    registry: Registry,
    private readonly window = 1000,
    private readonly maxPending = 100000,
  ) {
    this.gauge =
      (registry.getSingleMetric('tributary_shadow_agreement_ratio') as Gauge<'model' | 'shadow_version'>) ??
      new Gauge({ name: 'tributary_shadow_agreement_ratio', help: 'Share of the last joined records where the shadow decision equals the live one', labelNames: ['model', 'shadow_version'], registers: [registry] });
    this.joined =
      (registry.getSingleMetric('tributary_shadow_joined_total') as Counter<'model' | 'shadow_version' | 'result'>) ??
      new Counter({ name: 'tributary_shadow_joined_total', help: 'Live/shadow records joined, by result (agree, disagree, shadow_failed)', labelNames: ['model', 'shadow_version', 'result'], registers: [registry] });
  }

  /** The agreement ratio over the current window (NaN before the first join). */
  ratio(): number {
    return this.recent.length === 0 ? NaN : this.agreements / this.recent.length;
  }

  observeLive(p: Prediction): void {
    this.model = p.modelName;
    const id = lineageId(p.lineage);
    const s = this.shadow.get(id);
    if (s) {
      this.shadow.delete(id);
      this.join({ label: p.label, version: p.modelVersion, threshold: p.threshold }, s);
    } else this.remember(this.live, id, { label: p.label, version: p.modelVersion, threshold: p.threshold });
  }

  observeShadow(s: ShadowPrediction): void {
    const id = lineageId(s.lineage);
    const decision: ShadowScore = { score: s.score ?? null, version: s.modelVersion, ok: s.status === 'OK' && s.score != null };
    const l = this.live.get(id);
    if (l) {
      this.live.delete(id);
      this.join(l, decision);
    } else this.remember(this.shadow, id, decision);
  }

  /** Agreement at the live threshold: the shadow's score decided the way the live model decides. */
  private join(live: LiveDecision, shadow: ShadowScore): void {
    const labels = { model: this.model, shadow_version: shadow.version };
    if (!shadow.ok) {
      this.joined.inc({ ...labels, result: 'shadow_failed' });
      return;
    }
    const agree = live.label === (shadow.score! >= live.threshold);
    this.joined.inc({ ...labels, result: agree ? 'agree' : 'disagree' });
    this.recent.push(agree);
    if (agree) this.agreements++;
    if (this.recent.length > this.window && this.recent.shift()) this.agreements--;
    this.gauge.set(labels, this.ratio());
  }

  private remember<T>(map: Map<string, T>, id: string, value: T): void {
    map.set(id, value);
    if (map.size > this.maxPending) map.delete(map.keys().next().value as string);
  }
}

function lineageId(l: { topic: string; partition: number; offset: number }): string {
  return `${l.topic}:${l.partition}:${l.offset}`;
}

export interface ShadowAgreementConsumerOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  metricsRegistry: Registry;
  predictionsTopic: string;
  shadowTopic: string;
  groupId: string;
  window?: number;
  /** The engine's consumer metrics (stage `shadow-agreement`); default a registry of their own. */
  engineMetrics?: StageMetrics;
}

/**
 * Runs ShadowAgreement over the two topics in its own consumer group (off the live path): an
 * offsets-only consumer of the engine. Undecodable records are skipped (counted in the engine's metrics).
 */
export class ShadowAgreementConsumer {
  readonly agreement: ShadowAgreement;
  private readonly consumer: ChainRunner;

  constructor(private readonly opts: ShadowAgreementConsumerOptions) {
    this.agreement = new ShadowAgreement(opts.metricsRegistry, opts.window);
    const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
    this.consumer = offsetsOnlyConsumer({
      kafka: opts.kafka,
      name: 'shadow-agreement',
      groupId: opts.groupId,
      inputs: [
        { topic: opts.predictionsTopic, decoder: new AvroDecoder(opts.registry, catalog.get('prediction').type) },
        { topic: opts.shadowTopic, decoder: new AvroDecoder(opts.registry, catalog.get('shadow-prediction').type) },
      ],
      processor: sideEffectProcessor(async (records) => this.observe(records)),
      fromBeginning: true,
      consumer: { maxWaitTimeMs: 100 },
      metrics: opts.engineMetrics,
    });
  }

  async start(): Promise<void> {
    await this.consumer.start();
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
  }

  private observe(records: readonly InputRecord<unknown>[]): void {
    for (const r of records) {
      if (r.lineage.topic === this.opts.shadowTopic) this.agreement.observeShadow(r.value as ShadowPrediction);
      else this.agreement.observeLive(r.value as Prediction);
    }
  }
}
