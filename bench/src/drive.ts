/**
 * The load side of the bench, in the bench's own process.
 *
 * OpenLoopDriver: publishes generated transactions at a fixed offered rate, open loop: event i of a
 * step is due at t0 + i/rate whatever the system does; every tick (default 5 ms) it hands the events
 * that are due to the producer as one small batch, stamping each record's CreateTime with the moment
 * it hands it over and remembering that time per event. It records how late each event was handed
 * over relative to its schedule; a step whose lateness p99 exceeds the tolerance is VOID (the driver,
 * not the system, set the pace).
 *
 * Probe: a read_committed consumer of the system's prediction topic (and its dead-letter topic, when
 * it has one) that matches every prediction to its event by key (`<phase>:<i>`, the transactionId
 * the driver set), and times it from the driver's send time of that event: latency = probe receive
 * time - send time, both on this process's clock. It counts duplicates, unknown keys and dead letters.
 */
import type { Consumer, Producer } from 'kafkajs';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../../src/kafka/avro-serde';
import { createKafka } from '../../src/kafka/client';
import { RecordRejection } from '../../src/kafka/dead-letter';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { sleep } from './common';
import { FRAUD_SCHEMAS_DIR, type Transaction } from '../../examples/fraud/schemas';

export interface Endpoints {
  brokers: string[];
  schemaRegistryUrl: string;
}

/** Everything known about the events of one phase (a step), indexed by the event's sequence number. */
export class PhaseTrack {
  /** Driver: ms epoch when event i was handed to the producer (its CreateTime); NaN = not sent. */
  readonly sentAt: Float64Array;
  /** Driver: ms epoch when event i was due by the open-loop schedule (sentAt minus its lateness). */
  readonly dueAt: Float64Array;
  /** Probe: first receive time of event i's prediction; NaN = not (yet) received. */
  readonly receivedAt: Float64Array;
  /** The prediction's own producedTime (the system's clock = this machine's): splits latency into system and probe shares. */
  readonly producedAt: Float64Array;
  sent = 0;
  acked = 0;
  predicted = 0;
  duplicates = 0;
  deadLettered = 0;
  /** Predictions whose ingestTime differs from the event's CreateTime (the system mis-stamps). */
  ingestMismatch = 0;
  /** Abandoned by a restart on fresh topics (excluded from the correctness check, reported). */
  abandoned = false;

  constructor(
    readonly name: string,
    readonly total: number,
  ) {
    this.sentAt = new Float64Array(total).fill(NaN);
    this.dueAt = new Float64Array(total).fill(NaN);
    this.receivedAt = new Float64Array(total).fill(NaN);
    this.producedAt = new Float64Array(total).fill(NaN);
  }

  /** Sent events with no prediction yet. */
  missing(): number {
    return this.sent - this.predicted;
  }
}

export interface DriveResult {
  phase: string;
  rate: number;
  seconds: number;
  sent: number;
  start: number;
  end: number;
  /** Per-event lateness (ms handed over after its scheduled time). */
  latenessMs: { p50: number; p99: number; max: number };
  /** Times the in-flight request cap made the driver wait. */
  inflightWaits: number;
  /** Produce requests sent (one per tick that had events due): the driver's share of the broker's requests. */
  requests: number;
  ackMs: { p50: number; p99: number };
}

export interface DriveOptions {
  tickMs: number;
  /** Most produce requests awaiting acks at once. */
  maxInFlight: number;
  onTick?: (elapsedMs: number) => void;
}

/** The event id (`<phase>:<i>`) of a record the driver keyed by another field (outputs inherit it). */
export const EVENT_HEADER = 'bench-event';

export class OpenLoopDriver {
  private readonly producer: Producer;
  private readonly encoder: AvroEncoder<Transaction>;
  private readonly gen: TransactionGenerator;
  private schemaId?: number;

  constructor(
    ep: Endpoints,
    readonly topic: string,
    seed = 42,
    /** The event field each record is keyed by (the probe matches predictions by transactionId either way). */
    private readonly keyField: 'transactionId' | 'cardId' = 'transactionId',
  ) {
    const kafka = createKafka({ clientId: 'bench-driver', brokers: ep.brokers });
    // not idempotent, so it may keep several requests in flight; acks=all like a real gateway
    this.producer = kafka.producer({ allowAutoTopicCreation: false });
    const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
    this.encoder = new AvroEncoder(new SchemaRegistryClient({ url: ep.schemaRegistryUrl }), catalog.get('transaction'), topic);
    this.gen = new TransactionGenerator({ seed, startTime: Date.now() });
  }

