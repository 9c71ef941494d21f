import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { DeadLetter } from './records';
import type { AvroEncoder } from '../kafka/avro-serde';
import { RecordRejection } from '../kafka/dead-letter';
import type { BatchScope, InputRecord, Lineage, OutputRecord, PartialValues, Processor, ProcessResult } from '../stages/processor';
import { RerunBatchError } from '../util/errors';
import type { StageSpec } from '../topology/spec';
import type { Logger } from '../util/logger';
import type { SinkRecord, TopicMessage } from './commit-sink';
import { replyCopy, replyTarget, type ReplyRoute } from './replies';
import { isTransientError } from './transient';
import { entityKey, parseFieldPath } from '../util/field-path';
import { CarriedEvent, partialRecord, type ValueDecoder } from './partial-vector';
import { KEY_HEADER, LINEAGE_HEADER, REPARTITION_PROCESSOR, originHeaders, parseLineageHeader } from './repartition';

/**
 * Header naming the stages that already processed a record inside a fused chain. A stage running
 * apart (its own consumer group on the intermediate topic) skips records that name it: that is what
 * makes a cut-over between split and fused deployments lose and duplicate nothing.
 */
export const DONE_HEADER = 'tributary-done';
/** Header of dead letters: the error kind. */
export const ERROR_KIND_HEADER = 'tributary-error-kind';

/**
 * One stage of a chain: its spec, its processor and the encoder of its output topic. A stage
 * without an encoder writes nothing to Kafka: its outputs stay in memory (passed to the next stage
 * and kept in ChainRecord.values for sinks that write elsewhere, e.g. a backfill's file), or are
 * dropped (consumers whose processor acts on Redis or metrics: commit offsets only).
 */
export interface ChainStage {
  spec: StageSpec;
  processor: Processor;
  encoder?: AvroEncoder<unknown>;
  /** Registry id of the output topic's schema (registered at start; with `encoder`). */
  schemaId?: number;
  /** Write the consumed value bytes unchanged instead of encoding the processor's value (the repartition step, a chain head). */
  passthroughValue?: boolean;
  /**
   * A per-entity step before the last of a stage chained over several entities: the processor's
   * value (PartialValues) is written as a partial record wrapping the original event's bytes
   * (src/engine/partial-vector.ts), with the original lineage and key in LINEAGE_HEADER/KEY_HEADER
   * and the original Kafka timestamp, as a repartition hop writes them.
   */
  wrapsEvent?: boolean;
  /**
   * `partitionBy: none` stages: the entity field their input keys should equal; records whose key
   * differs are passed to `onKeyMismatch` (they are still processed).
   */
  keyCheck?: { field: string; onKeyMismatch(count: number, example: { key: string | null; entity: string | null }): void };
  /**
   * A deduplicated repartition hop (at the chain's head): a record it cannot read (too large for
   * the stage, undecodable) is not dead-lettered here — that write would not be exactly-once — but
   * forwarded unchanged under its original key, with its lineage, for the reading stage to
   * dead-letter in its transaction.
   */
  forwardRejected?: boolean;
}

export interface ChainOptions {
  stages: ChainStage[];
  /** Decoder of the first stage's input topic (a PartialVectorDecoder behind an earlier per-entity step). */
  decoder: ValueDecoder<unknown>;
  /** Chains that read several topics (one consumer group): the decoder of each other input topic. */
  decoders?: Record<string, ValueDecoder<unknown>>;
  /** Absent: the chain's sink never writes dead letters (offsets-only consumers). */
  dlqEncoder?: AvroEncoder<DeadLetter>;
  dlqSchemaId?: number;
  /** Dead-letter copies of original values are cut to this many bytes so the DLQ write itself cannot fail. */
  deadLetterMaxValueBytes: number;
  /**
   * Request-reply (src/engine/replies.ts): records whose headers name a partition of this topic get
   * a reply copy of each output and dead letter, written in the same commit. Absent (backfills,
   * offsets-only consumers): no replies.
   */
  replies?: ReplyRoute;
  /**
   * Keep each stage's output value on its record (ChainRecord.values) for sinks that write them
   * elsewhere than Kafka (a backfill's file). Off (the default): a record waiting for its commit
   * holds its encoded outputs only, not the decoded vectors and predictions as well.
   */
  keepValues?: boolean;
  log: Logger;
}

