import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { DeadLetter } from './records';
import type { AvroEncoder } from '../kafka/avro-serde';
import { RecordRejection } from '../kafka/dead-letter';
import type { InputRecord, Lineage, OutputRecord, PartialValues, Processor, ProcessResult } from '../stages/processor';
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
  /** Each stage's output value, in stage order (as the processor returned it, before encoding). */
  values: unknown[];
  /** The dead letter for this record as a value (sinks that write dead letters elsewhere than Kafka). */
  deadLetterRecord(rejection: RecordRejection): DeadLetter;
}

interface Entry {
  message: KafkaMessage;
  /** The original record's lineage (from LINEAGE_HEADER behind a repartition hop, else the consumed position). */
  lineage: Lineage;
  /** The original record's key. */
  key: Buffer | null;
  headers: Record<string, Buffer>;
  /** Bytes of the input of the stage currently processing the record (for dead letters). */
  inputBytes: Buffer | null;
  /** The original event's value bytes (unwrapped from a partial record behind an earlier per-entity step). */
  eventBytes: Buffer | null;
  /** Kafka timestamp of the original record (kept by hops and per-entity steps). */
  timestamp: number;
  record: ChainRecord;
  /** The consumed position. */
  source: Lineage;
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

/**
 * A chain's record as sinks see it: its outputs and trace, and what it becomes as a dead letter,
 * from the chain and the entry it was read as.
 */
class EntryRecord implements ChainRecord {
  outputs: TopicMessage[] = [];
  values: unknown[] = [];
  rejection?: RecordRejection;
  visibleAt?: number = undefined;
  stagedSeq?: number = undefined;
  readonly trace: RecordTrace;

  constructor(
    protected readonly chain: Chain,
    protected readonly entry: Entry,
  ) {
    this.trace = { consumedBy: [], producedBy: [], skipped: false, timestamp: entry.timestamp, offset: entry.source.offset };
  }

  toDeadLetter(rejection: RecordRejection): Message {
    return this.chain.deadLetterOf(this.entry, rejection);
  }