  async connect(): Promise<void> {
    this.schemaId = await this.encoder.id();
    await this.producer.connect();
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }

  /** Offers `track.total` events at `rate`/s (so `total / rate` seconds). */
  async drive(track: PhaseTrack, rate: number, o: DriveOptions): Promise<DriveResult> {
    /** ~100 bytes an event: 2,000 stay far below the broker's default 1 MB per request. */
    const MAX_BATCH = 2000;
    const id = this.schemaId!;
    const total = track.total;
    const acks: number[] = [];
    const inflight = new Set<Promise<void>>();
    let inflightWaits = 0;
    let requests = 0;
    let failure: Error | undefined;
    const start = Date.now();
    const msPerEvent = 1000 / rate;
    while (track.sent < total) {
      if (failure) throw failure;
      const now = Date.now();
      // event i is due at start + i * msPerEvent
      const due = Math.min(total, Math.floor((now - start) / msPerEvent) + 1);
      if (due > track.sent) {
        if (inflight.size >= o.maxInFlight) {
          inflightWaits++;
          await Promise.race(inflight);
          continue;
        }
        const messages = [];
        // At most MAX_BATCH events per send: after a wait for in-flight requests (the broker slowed
        // down) everything that fell due meanwhile goes out at once, and one request of it could
        // exceed the broker's max.message.bytes (a 32,000/s step failed the whole run so).
        const last = Math.min(due, track.sent + MAX_BATCH);
        for (let i = track.sent; i < last; i++) {
          const tx = this.gen.next().tx;
          tx.transactionId = `${track.name}:${i}`;
          const t = Date.now();
          track.sentAt[i] = t;
          track.dueAt[i] = start + i * msPerEvent;
          const value = this.encoder.encodeWithId(id, tx);
          // Keyed by another field, the event's id travels in a header (outputs inherit headers),
          // so the probe still matches each prediction to its event.
          if (this.keyField === 'transactionId') messages.push({ key: tx.transactionId, value, timestamp: String(t) });
          else messages.push({ key: tx[this.keyField], value, timestamp: String(t), headers: { [EVENT_HEADER]: tx.transactionId } });
        }
        const n = last - track.sent;
        track.sent = last;
        const t0 = Date.now();
        const p: Promise<void> = this.producer
          .send({ topic: this.topic, acks: -1, messages })
          .then(
            () => {
              track.acked += n;
              acks.push(Date.now() - t0);
            },
            (err: Error) => {
              failure = err;
            },
          )
          .finally(() => inflight.delete(p));
        inflight.add(p);
        requests++;
      }
      o.onTick?.(Date.now() - start);
      // One wake-up per tick (not per event): what is due by then goes out as one small batch. The
      // next wake-up is the later of the tick's end and the next event's due time (below 1,000/tick
      // events/s that is the event). Until 2026-12-06 this took the earlier of the two, so above
      // ~200/s the driver woke every ~1 ms and sent one produce request per wake-up — ~700 requests/s
      // at any rate, a third of the co-located broker's requests (BENCHMARKS.md item 43);
      // `--tick-ms 1` reproduces that cadence.
      const tickEnd = now + o.tickMs;
      await sleep(Math.max(1, Math.max(tickEnd, start + track.sent * msPerEvent) - Date.now()));
    }
    await Promise.all(inflight);
    if (failure) throw failure;
    // lateness = handed over - due, per event (the track keeps both)
    const sortedLate = Float64Array.from({ length: total }, (_, i) => track.sentAt[i] - track.dueAt[i]).sort();
    acks.sort((a, b) => a - b);
    return {
      phase: track.name,
      rate,
      seconds: total / rate,
      sent: track.sent,
      start,
      end: Date.now(),
      latenessMs: { p50: Math.round(pct(sortedLate, 50)), p99: Math.round(pct(sortedLate, 99)), max: Math.round(sortedLate[sortedLate.length - 1] ?? NaN) },
      inflightWaits,
      requests,
      ackMs: { p50: pct(acks, 50), p99: pct(acks, 99) },
    };
  }
}