/** What happened to one consumed record inside the chain: for counters and metrics once it is committed. */
export interface RecordTrace {
  /** Stages that consumed it, in order. */
  consumedBy: string[];
  /** Stages whose output it produced. */
  producedBy: string[];
  /** The stage that rejected it, if one did. */
  rejectedBy?: string;
  /** Skipped: already processed by the head stage inside a fused chain. */
  skipped: boolean;
  /** Kafka timestamp of the source record (ms). */
  timestamp: number;
  /** Offset of the source record in its input partition. */
  offset: number;
}

/** A processed record: what the sink writes plus its trace. */
export interface ChainRecord extends SinkRecord {
  trace: RecordTrace;
  /** Each stage's output value, in stage order (as the processor returned it, before encoding); empty unless ChainOptions.keepValues. */
  values: unknown[];
  /** The dead letter for this record as a value (sinks that write dead letters elsewhere than Kafka). */
  deadLetterRecord(rejection: RecordRejection): DeadLetter;
}

/** Kafka headers as plain buffers, without the engine's per-hop ones. */
export function inheritedHeaders(headers: IHeaders | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  if (!headers) return out;
  for (const k of Object.keys(headers)) {
    const v = headers[k];
    if (v === undefined || k === DONE_HEADER || k === ERROR_KIND_HEADER || k === LINEAGE_HEADER || k === KEY_HEADER) continue;
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    out[k] = typeof one === 'string' ? Buffer.from(one) : one;
  }
  return out;
}

/** Whether the record's DONE_HEADER names `stage` (allocates only when the header is there). */
function isDoneBy(message: KafkaMessage, stage: string): boolean {
  const v = message.headers?.[DONE_HEADER];
  if (v === undefined) return false;
  const one = Array.isArray(v) ? v[v.length - 1] : v;
  return one.toString().split(',').includes(stage);
}

/** The values of records whose chain does not keep them (ChainOptions.keepValues): one shared empty array. */
const NO_VALUES: unknown[] = Object.freeze([]) as unknown as unknown[];

/**
 * One consumed record on its way through a chain, and what sinks see of it: its outputs, its fate
 * and what it becomes as a dead letter. One object per record for the whole chain — the input's
 * position, lineage and headers, and its trace as counts — because these objects are what a
 * pipeline under load holds across young-generation collections while it waits for a commit, and
 * what the collector then copies and promotes (BENCHMARKS items 32-33). Methods on the prototype:
 * no closures per record.
 */
class EntryRecord implements ChainRecord {
  outputs: TopicMessage[] = [];
  values: unknown[];
  rejection?: RecordRejection = undefined;
  visibleAt?: number = undefined;
  stagedSeq?: number = undefined;
  /** Bytes of the input of the stage currently processing the record (for dead letters). */
  inputBytes: Buffer | null;
  /** The original event's value bytes (unwrapped from a partial record behind an earlier per-entity step). */
  eventBytes: Buffer | null;
  /** How many of the chain's stages consumed it (always its first ones). */
  consumed = 0;
  /** Bit i set: stage i produced an output. */
  produced = 0;
  /** The stage that rejected it, if one did. */
  rejectedBy: string | undefined = undefined;
  /** Already processed by the head stage inside a fused chain. */
  skipped = false;

  constructor(
    readonly chain: Chain,
    readonly message: KafkaMessage,
    /** The consumed position. */
    readonly source: Lineage,
    /** The original record's lineage (from LINEAGE_HEADER behind a repartition hop, else the consumed position). */
    readonly lineage: Lineage,
    /** The original record's key. */
    readonly key: Buffer | null,
    readonly headers: Record<string, Buffer>,
    /** Kafka timestamp of the original record (kept by hops and per-entity steps). */
    readonly timestamp: number,
    keepValues: boolean,
  ) {
    this.inputBytes = message.value;
    this.eventBytes = message.value;
    this.values = keepValues ? [] : NO_VALUES;
  }

