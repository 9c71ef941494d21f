/**
 * Where a backfill writes its predictions, each exactly once per input record over crashes (the
 * engine's lanes call `write` with each commit; see runner.ts):
 * - TopicSink: Avro to a topic, in one Kafka transaction per batch with the consumed offsets (the
 *   engine's PartitionTransactions, transactional ids `<checkpoint group>.<input topic>.<partition>`):
 *   a resumed run fences the crashed one, aborts its open transaction, and restarts from the
 *   committed offsets.
 * - FileSink: JSON lines or CSV appended per batch; after each append the file is fsynced and the
 *   checkpoint (next offsets + file lengths) replaced atomically. A resumed run truncates the file
 *   (and the dead-letter file next to it) to the checkpointed lengths and restarts from its offsets.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Kafka, Message } from 'kafkajs';
import type { DeadLetter, Prediction } from '../client/generated/avro-types';
import type { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroEncoder } from '../kafka/avro-serde';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { PartitionTransactions, type SinkRecord } from '../engine/commit-sink';
import { crashPoint } from '../engine/fault-injection';
import { RecordRejection } from '../kafka/dead-letter';
import type { Logger } from '../util/logger';
import type { Counters, FileCheckpoint, JobStore } from './job-store';

export interface OutputRow {
  prediction: Prediction;
  /** The vector the prediction was scored on (file output with --include-features). */
  features?: { names: string[]; values: number[] };
}

export interface SinkBatch {
  partition: number;
  /** Offset to resume this partition from once the batch is durable. */
  nextOffset: number;
  rows: OutputRow[];
  deadLetters: DeadLetter[];
  /** Counted events of the batch (in range / warmup). */
  events: number;
  warmupEvents: number;
}

export interface Sink {
  /** Per partition, where to resume (null: nothing written yet — start at the plan's start). */
  resumeOffsets(partitions: number[]): Promise<Map<number, number | null>>;
  /** Makes the batch durable with its offset; returns the counters after it. */
  write(batch: SinkBatch): Promise<Counters>;
  counters(): Counters;
  /** Marks the job complete (the summary of a finished job can be printed again). */
  complete(runMs: number): Promise<Counters>;
  /** Closes; `runMs` of an interrupted attempt is added to the saved running time. */
  close(runMs?: number): Promise<void>;
  describe(): string;
  /**
   * True when a write is atomic with its offset (a transaction): after a failed write the engine
   * asks `committed` whether it landed before writing again. False: a failed write is repeated.
   */
  readonly exactlyOnce: boolean;
  /** The partition's durable resume offset now (null: none). */
  committed(partition: number): Promise<string | null>;
}

