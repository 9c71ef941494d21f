import * as path from 'node:path';
import { KafkaJSError, type Consumer, type EachBatchPayload, type Kafka } from 'kafkajs';
import type Redis from 'ioredis';
import type { Feedback, Prediction } from '../client/generated/avro-types';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import { RecordRejection } from '../kafka/dead-letter';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { repoRoot } from '../stack/paths';
import { createLogger } from '../util/logger';
import { BanditStore } from './bandit-store';

export interface BanditRewarderOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  redis: Redis;
  experiment: string;
  predictionsTopic: string;
  feedbackTopic: string;
  /** Consumer group prefix; the two consumers use `<groupId>.routes` and `<groupId>.feedback`. */
  groupId: string;
  /** Feedback whose prediction has not been seen yet is retried until it is this old (ms), then counted as unmatched. */
  maxWaitForPredictionMs?: number;
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
 * the label). Offsets are committed after Redis is updated; a replay is harmless because each
 * feedback record (topic/partition/offset) is counted once by the Lua script.
 */
export class BanditRewarder {
  readonly counters: BanditRewarderCounters = { routesRecorded: 0, rewards: 0, replays: 0, unmatched: 0 };
  private readonly log = createLogger('bandit-rewarder');
  private readonly store: BanditStore;
  private readonly routes: Consumer;
  private readonly feedback: Consumer;
  private readonly predictionDecoder: AvroDecoder<Prediction>;
  private readonly feedbackDecoder: AvroDecoder<Feedback>;

  constructor(private readonly opts: BanditRewarderOptions) {
    this.store = new BanditStore(opts.redis, opts.experiment);
    const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
    this.predictionDecoder = new AvroDecoder(opts.registry, catalog.get('prediction').type);
    this.feedbackDecoder = new AvroDecoder(opts.registry, catalog.get('feedback').type);
    this.routes = opts.kafka.consumer({ groupId: `${opts.groupId}.routes`, maxWaitTimeInMs: 100 });
    this.feedback = opts.kafka.consumer({ groupId: `${opts.groupId}.feedback`, maxWaitTimeInMs: 100 });
  }

  async start(): Promise<void> {
    for (const [consumer, topic, handler] of [
      [this.routes, this.opts.predictionsTopic, (p: EachBatchPayload) => this.onPredictions(p)],
      [this.feedback, this.opts.feedbackTopic, (p: EachBatchPayload) => this.onFeedback(p)],
    ] as const) {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachBatch: handler });
    }
    this.log.info({ experiment: this.opts.experiment }, 'bandit rewarder running');
  }

  async stop(): Promise<void> {
    await Promise.all([this.routes.disconnect(), this.feedback.disconnect()]);
  }

  private async onPredictions({ batch }: EachBatchPayload): Promise<void> {
    const routes: { key: string; arm: string; label: boolean }[] = [];
    for (const m of batch.messages) {
      const p = await this.predictionDecoder.decode(m.value);
      if (p instanceof RecordRejection || !p.route?.startsWith('canary:')) continue;
      routes.push({ key: p.key, arm: p.route.slice('canary:'.length), label: p.label });
    }
    await this.store.recordRoutes(routes);
    this.counters.routesRecorded += routes.length;
  }

  private async onFeedback({ batch }: EachBatchPayload): Promise<void> {
    const labels: { id: string; fb: Feedback }[] = [];
    for (const m of batch.messages) {
      const fb = await this.feedbackDecoder.decode(m.value);
      if (fb instanceof RecordRejection) continue;
      labels.push({ id: `${batch.topic}:${batch.partition}:${m.offset}`, fb });
    }
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
    // Labels whose prediction is not known yet: retry the batch (counted ones are not counted again).
    if (waiting > 0) throw new KafkaJSError(`${waiting} feedback record(s) wait for their prediction`, { retriable: true });
  }
}