  /** Built when asked (at commit, for counters and metrics), from the counts kept while processing. */
  get trace(): RecordTrace {
    const names = this.chain.stageNames;
    const producedBy: string[] = [];
    for (let i = 0; i < names.length; i++) if ((this.produced >>> i) & 1) producedBy.push(names[i]);
    const trace: RecordTrace = { consumedBy: names.slice(0, this.consumed), producedBy, skipped: this.skipped, timestamp: this.timestamp, offset: this.source.offset };
    if (this.rejectedBy !== undefined) trace.rejectedBy = this.rejectedBy;
    return trace;
  }

  toDeadLetter(rejection: RecordRejection): Message {
    return this.chain.deadLetterOf(this, rejection);
  }

  deadLetterRecord(rejection: RecordRejection): DeadLetter {
    return this.chain.deadLetterRecordOf(this, rejection);
  }
}

/** A record of a chain with a reply route (request-reply, src/engine/replies.ts). */
class RepliedRecord extends EntryRecord {
  replies(): TopicMessage[] {
    return this.chain.repliesOf(this);
  }
}

/**
 * A chain of processors executed in memory for a chunk of records of one input partition:
 * decode -> stage 1 -> ... -> stage n, each stage's outputs encoded for its topic (the last stage's
 * topic is the chain's output; the others are side outputs written in the same transaction) and
 * fed to the next stage as decoded values. A chain of one stage is a plain stage.
 */
export class Chain {
  readonly name: string;
  /** The stages' names in order (a record's trace names them). @internal (EntryRecord) */
  readonly stageNames: readonly string[];
  private readonly maxInputBytes: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  /** Per stage: the DONE_HEADER value its outputs carry (the stages after it), or undefined for the last. */
  private readonly doneHeaders: Array<string | undefined>;

  constructor(private readonly opts: ChainOptions) {
    const head = opts.stages[0].spec;
    this.stageNames = opts.stages.map((s) => s.spec.name);
    // A record's produced stages are a bit mask (EntryRecord.produced).
    if (this.stageNames.length > 31) throw new Error(`a chain holds at most 31 stages, got ${this.stageNames.length} (${this.stageNames.join(', ')})`);
    this.name = this.stageNames.join('+');
    this.maxInputBytes = head.limits?.maxMessageBytes ?? Number.POSITIVE_INFINITY;
    this.maxAttempts = head.errors?.maxAttempts ?? 3;
    this.backoffMs = head.errors?.backoffMs ?? 200;
    this.doneHeaders = this.stageNames.map((_, i) => (i + 1 < this.stageNames.length ? this.stageNames.slice(i + 1).join(',') : undefined));
  }

  get stages(): readonly ChainStage[] {
    return this.opts.stages;
  }

  /**
   * Processes a chunk of consumed records (in offset order). Per-record problems become dead
   * letters; a transient failure (a dependency down) throws, and the caller retries the chunk.
   * Returns once the work its processors deferred to the chunk's commit (BatchScope) has landed; a
   * RerunBatchError from that work runs the chunk again at once, every write then awaited in place.
   */
  async process(topic: string, partition: number, messages: KafkaMessage[]): Promise<ChainRecord[]> {
    const scope = new ChunkScope();
    try {
      const records = await this.processOnce(topic, partition, messages, scope);
      await scope.landed();
      return records;
    } catch (err) {
      // Nothing of this run is kept; its state writes must not still be in flight behind a retry.
      await scope.settled();
      if (!(err instanceof RerunBatchError)) throw err;
      this.reruns++;
      return this.processOnce(topic, partition, messages, undefined);
    }
  }

  /** Chunks run again at once because deferred work found its inputs changed (RerunBatchError). */
  reruns = 0;