/** A serial section: appends and checkpoints of concurrently processed partitions never interleave. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export const CSV_COLUMNS = ['key', 'score', 'label', 'threshold', 'model_name', 'model_version', 'event_time', 'ingest_time', 'topic', 'partition', 'offset', 'feature_set_versions'];

function csvCell(v: unknown): string {
  const s = typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvHeader(featureNames?: string[]): string {
  return `${[...CSV_COLUMNS, ...(featureNames ?? [])].map(csvCell).join(',')}\n`;
}

export function formatRow(row: OutputRow, format: 'jsonl' | 'csv', featureNames?: string[]): string {
  const p = row.prediction;
  if (format === 'jsonl') {
    const { producedTime: _p, latencyMs: _l, route: _r, ...rest } = p;
    const out: Record<string, unknown> = { ...rest };
    if (row.features) out.features = Object.fromEntries(row.features.names.map((n, i) => [n, row.features!.values[i]]));
    return `${JSON.stringify(out)}\n`;
  }
  const versions = Object.entries(p.featureSetVersions ?? {}).map(([k, v]) => `${k}=${v}`).join(';');
  const cells: unknown[] = [p.key, p.score, p.label, p.threshold, p.modelName, p.modelVersion, p.eventTime, p.ingestTime, p.lineage.topic, p.lineage.partition, p.lineage.offset, versions];
  if (featureNames) cells.push(...featureNames.map((n) => row.features?.values[row.features.names.indexOf(n)] ?? ''));
  return `${cells.map(csvCell).join(',')}\n`;
}

function deadLetterLine(d: DeadLetter): string {
  return `${JSON.stringify({ ...d, key: d.key ? d.key.toString('utf8') : null, value: d.value ? d.value.toString('base64') : null })}\n`;
}

function appendSync(file: string, text: string): number {
  if (text.length === 0) return 0;
  const fd = fs.openSync(file, 'a');
  try {
    const buf = Buffer.from(text, 'utf8');
    fs.writeSync(fd, buf);
    fs.fsyncSync(fd);
    return buf.length;
  } finally {
    fs.closeSync(fd);
  }
}

function truncateTo(file: string, length: number): void {
  const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  if (size < length) throw new Error(`${file} is ${size} bytes, shorter than its checkpoint (${length}): it was changed outside the backfill; use --restart`);
  if (size > length) fs.truncateSync(file, length);
}

export class FileSink implements Sink {
  private readonly serial = new Serial();
  private state!: FileCheckpoint;
  readonly deadLetterFile: string;
  readonly exactlyOnce = false;

  constructor(
    private readonly store: JobStore,
    readonly file: string,
    private readonly format: 'jsonl' | 'csv',
    private readonly featureNames: string[] | undefined,
    private readonly initial: Counters,
  ) {
    this.deadLetterFile = `${file}.dead-letters.jsonl`;
  }

  describe(): string {
    return `${this.file} (${this.format})`;
  }

  /** Opens the files: from the checkpoint (truncating anything written after it) or fresh. */
  async resumeOffsets(partitions: number[]): Promise<Map<number, number | null>> {
    fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    const ck = this.store.checkpoint();
    if (ck) {
      truncateTo(this.file, ck.outputBytes);
      truncateTo(this.deadLetterFile, ck.deadLetterBytes);
      this.state = ck;
    } else {
      const header = this.format === 'csv' ? csvHeader(this.featureNames) : '';
      fs.writeFileSync(this.file, header);
      fs.writeFileSync(this.deadLetterFile, '');
      this.state = { offsets: {}, outputBytes: Buffer.byteLength(header), deadLetterBytes: 0, counters: { ...this.initial }, done: false };
      this.store.saveCheckpoint(this.state);
    }
    return new Map(partitions.map((p) => [p, this.state.offsets[String(p)] ?? null]));
  }

  write(batch: SinkBatch): Promise<Counters> {
    return this.serial.run(() => {
      const text = batch.rows.map((r) => formatRow(r, this.format, this.featureNames)).join('');
      const dlq = batch.deadLetters.map(deadLetterLine).join('');
      const outBytes = appendSync(this.file, text);
      const dlqBytes = appendSync(this.deadLetterFile, dlq);
      // Rows on disk, checkpoint not yet replaced: a resume must truncate them (fault tests crash here).
      crashPoint('file-appended');
      const c = this.state.counters;
      const next: FileCheckpoint = {
        offsets: { ...this.state.offsets, [String(batch.partition)]: batch.nextOffset },
        outputBytes: this.state.outputBytes + outBytes,
        deadLetterBytes: this.state.deadLetterBytes + dlqBytes,
        counters: { ...c, events: c.events + batch.events, warmupEvents: c.warmupEvents + batch.warmupEvents, predictions: c.predictions + batch.rows.length, deadLettered: c.deadLettered + batch.deadLetters.length },
        done: false,
      };
      this.store.saveCheckpoint(next);
      this.state = next;
      return next.counters;
    });
  }

  counters(): Counters {
    return this.state.counters;
  }

  async committed(partition: number): Promise<string | null> {
    const o = this.state?.offsets[String(partition)];
    return o === undefined ? null : String(o);
  }

  complete(runMs: number): Promise<Counters> {
    return this.serial.run(() => {
      this.state = { ...this.state, counters: { ...this.state.counters, runMs: this.state.counters.runMs + runMs }, done: true };
      this.store.saveCheckpoint(this.state);
      this.store.saveCounters({ ...this.state.counters, done: true });
      return this.state.counters;
    });
  }

  /** Saves the running time of an interrupted attempt. */
  async close(runMs = 0): Promise<void> {
    if (!this.state || this.state.done || runMs === 0) return;
    await this.serial.run(() => {
      this.state = { ...this.state, counters: { ...this.state.counters, runMs: this.state.counters.runMs + runMs } };
      this.store.saveCheckpoint(this.state);
    });
  }
}

