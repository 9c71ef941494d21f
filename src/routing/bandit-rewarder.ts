import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import type { Feedback, Prediction } from '../client/generated/avro-types';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { repoRoot } from '../util/paths';
import type { ChainRunner } from '../engine/chain-runner';
import { offsetsOnlyConsumer, sideEffectProcessor } from '../engine/offsets-only';
import type { StageMetrics } from '../monitoring/metrics';
import type { InputRecord } from '../stages/processor';
import { RetryLaterError } from '../engine/transient';
import { createLogger } from '../util/logger';
import { BanditStore } from './bandit-store';

export interface BanditRewarderOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  /** A single Redis or a Cluster client (createRedisClient). */
  redis: Redis | Cluster;
  experiment: string;
  predictionsTopic: string;
  feedbackTopic: string;
  /** Consumer group prefix; the two consumers use `<groupId>.routes` and `<groupId>.feedback`. */
  groupId: string;
  /** Feedback whose prediction has not been seen yet is retried until it is this old (ms), then counted as unmatched. */
  maxWaitForPredictionMs?: number;
  /** The engine's metrics of the two consumers (stages `bandit-routes`, `bandit-feedback`); default a registry of their own. */
  engineMetrics?: StageMetrics;
}

export interface BanditRewarderCounters {
  routesRecorded: number;
  rewards: number;
  replays: number;
  unmatched: number;
}

/**
 * Feeds the bandit: remembers which arm served each key (from the prediction topic's `route`) and,
 * when its label arrives on the feedback topic, rewards that arm (1 when the arm's decision matched
 * the label). Two offsets-only consumers of the engine; offsets are committed after Redis is
 * updated, and a replay is harmless because each feedback record (topic/partition/offset) is
 * counted once by the Lua script. Undecodable records are skipped (counted in the engine's metrics).
 */
export class BanditRewarder {
  readonly counters: BanditRewarderCounters = { routesRecorded: 0, rewards: 0, replays: 0, unmatched: 0 };
  private readonly log = createLogger('bandit-rewarder');
  private readonly store: BanditStore;
  private readonly routes: ChainRunner;
  private readonly feedback: ChainRunner;

  constructor(private readonly opts: BanditRewarderOptions) {
    this.store = new BanditStore(opts.redis, opts.experiment);
    const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
    const predictionDecoder = new AvroDecoder<Prediction>(opts.registry, catalog.get('prediction').type);
    const feedbackDecoder = new AvroDecoder<Feedback>(opts.registry, catalog.get('feedback').type);
    const common = { kafka: opts.kafka, fromBeginning: true, consumer: { maxWaitTimeMs: 100 }, metrics: opts.engineMetrics };
    this.routes = offsetsOnlyConsumer({
      ...common,
      name: 'bandit-routes',
      groupId: `${opts.groupId}.routes`,
      inputs: [{ topic: opts.predictionsTopic, decoder: predictionDecoder }],
      processor: sideEffectProcessor((records) => this.onPredictions(records as readonly InputRecord<Prediction>[])),
    });
    this.feedback = offsetsOnlyConsumer({
      ...common,
      name: 'bandit-feedback',
      groupId: `${opts.groupId}.feedback`,
      inputs: [{ topic: opts.feedbackTopic, decoder: feedbackDecoder }],
      processor: sideEffectProcessor((records) => this.onFeedback(records as readonly InputRecord<Feedback>[])),
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.routes.start(), this.feedback.start()]);
    this.log.info({ experiment: this.opts.experiment }, 'bandit rewarder running');
  }

  /** Graceful: what each consumer holds is processed and its offsets committed. */
  async stop(): Promise<void> {
    await Promise.all([this.routes.stop(), this.feedback.stop()]);
  }

  private async onPredictions(records: readonly InputRecord<Prediction>[]): Promise<void> {
    const routes: { key: string; arm: string; label: boolean }[] = [];
    for (const { value: p } of records) {
      if (!p.route?.startsWith('canary:')) continue;
      routes.push({ key: p.key, arm: p.route.slice('canary:'.length), label: p.label });
    }
    await this.store.recordRoutes(routes);
    this.counters.routesRecorded += routes.length;
  }

  private async onFeedback(records: readonly InputRecord<Feedback>[]): Promise<void> {
    const labels = records.map((r) => ({ id: `${r.lineage.topic}:${r.lineage.partition}:${r.lineage.offset}`, fb: r.value }));
    const served = await this.store.routesOf(labels.map((l) => l.fb.key));
    const maxWait = this.opts.maxWaitForPredictionMs ?? 10 * 60 * 1000;
    let waiting = 0;
    for (const [i, { id, fb }] of labels.entries()) {
      const route = served[i];
      if (!route) {
        if (Date.now() - fb.labelTime < maxWait) waiting++;
        else this.counters.unmatched++;
        continue;
      }
      if (await this.store.reward(id, route.arm, route.label === fb.label)) this.counters.rewards++;
      else this.counters.replays++;
    }
    // Labels whose prediction is not known yet: the engine retries the chunk (counted ones are not counted again).
    if (waiting > 0) throw new RetryLaterError(`${waiting} feedback record(s) wait for their prediction`);
  }
}