  private async processOnce(topic: string, partition: number, messages: KafkaMessage[], scope: ChunkScope | undefined): Promise<ChainRecord[]> {
    const head = this.opts.stages[0];
    const keepValues = this.opts.keepValues === true;
    const Record = this.opts.replies ? RepliedRecord : EntryRecord;
    const records: EntryRecord[] = new Array(messages.length);
    // The records still going through the chain and their inputs to the current stage, side by side.
    let live: EntryRecord[] = [];
    let inputs: InputRecord<unknown>[] = [];
    for (let m = 0; m < messages.length; m++) {
      const message = messages[m];
      const consumed: Lineage = { topic, partition, offset: Number(message.offset) };
      // Behind a repartition hop the record carries the original lineage and key: processors,
      // outputs and dead letters see the original record; `source` keeps the consumed position.
      const original = parseLineageHeader(lastHeader(message, LINEAGE_HEADER));
      const key = original ? (lastHeader(message, KEY_HEADER) ?? null) : message.key;
      const headers = inheritedHeaders(message.headers);
      const rec = new Record(this, message, consumed, original ?? consumed, key ?? null, headers, Number(message.timestamp), keepValues);
      records[m] = rec;
      if (isDoneBy(message, head.spec.name)) {
        rec.skipped = true;
        continue;
      }
      rec.consumed = 1;
      const size = (message.value?.length ?? 0) + (message.key?.length ?? 0);
      if (size > this.maxInputBytes) {
        if (head.forwardRejected) {
          this.forward(rec, head);
          continue;
        }
        this.reject(rec, head, new RecordRejection('TOO_LARGE', `input record of ${size} bytes exceeds the stage's limits.maxMessageBytes (${this.maxInputBytes})`));
        continue;
      }
      const decoded = await this.decoderFor(topic).decode(message.value);
      if (decoded instanceof RecordRejection) {
        if (head.forwardRejected) this.forward(rec, head);
        else this.reject(rec, head, decoded);
        continue;
      }
      // Behind an earlier per-entity step: the processor sees the original event and the features so
      // far; dead letters carry the event's bytes (what a replay of the input would need).
      live.push(rec);
      if (decoded instanceof CarriedEvent) {
        rec.inputBytes = rec.eventBytes = decoded.eventBytes;
        inputs.push({ value: decoded.event, key: rec.key, timestamp: rec.timestamp, lineage: rec.lineage, source: rec.source, headers: rec.headers, partial: decoded.partial });
      } else {
        inputs.push({ value: decoded, key: rec.key, timestamp: rec.timestamp, lineage: rec.lineage, source: rec.source, headers: rec.headers });
      }
    }

    const last = this.opts.stages.length - 1;
    for (let i = 0; i <= last && live.length > 0; i++) {
      const stage = this.opts.stages[i];
      if (i > 0) for (const rec of live) rec.consumed = i + 1;
      if (stage.keyCheck) checkKeys(stage.keyCheck, inputs);
      const results = await this.runStage(stage, inputs, scope);
      const nextLive: EntryRecord[] = [];
      const nextInputs: InputRecord<unknown>[] = [];
      for (let j = 0; j < results.length; j++) {
        const result = results[j];
        const rec = live[j];
        if (result instanceof RecordRejection) {
          this.reject(rec, stage, result);
          continue;
        }
        if (stage.encoder) {
          const message = this.encode(stage, result, rec, this.doneHeaders[i]);
          if (message instanceof RecordRejection) {
            this.reject(rec, stage, message);
            continue;
          }
          rec.outputs.push({ topic: stage.spec.output.topic, message });
          rec.produced |= 1 << i;
          rec.inputBytes = message.value as Buffer;
        }
        if (keepValues) rec.values.push(result.value);
        if (i < last) {
          nextLive.push(rec);
          nextInputs.push({ value: result.value, key: Buffer.from(result.key), timestamp: rec.timestamp, lineage: rec.lineage, source: rec.source, headers: rec.headers });
        }
      }
      live = nextLive;
      inputs = nextInputs;
    }
    return records;
  }