function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Reads predictions (read_committed) and dead letters, and matches them to the driver's events. */
export class Probe {
  private readonly consumer: Consumer;
  private readonly decoder: AvroDecoder<Prediction>;
  readonly phases = new Map<string, PhaseTrack>();
  undecodable = 0;
  unknownKeys = 0;
  /** Highest offset read per topic:partition (a rejoin re-reads from the start; those are skipped). */
  private readonly readUpTo = new Map<string, number>();
  deadLetters = 0;

  constructor(
    ep: Endpoints,
    readonly topic: string,
    readonly deadLetterTopic: string | undefined,
    groupId: string,
    private readonly partitions: number,
  ) {
    const kafka = createKafka({ clientId: 'bench-probe', brokers: ep.brokers });
    this.consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, readUncommitted: false });
    const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
    this.decoder = new AvroDecoder(new SchemaRegistryClient({ url: ep.schemaRegistryUrl }), catalog.get('prediction').type);
  }

  track(name: string, total: number): PhaseTrack {
    const t = new PhaseTrack(name, total);
    this.phases.set(name, t);
    return t;
  }

  private lookup(key: string | undefined): { t: PhaseTrack; i: number } | undefined {
    if (!key) return undefined;
    const c = key.lastIndexOf(':');
    const t = this.phases.get(key.slice(0, c));
    const i = Number(key.slice(c + 1));
    return t && Number.isInteger(i) && i >= 0 && i < t.total ? { t, i } : undefined;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.deadLetterTopic ? [this.topic, this.deadLetterTopic] : [this.topic], fromBeginning: true });
    const joined = new Promise<void>((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    await this.consumer.run({
      // The probe is the instrument and commits no offsets: kafkajs' autoCommit commits after every fetch
      // (~85 OffsetCommit requests/s on the shared broker at 2,000 events/s, counted over JMX: load the
      // instrument put on the system it measures). Its group is fresh per system; should it ever rejoin,
      // it reads from the beginning again and the offsets it already read are skipped below, so a
      // re-read is never counted as a duplicate prediction.
      autoCommit: false,
      partitionsConsumedConcurrently: this.partitions + 1,
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        const seenKey = `${batch.topic}:${batch.partition}`;
        const seenUpTo = this.readUpTo.get(seenKey) ?? -1;
        const fresh = batch.messages.filter((m) => Number(m.offset) > seenUpTo);
        // Marked read once handled (a batch that throws is fetched again and must count then).
        const handled = () => batch.messages.length > 0 && this.readUpTo.set(seenKey, Math.max(seenUpTo, Number(batch.messages[batch.messages.length - 1].offset)));
        if (batch.topic !== this.topic) {
          for (const m of fresh) {
            this.deadLetters++;
            const hit = this.lookup(m.key?.toString()) ?? this.lookup(m.headers?.[EVENT_HEADER]?.toString());
            if (hit) hit.t.deadLettered++;
          }
          handled();
          return;
        }
        for (const m of fresh) {
          const p = await this.decoder.decode(m.value);
          if (p instanceof RecordRejection) {
            this.undecodable++;
            continue;
          }
          const hit = this.lookup(p.key) ?? this.lookup(m.key?.toString()) ?? this.lookup(m.headers?.[EVENT_HEADER]?.toString());
          if (!hit) {
            this.unknownKeys++;
            continue;
          }
          const { t, i } = hit;
          if (Number.isNaN(t.receivedAt[i])) {
            t.receivedAt[i] = now;
            t.producedAt[i] = Number(p.producedTime);
            t.predicted++;
            if (Number(p.ingestTime) !== t.sentAt[i]) t.ingestMismatch++;
          } else t.duplicates++;
        }
        handled();
      },
    });
    await joined;
  }

  /** Waits until every sent event of `phase` has a prediction, or the timeout; true when all arrived. */
  async drained(track: PhaseTrack, timeoutMs: number, onWait?: () => void): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (track.predicted < track.sent) {
      if (Date.now() > deadline) return false;
      onWait?.();
      await sleep(50);
    }
    return true;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