  deadLetterRecord(rejection: RecordRejection): DeadLetter {
    return this.chain.deadLetterRecordOf(this.entry, rejection);
  }
}

/** A record of a chain with a reply route (request-reply, src/engine/replies.ts). */
class RepliedRecord extends EntryRecord {
  replies(): TopicMessage[] {
    return this.chain.repliesOf(this.entry);
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
  private readonly maxInputBytes: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;

  constructor(private readonly opts: ChainOptions) {
    const head = opts.stages[0].spec;
    this.name = opts.stages.map((s) => s.spec.name).join('+');
    this.maxInputBytes = head.limits?.maxMessageBytes ?? Number.POSITIVE_INFINITY;
    this.maxAttempts = head.errors?.maxAttempts ?? 3;
    this.backoffMs = head.errors?.backoffMs ?? 200;
  }

  get stages(): readonly ChainStage[] {
    return this.opts.stages;
  }

  /**
   * Processes a chunk of consumed records (in offset order). Per-record problems become dead
   * letters; a transient failure (a dependency down) throws, and the caller retries the chunk.
   */
  async process(topic: string, partition: number, messages: KafkaMessage[]): Promise<ChainRecord[]> {
    const head = this.opts.stages[0];
    const entries: Entry[] = messages.map((message) => {
      const consumed = { topic, partition, offset: Number(message.offset) };
      // Behind a repartition hop the record carries the original lineage and key: processors,
      // outputs and dead letters see the original record; `source` keeps the consumed position.
      const original = parseLineageHeader(lastHeader(message, LINEAGE_HEADER));
      const lineage = original ?? consumed;
      const key = original ? (lastHeader(message, KEY_HEADER) ?? null) : message.key;
      const timestamp = Number(message.timestamp);
      const entry: Entry = { message, lineage, key: key ?? null, headers: inheritedHeaders(message.headers), inputBytes: message.value, eventBytes: message.value, timestamp, record: undefined as unknown as ChainRecord, source: consumed };
      // One object per record, its methods on the prototype (no closures per record: the engine's
      // per-record garbage is what the collector marks while records wait for their commit).
      entry.record = this.opts.replies ? new RepliedRecord(this, entry) : new EntryRecord(this, entry);
      return entry;
    });

    let live: { entry: Entry; input: InputRecord<unknown> }[] = [];
    for (const entry of entries) {
      const { message } = entry;
      if (isDoneBy(message, head.spec.name)) {
        entry.record.trace.skipped = true;
        continue;
      }
      entry.record.trace.consumedBy.push(head.spec.name);
      const size = (message.value?.length ?? 0) + (message.key?.length ?? 0);
      if (size > this.maxInputBytes) {
        if (head.forwardRejected) {
          this.forward(entry, head);
          continue;
        }
        this.reject(entry, head, new RecordRejection('TOO_LARGE', `input record of ${size} bytes exceeds the stage's limits.maxMessageBytes (${this.maxInputBytes})`));
        continue;
      }
      const decoded = await this.decoderFor(topic).decode(message.value);
      if (decoded instanceof RecordRejection) {
        if (head.forwardRejected) this.forward(entry, head);
        else this.reject(entry, head, decoded);
        continue;
      }
      // Behind an earlier per-entity step: the processor sees the original event and the features so
      // far; dead letters carry the event's bytes (what a replay of the input would need).
      const carried = decoded instanceof CarriedEvent ? decoded : undefined;
      if (carried) entry.inputBytes = entry.eventBytes = carried.eventBytes;
      const value = carried ? carried.event : decoded;
      live.push({ entry, input: { value, key: entry.key, timestamp: entry.timestamp, lineage: entry.lineage, source: entry.source, headers: entry.headers, ...(carried ? { partial: carried.partial } : {}) } });
    }

    for (let i = 0; i < this.opts.stages.length && live.length > 0; i++) {
      const stage = this.opts.stages[i];
      if (i > 0) for (const l of live) l.entry.record.trace.consumedBy.push(stage.spec.name);
      if (stage.keyCheck) checkKeys(stage.keyCheck, live.map((l) => l.input));
      const results = await this.runStage(stage, live.map((l) => l.input));
      const downstream = this.opts.stages.slice(i + 1).map((s) => s.spec.name);
      const next: typeof live = [];
      results.forEach((result, j) => {
        const { entry, input } = live[j];
        if (result instanceof RecordRejection) {
          this.reject(entry, stage, result);
          return;
        }
        if (stage.encoder) {
          const message = this.encode(stage, result, entry, downstream);
          if (message instanceof RecordRejection) {
            this.reject(entry, stage, message);
            return;
          }
          entry.record.outputs.push({ topic: stage.spec.output.topic, message });
          entry.record.trace.producedBy.push(stage.spec.name);
          entry.inputBytes = message.value as Buffer;
        }
        entry.record.values.push(result.value);
        if (downstream.length > 0) next.push({ entry, input: { value: result.value, key: Buffer.from(result.key), timestamp: input.timestamp, lineage: input.lineage, source: input.source, headers: input.headers } });
      });
      live = next;
    }
    return entries.map((e) => e.record);
  }

  private decoderFor(topic: string): ValueDecoder<unknown> {
    if (topic === this.opts.stages[0].spec.input.topic) return this.opts.decoder;
    const d = this.opts.decoders?.[topic];
    if (!d) throw new Error(`chain ${this.name} has no decoder for topic ${topic}`);
    return d;
  }

  /** forwardRejected: the consumed record, unchanged, to the hop's topic (original key, lineage, timestamp). */
  private forward(entry: Entry, head: ChainStage): void {
    const headers = { ...entry.headers, ...originHeaders(entry.lineage, entry.key) };
    entry.record.outputs.push({ topic: head.spec.output.topic, message: { key: entry.key, value: entry.message.value, headers, timestamp: String(entry.timestamp) } });
    entry.record.trace.producedBy.push(head.spec.name);
  }

  private reject(entry: Entry, stage: ChainStage, rejection: RecordRejection): void {
    entry.record.rejection = rejection;
    entry.record.trace.rejectedBy = stage.spec.name;
  }

  private encode(stage: ChainStage, out: OutputRecord<unknown>, entry: Entry, downstream: string[]): Message | RecordRejection {
    let value: Buffer;
    if (stage.passthroughValue && entry.inputBytes) {
      value = entry.inputBytes;
    } else {
      if (stage.wrapsEvent && !entry.eventBytes) return new RecordRejection('PROCESSING_ERROR', 'no event bytes to carry to the next per-entity step');
      try {
        value = stage.encoder!.encodeWithId(stage.schemaId!, stage.wrapsEvent ? partialRecord(entry.eventBytes!, out.value as PartialValues) : out.value);
      } catch (err) {
        return new RecordRejection('PROCESSING_ERROR', `output does not match schema: ${(err as Error).message}`);
      }
    }
    const headers: Record<string, Buffer | string> = out.headers ? { ...entry.headers, ...out.headers } : { ...entry.headers };
    if (downstream.length > 0) headers[DONE_HEADER] = downstream.join(',');
    let timestamp = out.timestamp;
    if (stage.wrapsEvent) {
      // Like a repartition hop: the next step sees the original record (lineage, key, timestamp).
      Object.assign(headers, originHeaders(entry.lineage, entry.key));
      timestamp ??= entry.timestamp;
    }
    return { key: out.key, value, headers, ...(timestamp === undefined ? {} : { timestamp: String(timestamp) }) };
  }

  /**
   * Runs one stage over the chunk. Transient failures propagate (the chunk is retried for as long
   * as they last); other failures are retried `errors.maxAttempts` times with backoff, then the
   * records are processed one by one and those that still fail are rejected, so a poison message
   * never blocks its partition.
   */
  private async runStage(stage: ChainStage, inputs: InputRecord<unknown>[]): Promise<ProcessResult<unknown>[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await stage.processor.processBatch(inputs);
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
            out.push(...(await stage.processor.processBatch([r])));
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
  repliesOf(entry: Entry): TopicMessage[] {
    const target = replyTarget(entry.headers, this.opts.replies);
    if (!target) return [];
    const { record } = entry;
    // A repartition hop's output is the request itself, re-keyed, and a per-entity step's is a
    // partial record: internal, not worth a reply.
    const copies = record.outputs.filter((o) => !this.hopTopics.has(o.topic)).map((o) => replyCopy(o.message, target, this.stageOfTopic(o.topic), 'output'));
    if (record.rejection) copies.push(replyCopy(this.deadLetterOf(entry, record.rejection), target, record.trace.rejectedBy ?? this.opts.stages[0].spec.name, 'dead-letter'));
    return copies;
  }

  private get hopTopics(): Set<string> {
    return new Set(this.opts.stages.filter((s) => s.spec.processor === REPARTITION_PROCESSOR || s.wrapsEvent).map((s) => s.spec.output.topic));
  }

  private stageOfTopic(topic: string): string {
    return this.opts.stages.find((s) => s.spec.output.topic === topic)?.spec.name ?? this.opts.stages[0].spec.name;
  }

  /** @internal (EntryRecord) */
  deadLetterOf(entry: Entry, rejection: RecordRejection): Message {
    const { dlqEncoder, dlqSchemaId } = this.opts;
    if (!dlqEncoder || dlqSchemaId === undefined) throw new Error(`chain ${this.name} has no dead-letter topic`);
    const record = this.deadLetterRecordOf(entry, rejection);
    return { key: entry.key, value: dlqEncoder.encodeWithId(dlqSchemaId, record), headers: { ...entry.headers, [ERROR_KIND_HEADER]: rejection.kind } };
  }

  /** @internal (EntryRecord) */
  deadLetterRecordOf(entry: Entry, rejection: RecordRejection): DeadLetter {
    const max = this.opts.deadLetterMaxValueBytes;
    let value = entry.inputBytes;
    let note = '';
    if (value && value.length > max) {
      note = ` [original value of ${value.length} bytes truncated to ${max}]`;
      value = value.subarray(0, max);
    }
    const record: DeadLetter = {
      stage: entry.record.trace.rejectedBy ?? this.opts.stages[0].spec.name,
      errorKind: rejection.kind,
      errorMessage: rejection.message + note,
      lineage: entry.lineage,
      key: entry.key,
      value: value ?? null,
      failedTime: Date.now(),
    };
    return record;
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