  private decoderFor(topic: string): ValueDecoder<unknown> {
    if (topic === this.opts.stages[0].spec.input.topic) return this.opts.decoder;
    const d = this.opts.decoders?.[topic];
    if (!d) throw new Error(`chain ${this.name} has no decoder for topic ${topic}`);
    return d;
  }

  /** forwardRejected: the consumed record, unchanged, to the hop's topic (original key, lineage, timestamp). */
  private forward(rec: EntryRecord, head: ChainStage): void {
    const headers = { ...rec.headers, ...originHeaders(rec.lineage, rec.key) };
    rec.outputs.push({ topic: head.spec.output.topic, message: { key: rec.key, value: rec.message.value, headers, timestamp: String(rec.timestamp) } });
    rec.produced |= 1;
  }

  private reject(rec: EntryRecord, stage: ChainStage, rejection: RecordRejection): void {
    rec.rejection = rejection;
    rec.rejectedBy = stage.spec.name;
  }

  /** One output message of `stage`; `done` is the DONE_HEADER value naming the stages after it (none after the last). */
  private encode(stage: ChainStage, out: OutputRecord<unknown>, rec: EntryRecord, done: string | undefined): Message | RecordRejection {
    let value: Buffer;
    if (stage.passthroughValue && rec.inputBytes) {
      value = rec.inputBytes;
    } else {
      if (stage.wrapsEvent && !rec.eventBytes) return new RecordRejection('PROCESSING_ERROR', 'no event bytes to carry to the next per-entity step');
      try {
        value = stage.encoder!.encodeWithId(stage.schemaId!, stage.wrapsEvent ? partialRecord(rec.eventBytes!, out.value as PartialValues) : out.value);
      } catch (err) {
        return new RecordRejection('PROCESSING_ERROR', `output does not match schema: ${(err as Error).message}`);
      }
    }
    const headers: Record<string, Buffer | string> = out.headers ? { ...rec.headers, ...out.headers } : { ...rec.headers };
    if (done !== undefined) headers[DONE_HEADER] = done;
    let timestamp = out.timestamp;
    if (stage.wrapsEvent) {
      // Like a repartition hop: the next step sees the original record (lineage, key, timestamp).
      Object.assign(headers, originHeaders(rec.lineage, rec.key));
      timestamp ??= rec.timestamp;
    }
    return timestamp === undefined ? { key: out.key, value, headers } : { key: out.key, value, headers, timestamp: String(timestamp) };
  }