export interface TopicSinkOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  catalog: SchemaCatalog;
  store: JobStore;
  inputTopic: string;
  outputTopic: string;
  deadLetterTopic: string;
  checkpointGroup: string;
  maxMessageBytes: number;
  initial: Counters;
  log: Logger;
}

/** Per-partition totals of a topic sink, as of a committed offset. */
interface PartitionTotals {
  offset: number | null;
  events: number;
  warmupEvents: number;
  predictions: number;
  deadLettered: number;
}

/** counters.json of a topic job: aggregate Counters plus, per partition, the totals as of the batch about to commit and before it. */
type TopicCountersFile = Counters & { done?: boolean; partitions?: Record<string, PartitionTotals & { prev?: PartitionTotals }> };

const ZERO: PartitionTotals = { offset: null, events: 0, warmupEvents: 0, predictions: 0, deadLettered: 0 };

export class TopicSink implements Sink {
  /** One transactional producer per input partition (`<checkpoint group>.<topic>.<partition>`), as live chains do. */
  private readonly txns = new Map<number, PartitionTransactions>();
  private readonly encoder: AvroEncoder<Prediction>;
  private readonly dlqEncoder: AvroEncoder<DeadLetter>;
  /** Totals as of each partition's committed offset. */
  private readonly committedTotals = new Map<number, PartitionTotals>();
  /** What counters.json says per partition (the in-flight batch's totals and the ones before it). */
  private saved: Record<string, PartitionTotals & { prev?: PartitionTotals }> = {};
  private runMs: number;
  private attempts: number;
  readonly exactlyOnce = true;

  constructor(private readonly opts: TopicSinkOptions) {
    this.encoder = new AvroEncoder(opts.registry, opts.catalog.get('prediction'), opts.outputTopic);
    this.dlqEncoder = new AvroEncoder(opts.registry, opts.catalog.get('dead-letter'), opts.deadLetterTopic);
    this.runMs = opts.initial.runMs;
    this.attempts = opts.initial.attempts;
  }

  describe(): string {
    return `topic ${this.opts.outputTopic}`;
  }

  /**
   * Fences any earlier process of this job (aborting its open transaction), then reads the committed
   * offsets. The counters are exact over crashes: before a batch's transaction commits, counters.json
   * records the partition's totals with and without the batch; the committed offset says which holds.
   */
  async resumeOffsets(partitions: number[]): Promise<Map<number, number | null>> {
    await Promise.all([this.encoder.id(), this.dlqEncoder.id()]);
    const file = (this.opts.store.counters() as TopicCountersFile | undefined)?.partitions ?? {};
    const out = new Map<number, number | null>();
    for (const p of partitions) {
      const o = await this.txnsFor(p).init();
      const offset = o === null ? null : Number(o);
      out.set(p, offset);
      const entry = file[String(p)];
      let totals: PartitionTotals = { ...ZERO };
      if (entry && entry.offset === offset) totals = { ...entry, prev: undefined } as PartitionTotals;
      else if (entry?.prev && entry.prev.offset === offset) totals = { ...entry.prev };
      else if (offset !== null && entry) {
        this.opts.log.warn({ partition: p, committed: offset, counted: entry.offset }, 'counters do not match the committed offset; the summary may be off');
        totals = { ...entry, prev: undefined } as PartitionTotals;
      }
      delete (totals as { prev?: unknown }).prev;
      this.committedTotals.set(p, totals);
      this.saved[String(p)] = { ...totals };
    }
    return out;
  }

  private totals(): Counters {
    const c: Counters = { events: 0, warmupEvents: 0, predictions: 0, deadLettered: 0, runMs: this.runMs, attempts: this.attempts };
    for (const t of this.committedTotals.values()) {
      c.events += t.events;
      c.warmupEvents += t.warmupEvents;
      c.predictions += t.predictions;
      c.deadLettered += t.deadLettered;
    }
    return c;
  }

