/**
 * The load side of the bench, in the bench's own process: a driver that publishes generated
 * transactions to a system's input topic (as fast as possible, or paced at a fixed offered rate),
 * and a probe that consumes the system's prediction topic and measures event-to-prediction latency.
 *
 * Latency is measured at the probe: (time the probe's consumer receives the prediction's batch) -
 * (the input record's Kafka timestamp, CreateTime, stamped by the driver's producer when it sent it).
 * Both clocks are this process's. Tributary carries the input timestamp through as `ingestTime`
 * (FeatureVector -> Prediction); the naive pipeline sets `ingestTime` the same way.
 */
import * as path from 'node:path';
import type { Consumer, Producer } from 'kafkajs';
import type { Prediction, Transaction } from '../../src/client/generated/avro-types';
import { TransactionGenerator } from '../../src/demo/generator';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../../src/kafka/avro-serde';
import { createKafka } from '../../src/kafka/client';
import { RecordRejection } from '../../src/kafka/dead-letter';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { repoRoot } from '../../src/stack/paths';
import { sleep } from './common';

export interface Endpoints {
  brokers: string[];
  schemaRegistryUrl: string;
}

/** Publishes transactions whose key (= transactionId) is `<phase>:<n>`, so the probe can attribute predictions. */
export class Driver {
  private readonly producer: Producer;
  private readonly encoder: AvroEncoder<Transaction>;
  private readonly gen: TransactionGenerator;
  private id = 0;
  /** Per paced request: ms from send() to the broker's acks=all answer. */
  readonly ackMs: number[] = [];

  constructor(ep: Endpoints, readonly topic: string, seed = 42) {
    const kafka = createKafka({ clientId: 'bench-driver', brokers: ep.brokers });
    // not idempotent: lets the pacer keep several requests in flight; acks=all like a real gateway
    this.producer = kafka.producer({ allowAutoTopicCreation: false });
    const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
    this.encoder = new AvroEncoder(new SchemaRegistryClient({ url: ep.schemaRegistryUrl }), catalog.get('transaction'), topic);
    this.gen = new TransactionGenerator({ seed, startTime: Date.now() });
  }

  async connect(): Promise<void> {
    await this.encoder.id();
    await this.producer.connect();
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }

  private async sendBatch(phase: string, n: number): Promise<void> {
    const id = await this.encoder.id();
    const messages = [];
    for (let i = 0; i < n; i++) {
      const tx = this.gen.next().tx;
      tx.transactionId = `${phase}:${this.id++}`;
      messages.push({ key: tx.transactionId, value: this.encoder.encodeWithId(id, tx) });
    }
    await this.producer.send({ topic: this.topic, acks: -1, messages });
  }

  /** `count` events as fast as possible (1000 per request, 4 requests in flight). */
  async backlog(phase: string, count: number): Promise<{ sent: number; seconds: number }> {
    const started = Date.now();
    let sent = 0;
    const inflight = new Set<Promise<void>>();
    while (sent < count) {
      const n = Math.min(1000, count - sent);
      sent += n;
      const p: Promise<void> = this.sendBatch(phase, n).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 4) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    return { sent, seconds: (Date.now() - started) / 1000 };
  }

  /** Open-loop pacing: every 5 ms sends whatever is due at `rate` events/s, up to 16 requests in flight. */
  async paced(phase: string, rate: number, seconds: number): Promise<{ sent: number; start: number; end: number; behind: number }> {
    const start = Date.now();
    this.ackMs.length = 0;
    const total = Math.round(rate * seconds);
    let sent = 0;
    let behind = 0;
    const inflight = new Set<Promise<void>>();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * rate));
      const n = due - sent;
      if (n > 0) {
        if (inflight.size >= 16) {
          behind++;
          await Promise.race(inflight);
          continue;
        }
        sent += n;
        const t0 = Date.now();
        const p: Promise<void> = this.sendBatch(phase, n).finally(() => {
          inflight.delete(p);
          this.ackMs.push(Date.now() - t0);
        });
        inflight.add(p);
      }
      await sleep(5);
    }
    await Promise.all(inflight);
    return { sent, start, end: Date.now(), behind };
  }
}

export interface PhaseStats {
  count: number;
  /** Receive times (ms) in arrival order. */
  receivedAt: number[];
  /** Per prediction: ingestTime (input record timestamp) and latency (ms). */
  ingest: number[];
  latency: number[];
  /** producedTime - ingestTime: the pipeline's own share (excludes the probe's fetch). */
  internal: number[];
}

/** Consumes a prediction topic and records per-phase arrivals and latencies. */
export class Probe {
  private readonly consumer: Consumer;
  private readonly decoder: AvroDecoder<Prediction>;
  readonly phases = new Map<string, PhaseStats>();
  undecodable = 0;

  constructor(ep: Endpoints, readonly topic: string, groupId: string, private readonly partitions: number) {
    const kafka = createKafka({ clientId: 'bench-probe', brokers: ep.brokers });
    this.consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50, readUncommitted: false });
    const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
    this.decoder = new AvroDecoder(new SchemaRegistryClient({ url: ep.schemaRegistryUrl }), catalog.get('prediction').type);
  }

  phase(name: string): PhaseStats {
    let s = this.phases.get(name);
    if (!s) this.phases.set(name, (s = { count: 0, receivedAt: [], ingest: [], latency: [], internal: [] }));
    return s;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    const joined = new Promise<void>((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    await this.consumer.run({
      autoCommit: true,
      partitionsConsumedConcurrently: this.partitions,
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        for (const m of batch.messages) {
          const p = await this.decoder.decode(m.value);
          if (p instanceof RecordRejection) {
            this.undecodable++;
            continue;
          }
          const s = this.phase(p.key.slice(0, p.key.indexOf(':')));
          s.count++;
          s.receivedAt.push(now);
          s.ingest.push(p.ingestTime);
          s.latency.push(now - p.ingestTime);
          s.internal.push(p.producedTime - p.ingestTime);
        }
      },
    });
    await joined;
  }

  async waitFor(phase: string, count: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.phase(phase).count < count) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