  /**
   * Runs one stage over the chunk. Transient failures propagate (the chunk is retried for as long
   * as they last); other failures are retried `errors.maxAttempts` times with backoff, then the
   * records are processed one by one and those that still fail are rejected, so a poison message
   * never blocks its partition.
   */
  private async runStage(stage: ChainStage, inputs: InputRecord<unknown>[], scope: ChunkScope | undefined): Promise<ProcessResult<unknown>[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await stage.processor.processBatch(inputs, scope);
        if (results.length !== inputs.length) throw new Error(`processor of stage ${stage.spec.name} returned ${results.length} results for ${inputs.length} records`);
        return results;
      } catch (err) {
        if (isTransientError(err)) throw err;
        if (attempt < this.maxAttempts) {
          const delay = this.backoffMs * 2 ** (attempt - 1);
          this.opts.log.warn({ stage: stage.spec.name, err: (err as Error).message, attempt, delay }, 'processing failed; retrying the chunk');
          await new Promise((r) => setTimeout(r, delay));
          continue;
        }
        this.opts.log.error({ stage: stage.spec.name, err: (err as Error).message, attempt }, 'processing kept failing; isolating records');
        const out: ProcessResult<unknown>[] = [];
        for (const r of inputs) {
          try {
            out.push(...(await stage.processor.processBatch([r], scope)));
          } catch (e) {
            if (isTransientError(e)) throw e;
            out.push(new RecordRejection('PROCESSING_ERROR', `failed after ${attempt} attempts: ${(e as Error).message}`));
          }
        }
        return out;
      }
    }
  }

  /** Reply copies of what the record finally writes (called at commit time, after size checks settled its fate). @internal */
  repliesOf(rec: EntryRecord): TopicMessage[] {
    const target = replyTarget(rec.headers, this.opts.replies);
    if (!target) return [];
    // A repartition hop's output is the request itself, re-keyed, and a per-entity step's is a
    // partial record: internal, not worth a reply.
    const copies = rec.outputs.filter((o) => !this.hopTopics.has(o.topic)).map((o) => replyCopy(o.message, target, this.stageOfTopic(o.topic), 'output'));
    if (rec.rejection) copies.push(replyCopy(this.deadLetterOf(rec, rec.rejection), target, rec.rejectedBy ?? this.opts.stages[0].spec.name, 'dead-letter'));
    return copies;
  }

  private get hopTopics(): Set<string> {
    return new Set(this.opts.stages.filter((s) => s.spec.processor === REPARTITION_PROCESSOR || s.wrapsEvent).map((s) => s.spec.output.topic));
  }

  private stageOfTopic(topic: string): string {
    return this.opts.stages.find((s) => s.spec.output.topic === topic)?.spec.name ?? this.opts.stages[0].spec.name;
  }

  /** @internal (EntryRecord) */
  deadLetterOf(rec: EntryRecord, rejection: RecordRejection): Message {
    const { dlqEncoder, dlqSchemaId } = this.opts;
    if (!dlqEncoder || dlqSchemaId === undefined) throw new Error(`chain ${this.name} has no dead-letter topic`);
    const record = this.deadLetterRecordOf(rec, rejection);
    return { key: rec.key, value: dlqEncoder.encodeWithId(dlqSchemaId, record), headers: { ...rec.headers, [ERROR_KIND_HEADER]: rejection.kind } };
  }

  /** @internal (EntryRecord) */
  deadLetterRecordOf(rec: EntryRecord, rejection: RecordRejection): DeadLetter {
    const max = this.opts.deadLetterMaxValueBytes;
    let value = rec.inputBytes;
    let note = '';
    if (value && value.length > max) {
      note = ` [original value of ${value.length} bytes truncated to ${max}]`;
      value = value.subarray(0, max);
    }
    const record: DeadLetter = {
      stage: rec.rejectedBy ?? this.opts.stages[0].spec.name,
      errorKind: rejection.kind,
      errorMessage: rejection.message + note,
      lineage: rec.lineage,
      key: rec.key,
      value: value ?? null,
      failedTime: Date.now(),
    };
    return record;
  }
}

/** The BatchScope of one chain run over a chunk: the work its processors deferred to the commit. */
class ChunkScope implements BatchScope {
  private readonly work: Promise<unknown>[] = [];

  beforeCommit(work: Promise<unknown>): void {
    // Observed at once: a rejection is read in landed() or settled(), never reported as unhandled.
    work.catch(() => undefined);
    this.work.push(work);
  }

  /** Resolves once every deferred work resolved; rejects with the first rejection (in the order they were deferred). */
  async landed(): Promise<void> {
    for (let i = 0; i < this.work.length; i++) await this.work[i];
  }

  /** Resolves once every deferred work settled, whatever the outcome. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.work);
  }
}

/** A header's last value (kafkajs gives repeated headers as an array). */
export function lastHeader(message: KafkaMessage, name: string): Buffer | undefined {
  const v = message.headers?.[name];
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof one === 'string' ? Buffer.from(one) : one;
}

/** `partitionBy: none`: counts the records whose key is not their entity (null entities have no order to keep). */
function checkKeys(check: NonNullable<ChainStage['keyCheck']>, inputs: InputRecord<unknown>[]): void {
  const path = parseFieldPath(check.field);
  let count = 0;
  let example: { key: string | null; entity: string | null } | undefined;
  for (const r of inputs) {
    const entity = entityKey(r.value, path);
    const key = r.key?.toString() ?? null;
    if (entity !== null && key !== entity) {
      count++;
      example ??= { key, entity };
    }
  }
  if (count > 0) check.onKeyMismatch(count, example!);
}