  private save(done = false): void {
    const file: TopicCountersFile = { ...this.totals(), done, partitions: this.saved };
    this.opts.store.saveCounters(file);
  }

  private txnsFor(partition: number): PartitionTransactions {
    let t = this.txns.get(partition);
    if (!t) {
      t = new PartitionTransactions({
        kafka: this.opts.kafka,
        groupId: this.opts.checkpointGroup,
        deadLetterTopic: this.opts.deadLetterTopic,
        limits: { maxMessageBytes: (topic) => (topic === this.opts.outputTopic ? this.opts.maxMessageBytes : 1024 * 1024) },
        log: this.opts.log,
        topic: this.opts.inputTopic,
        partition,
        fetchCommitted: (topic, p) => committedOffset(this.opts.kafka, this.opts.checkpointGroup, topic, p),
      });
      this.txns.set(partition, t);
    }
    return t;
  }

  async write(batch: SinkBatch): Promise<Counters> {
    const id = await this.encoder.id();
    const dlqId = await this.dlqEncoder.id();
    const encodeDeadLetter = (d: DeadLetter): Message => ({ key: d.key ?? null, value: this.dlqEncoder.encodeWithId(dlqId, d), headers: { 'tributary-error-kind': d.errorKind } });
    const rows: SinkRecord[] = batch.rows.map((r) => {
      const value = this.encoder.encodeWithId(id, r.prediction);
      return {
        outputs: [{ topic: this.opts.outputTopic, message: { key: r.prediction.key, value } }],
        toDeadLetter: (rejection: RecordRejection) => encodeDeadLetter({ stage: 'backfill', errorKind: rejection.kind, errorMessage: rejection.message, lineage: r.prediction.lineage, key: Buffer.from(r.prediction.key), value, failedTime: Date.now() }),
      };
    });
    const rejected: SinkRecord[] = batch.deadLetters.map((d) => ({ outputs: [], rejection: new RecordRejection(d.errorKind, d.errorMessage), toDeadLetter: () => encodeDeadLetter(d) }));
    const before = this.committedTotals.get(batch.partition) ?? { ...ZERO };
    let after: PartitionTotals = before;
    await this.txnsFor(batch.partition).commit({
      topic: this.opts.inputTopic,
      partition: batch.partition,
      nextOffset: String(batch.nextOffset),
      records: [...rows, ...rejected],
      // Every rejection is known: record the totals with and without this batch before it commits.
      beforeCommit: () => {
        const refused = rows.filter((r) => r.rejection).length;
        after = {
          offset: batch.nextOffset,
          events: before.events + batch.events,
          warmupEvents: before.warmupEvents + batch.warmupEvents,
          predictions: before.predictions + batch.rows.length - refused,
          deadLettered: before.deadLettered + batch.deadLetters.length + refused,
        };
        this.saved[String(batch.partition)] = { ...after, prev: before };
        this.save();
      },
    });
    this.committedTotals.set(batch.partition, after);
    return this.totals();
  }

  counters(): Counters {
    return this.totals();
  }

  /** Asked after a failed write: when its transaction did commit (the answer was lost), its totals hold. */
  async committed(partition: number): Promise<string | null> {
    const offset = await committedOffset(this.opts.kafka, this.opts.checkpointGroup, this.opts.inputTopic, partition);
    const saved = this.saved[String(partition)];
    if (offset !== null && saved && saved.offset === Number(offset)) {
      const { prev: _prev, ...totals } = saved;
      this.committedTotals.set(partition, totals);
    }
    return offset;
  }

  async complete(runMs: number): Promise<Counters> {
    this.runMs += runMs;
    this.save(true);
    return this.totals();
  }

  async close(runMs = 0): Promise<void> {
    if (runMs > 0) {
      this.runMs += runMs;
      this.save();
    }
    await Promise.all([...this.txns.values()].map((t) => t.close()));
  }
}

async function committedOffset(kafka: Kafka, groupId: string, topic: string, partition: number): Promise<string | null> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    const entry = res.find((r) => r.topic === topic)?.partitions.find((p) => p.partition === partition);
    return entry && Number(entry.offset) >= 0 ? entry.offset : null;
  } finally {
    await admin.disconnect();
  }
}
