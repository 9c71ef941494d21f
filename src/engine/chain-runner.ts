import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { StageMetrics } from '../monitoring/metrics';
import type { StageSpec } from '../topology/spec';
import { createLogger, type Logger } from '../util/logger';
import type { Chain, ChainRecord } from './chain';
import { OffsetsOnlySink, PartitionTransactions, PipelinedTransactions, type DeliveryMode, type SinkRecord, type TopicLimits } from './commit-sink';
import { PartitionLane, type CommitPolicy, type LaneSink } from './lane';
import { SendGate } from './send-gate';
import { SharedTransactions, type Generation, type SharedGroup, type SharedTransactionCounters, type SharedTransactionsObserver } from './shared-transactions';
import { assertEosV2Patched, fetchStableCommit, fetchStableOffset, groupMetadataOf, type ConsumerGroupMetadata } from '../kafka/eos-v2';
import { StagingOrder } from './staging-order';
import { EAGER_COMMIT, EagerSink } from './eager-sink';

/** Gap between the two reads that must agree before a committed offset is trusted (see fetchCommitted). */
const STABLE_READ_GAP_MS = 150;

/** Counters a caller can read without Prometheus (demo summary, tests), per stage. */
export interface StageCounters {
  /** Records that entered the stage (committed). */
  consumed: number;
  /** Records the stage produced an output for (committed). */
  produced: number;
  deadLettered: number;
  /** Records skipped because a fused chain had already processed them for this stage. */
  skipped: number;
}

/** Counters of one runner (one consumer group). */
export interface RunnerCounters {
  commits: number;
  /** Times a partition was paused because its lane's queue was full (backpressure). */
  backpressurePauses: number;
  /** Lanes that found their transactional producer fenced by a newer owner (nothing of theirs was committed). */
  fencedLanes: number;
  /** Assignments that came while this runner was stopping (another member joined or left then): no lanes were built for them. */
  assignmentsWhileStopping: number;
}

/**
 * Commit defaults, chosen from the live bench (BENCHMARKS.md): a lane commits as soon as its
 * previous commit finished and at least `intervalMs` passed since that one started. Exactly-once
 * outputs become visible at commit, so commits are frequent; at-least-once outputs are sent as they
 * are processed (EagerSink) and a commit only records the input position, so it is rare.
 */
export const DEFAULT_COMMIT: Record<DeliveryMode, CommitPolicy> = {
  'exactly-once': { intervalMs: 10, maxRecords: 2000 },
  'at-least-once': { ...EAGER_COMMIT },
};

/**
 * Fetch defaults (BENCHMARKS.md item 15). Fetching is resolved early and loops at once, so with
 * kafkajs' minBytes 1 the broker answered every fetch with whatever had arrived — hundreds of fetch
 * requests a second of a few records each at 1,000 events/s, each a request for the broker and a
 * socket write and wake-up on both sides. Waiting up to 5 ms for 32 KiB cut the pipeline's CPU per
 * event by 4-6 % and lowered its p50 and p99 in paired runs at 1,000 and 4,000 events/s. 2 ms cost
 * more CPU than 5; 10 ms less CPU and a lower p50, but a higher p99 at 4,000/s. A topology's
 * `consumer.minBytes` / `consumer.maxWaitTimeMs` override them (minBytes 1: answer at once, as before).
 */
export const DEFAULT_FETCH = { minBytes: 32 * 1024, maxWaitTimeMs: 5 } as const;

/**
 * Fetch defaults of a chain reading a topic that an exactly-once repartition hop of the same
 * topology writes. A read_committed fetch sees such records only when the hop's transaction
 * commits, all at once, so answering at once costs one fetch per commit, not one per record; and
 * waiting for 32 KiB there held every hop commit's records (a few KiB at 1,000 events/s) for the
 * full maxWaitTimeMs on every event's path (BENCHMARKS.md item 17). The broker answers such a
 * waiting fetch as soon as a commit's markers make records readable, so a long wait costs no
 * latency; with the 5 ms of DEFAULT_FETCH half of this reader's fetches came back empty between
 * two commits (~100 requests/s at 1,000 events/s, BENCHMARKS.md item 43).
 */
export const TRANSACTIONAL_INPUT_FETCH = { minBytes: 1, maxWaitTimeMs: 100 } as const;

/**
 * How a runner's lanes write: a chain's outputs exactly once or at least once, or nothing but the
 * consumed offsets (`offsets-only`: consumers whose processor acts on Redis, metrics or a producer
 * of its own; its stages have no encoder).
 */
export type RunnerDelivery = DeliveryMode | 'offsets-only';

export interface ChainRunnerOptions {
  kafka: Kafka;
  chain: Chain;
  /** Consumer group; also the prefix of the transactional ids (`<group>.<topic>.<partition>`). */
  groupId: string;
  delivery: RunnerDelivery;
  /**
   * Topics the group reads (default: the head stage's input topic). Each partition of each topic has
   * its own lane; the chain needs a decoder for each (ChainOptions.decoders).
   */
  topics?: string[];
  commit: CommitPolicy;
  deadLetterTopic: string;
  limits: TopicLimits;
  metrics: StageMetrics;
  /** Records per chain call (default 500). */
  chunkSize?: number;
  /** Queued records per lane at which its partition's fetching pauses (default 4 x chunkSize). */
  highWater?: number;
  /** Called with the records of every commit once it is durable (counters of the caller's own). */
  onCommitted?: (records: readonly ChainRecord[]) => void;
  /** Called for every partition this runner sees a record of, before it is processed. */
  onRecordsSeen?: (partition: number, count: number) => void;
  /**
   * Exactly-once lanes send records as they are processed, several producers per lane taking turns
   * so that none waits behind its lane's commit, fetched records staged in timestamp order across
   * lanes (StagingOrder) and all sends of the runner through one SendGate (repartition hops: each
   * entity's write order = that order; see PipelinedTransactions).
   */
  pipelinedCommits?: boolean;
  /**
   * With pipelinedCommits: keep the processing order across entities too, not only per entity (the
   * SendGate's ordering key is the output topic, so no record overtakes another). The hops and steps
   * in front of a later per-entity step need it: that step's entity meets there across the earlier
   * entity's keys, so each internal partition must be written in processing (timestamp) order.
   */
  orderAcrossEntities?: boolean;
  /**
   * Exactly-once only: `per-partition` (default) gives each lane a transactional producer of its
   * own (PartitionTransactions); `shared` commits all lanes' batches in one transaction at a time
   * with the group generation (exactly-once v2, SharedTransactions); a repartition hop then writes
   * in processing order through the shared transactions (no pipelined producers, no SendGate).
   */
  transactions?: 'per-partition' | 'shared';
  /**
   * Shared transactions: this process's part of the transactional ids (default: random per start).
   * Stable across restarts, the lanes' first offset read waits for nothing the previous process left
   * open: warming up the producers aborts it.
   */
  instanceId?: string;
  /**
   * Shared transactions: the process's sink, shared with its other chains (one transaction per
   * interval for all of them; the caller closes it). Absent: the runner creates its own.
   */
  sharedSink?: SharedTransactions;
  /**
   * A repartition hop with `repartition.delivery: deduplicated`: no transactions; records are sent
   * as processed (timestamp order across lanes) through one idempotent producer and the input
   * offsets committed apart (EagerSink). Needs pipelinedCommits.
   */
  deduplicatedHop?: boolean;
  /**
   * Fetch defaults of this runner where the head stage's `consumer` settings leave them out
   * (default DEFAULT_FETCH). The chain behind a transactional repartition hop gets
   * TRANSACTIONAL_INPUT_FETCH.
   */
  fetch?: { minBytes?: number; maxWaitTimeMs?: number };
  /**
   * The input is written by a deduplicated hop: each lane skips the copies a restarted hop wrote
   * (LineageDedup) and commits its state with the offset. `onSkipped`: copies skipped (metrics).
   */
  dedupInput?: { onSkipped(count: number): void };
}

/**
 * Runs one chain under one consumer group: the fetch loop hands each partition's records to that
 * partition's lane and returns at once (offsets resolved early), so fetching never waits for
 * processing or commits; each lane processes and commits on its own (see lane.ts). Every group
 * join rebuilds the lanes: kafkajs resumes each partition from its committed offset after a join,
 * and each new lane re-takes its transactional id (fencing any previous owner) before processing.
 */
export class ChainRunner {
  readonly counters: RunnerCounters = { commits: 0, backpressurePauses: 0, fencedLanes: 0, assignmentsWhileStopping: 0 };
  readonly stageCounters = new Map<string, StageCounters>();
  private readonly log: Logger;
  private consumer: Consumer;
  /** Lanes by `laneKey(topic, partition)`. */
  private lanes = new Map<string, PartitionLane>();
  private retired: PartitionLane[] = [];
  private running = false;
  private stopping = false;
  private assignedPartitions = 0;
  private failingSince?: number;
  private lastError?: string;
  private lastErrorLog = 0;
  /** At-least-once delivery and deduplicated hops: records sent as processed, offsets committed apart. */
  private eagerSink?: EagerSink;
  private offsetsSink?: OffsetsOnlySink;
  private admin?: Promise<Admin>;
  private rejoinTimer?: NodeJS.Timeout;
  private readonly inputTopic: string;
  private readonly inputTopics: string[];
  private readonly head: StageSpec;
  /** Pipelined lanes: their sends, one at a time in processing order (see SendGate). */
  private sendGate?: SendGate<SinkRecord>;
  /** Pipelined lanes: fetched records staged in timestamp order across lanes (see StagingOrder). */
  private readonly stagingOrder?: StagingOrder;
  /** Shared transactions (exactly-once v2): the runner's one sink, and the generation its lanes commit for. */
  private readonly shared?: SharedTransactions;
  /** Whether this runner created (and closes) its shared sink. */
  private ownsShared = false;
  private sharedGroup?: SharedGroup;
  private generation?: Generation;
  /** The group generation of the last join (any delivery mode): a later join is a rebalance. */
  private joinedGeneration?: number;

  constructor(private readonly opts: ChainRunnerOptions) {
    this.head = opts.chain.stages[0].spec;
    this.inputTopic = this.head.input.topic;
    this.inputTopics = opts.topics ?? [this.inputTopic];
    this.log = createLogger('engine').child({ chain: opts.chain.name, group: opts.groupId });
    for (const s of opts.chain.stages) this.stageCounters.set(s.spec.name, { consumed: 0, produced: 0, deadLettered: 0, skipped: 0 });
    if (opts.deduplicatedHop && !opts.pipelinedCommits) throw new Error(`chain ${opts.chain.name}: a deduplicated hop stages records as processed (pipelinedCommits)`);
    if (opts.dedupInput && opts.pipelinedCommits) throw new Error(`chain ${opts.chain.name}: de-duplicating lanes cannot also stage in order across lanes`);
    if (opts.pipelinedCommits && (opts.delivery === 'exactly-once' || opts.deduplicatedHop)) this.stagingOrder = new StagingOrder();
    if (opts.transactions === 'shared' && opts.delivery === 'exactly-once' && !opts.deduplicatedHop) {
      assertEosV2Patched();
      this.ownsShared = opts.sharedSink === undefined;
      this.shared = opts.sharedSink ?? new SharedTransactions({ kafka: opts.kafka, groupId: opts.groupId, deadLetterTopic: opts.deadLetterTopic, limits: opts.limits, log: this.log, instanceId: opts.instanceId, commit: opts.commit, observer: sharedSinkObserver(opts.metrics, opts.groupId) });
      // Per-group metrics, every series from 0 (alerts see it).
      const m = opts.metrics;
      const labels = { chain: opts.chain.name, group: opts.groupId };
      m.sharedBatches.inc(labels, 0);
      m.sharedGenerationRefusals.inc(labels, 0);
      this.sharedGroup = this.shared.group(opts.groupId, {
        readStable: (topic, partition) => this.fetchStable(topic, partition),
        onFailure: (err) => this.onFailure(err, 'commit'),
        onHealthy: () => this.onHealthy(),
        onCommitted: (batches) => m.sharedBatches.inc(labels, batches),
        onRefused: () => m.sharedGenerationRefusals.inc(labels),
      });
    }
    this.consumer = this.createConsumer();
  }

  /** Shared transactions only: what the runner's shared sink did. */
  get sharedCounters(): SharedTransactionCounters | undefined {
    return this.shared?.counters;
  }

  /** Lanes this runner holds now (one per input partition of its current assignment; none for one that came while it stopped). */
  get lanesHeld(): number {
    return this.lanes.size;
  }

  get groupId(): string {
    return this.opts.groupId;
  }

  get chainName(): string {
    return this.opts.chain.name;
  }

  /** The stages this runner executes, in order. */
  get stageNames(): string[] {
    return this.opts.chain.stages.map((s) => s.spec.name);
  }

  /** What this runner's consumer waits for in a fetch: the head stage's `consumer` settings, else the runner's, else DEFAULT_FETCH. */
  fetchSettings(): { minBytes: number; maxWaitTimeMs: number } {
    const tuning = this.head.consumer ?? {};
    return {
      minBytes: tuning.minBytes ?? this.opts.fetch?.minBytes ?? DEFAULT_FETCH.minBytes,
      maxWaitTimeMs: tuning.maxWaitTimeMs ?? this.opts.fetch?.maxWaitTimeMs ?? DEFAULT_FETCH.maxWaitTimeMs,
    };
  }

  private createConsumer(): Consumer {
    const tuning = this.head.consumer ?? {};
    const fetch = this.fetchSettings();
    const consumer = this.opts.kafka.consumer({
      groupId: this.opts.groupId,
      sessionTimeout: tuning.sessionTimeoutMs ?? 30000,
      heartbeatInterval: tuning.heartbeatIntervalMs ?? 3000,
      maxBytesPerPartition: Math.min(tuning.maxBytesPerPartition ?? 1024 * 1024, this.head.limits?.maxBatchBytes ?? Number.POSITIVE_INFINITY),
      maxBytes: this.head.limits?.maxBatchBytes ?? tuning.maxBytes ?? 10 * 1024 * 1024,
      maxWaitTimeInMs: fetch.maxWaitTimeMs,
      minBytes: fetch.minBytes,
      readUncommitted: false,
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onJoin(payload.memberAssignment, groupMetadataOf(payload)));
    for (const event of [consumer.events.CRASH, consumer.events.DISCONNECT, consumer.events.STOP]) {
      consumer.on(event, () => (this.assignedPartitions = 0));
    }
    // Supervisor: a consumer kafkajs will not restart itself is restarted here while the chain runs.
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || !this.running || this.stopping) return;
      this.log.error({ err: payload.error.message }, 'consumer crashed without restart; restarting it');
      void this.restartConsumer();
    });
    return consumer;
  }

  /** Readiness: running, holding at least one partition, and neither processing nor commits failing. */
  health(): { stage: string; running: boolean; assignedPartitions: number; failingSinceMs?: number; lastError?: string; ready: boolean } {
    const failingSinceMs = this.failingSince === undefined ? undefined : Date.now() - this.failingSince;
    return {
      stage: this.opts.chain.name,
      running: this.running,
      assignedPartitions: this.assignedPartitions,
      ...(failingSinceMs === undefined ? {} : { failingSinceMs, lastError: this.lastError }),
      ready: this.running && this.assignedPartitions > 0 && failingSinceMs === undefined,
    };
  }

  async start(): Promise<void> {
    if (this.opts.deduplicatedHop || this.opts.delivery === 'at-least-once') {
      const role = this.opts.deduplicatedHop ? 'deduplicated hop' : 'at-least-once';
      this.eagerSink = new EagerSink({ kafka: this.opts.kafka, groupId: this.opts.groupId, deadLetterTopic: this.opts.deadLetterTopic, limits: this.opts.limits, log: this.log, consumer: () => this.consumer, role });
    }
    if (this.opts.delivery === 'offsets-only') this.offsetsSink = new OffsetsOnlySink(() => this.consumer);
    this.running = true;
    await this.subscribeAndRun();
    this.log.info({ input: this.inputTopics.join(','), outputs: this.opts.chain.stages.map((s) => s.spec.output.topic), delivery: this.opts.delivery, commit: this.opts.commit, fetch: this.fetchSettings(), ...(this.shared ? { transactions: 'shared', transactionalIds: this.shared.transactionalIds } : {}) }, 'chain started');
  }

  private async subscribeAndRun(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.inputTopics, fromBeginning: this.head.input.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.head.consumer?.partitionsConsumedConcurrently ?? 3,
      eachBatch: (payload) => this.handOver(payload),
    });
  }

  private async restartConsumer(): Promise<void> {
    for (let delay = 1000; this.running && !this.stopping; delay = Math.min(delay * 2, 30000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (!this.running || this.stopping) return;
      try {
        await this.consumer.disconnect().catch(() => undefined);
        this.consumer = this.createConsumer();
        await this.subscribeAndRun();
        this.log.info('consumer restarted');
        return;
      } catch (err) {
        this.log.error({ err: (err as Error).message, retryInMs: delay * 2 }, 'consumer restart failed');
      }
    }
  }

  /** The fetch loop's only job: queue the records in their lane and move on. */
  private async handOver({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    const lane = this.lanes.get(laneKey(batch.topic, batch.partition));
    if (batch.topic === this.inputTopic) this.opts.onRecordsSeen?.(batch.partition, batch.messages.length);
    lane?.enqueue(batch.messages);
    resolveOffset(batch.messages[batch.messages.length - 1].offset);
  }

  private onJoin(assignment: Record<string, number[]>, member?: ConsumerGroupMetadata): void {
    // Shared transactions commit for the generation the lanes are built in (checked at construction: kafkajs is patched).
    if (this.sharedGroup && member) this.generation = this.sharedGroup.join(member);
    // Every join after the first is a rebalance: scaling, a member gone, or this member having lost its
    // place (paused past its session timeout, a network split). kafkajs logs the last (a heartbeat
    // answered UNKNOWN_MEMBER_ID) at debug and rejoins; said here at info, so an operator sees it.
    if (member && this.joinedGeneration !== undefined) {
      this.log.info({ generation: member.generationId, previousGeneration: this.joinedGeneration, partitions: assignment[this.inputTopic] ?? [] }, "rejoined the group at a new generation: the previous generation's lanes drop what they had not committed");
    }
    if (member) this.joinedGeneration = member.generationId;
    const partitions = assignment[this.inputTopic] ?? [];
    this.assignedPartitions = this.inputTopics.reduce((n, t) => n + (assignment[t]?.length ?? 0), 0);
    if (!this.stopping) for (const s of this.opts.chain.stages) s.processor.onAssignment?.(assignment);
    const previous = this.lanes;
    this.lanes = new Map();
    const letGo = new Map<string, Promise<void>>();
    for (const [key, lane] of previous) {
      const done = lane.abandon();
      letGo.set(key, done);
      this.retired.push(lane);
      void done.then(() => (this.retired = this.retired.filter((l) => l !== lane)));
    }
    if (this.stopping) {
      // A rebalance while this member stops (another one joined or left at the same moment): it
      // leaves the group next, so the partitions go to the members that stay. Lanes built now would
      // take ownership through clients the stop is closing (the likely path of a commit failing on a
      // disconnected producer, logged as an error in a clean stop); none are built.
      this.counters.assignmentsWhileStopping += 1;
      this.log.debug({ partitions }, 'assignment while stopping: no lanes built');
      return;
    }
    for (const topic of this.inputTopics) {
      const mine = assignment[topic] ?? [];
      for (const p of mine) this.lanes.set(laneKey(topic, p), this.createLane(topic, p, letGo.get(laneKey(topic, p))));
      // A partition paused by a lane of the previous generation (backpressure, fencing) starts afresh.
      const paused = this.consumer.paused().find((t) => t.topic === topic)?.partitions.filter((p) => mine.includes(p)) ?? [];
      if (paused.length > 0) this.consumer.resume([{ topic, partitions: paused }]);
    }
    this.log.debug({ partitions }, 'assignment: lanes rebuilt');
    // How long the new owners waited to take their partitions (fencing, offsets held by a pending
    // transaction: a crashed predecessor's stalls this until it is aborted). Once per join.
    const lanes = this.lanes;
    const joinedAt = Date.now();
    void Promise.all([...lanes.values()].map((l) => l.whenReady())).then((ready) => {
      if (this.lanes === lanes && ready.every(Boolean)) this.log.info({ partitions: this.assignedPartitions, waitedMs: Date.now() - joinedAt }, 'lanes own their partitions');
    });
  }

  private createLane(topic: string, partition: number, after?: Promise<void>): PartitionLane {
    const sink = this.sinkFor(topic, partition);
    const lane: PartitionLane = new PartitionLane({
      topic,
      partition,
      chain: this.opts.chain,
      sink,
      commit: this.opts.commit,
      chunkSize: this.opts.chunkSize ?? 500,
      highWater: this.opts.highWater ?? 4 * (this.opts.chunkSize ?? 500),
      after,
      pause: () => {
        this.counters.backpressurePauses += 1;
        this.consumer.pause([{ topic, partitions: [partition] }]);
      },
      resume: () => this.consumer.resume([{ topic, partitions: [partition] }]),
      whileSaturated: () => this.whileSaturated(),
      onCommitted: (records, seconds) => this.onCommitted(records, seconds),
      onFenced: (err) => {
        // Shared transactions: joining a new generation refuses the previous generation's pending
        // batches at once, so a lane abandoned by that join reports fenced after its successor took
        // the partition; pausing the partition then would stall the successor.
        if (this.shared && this.lanes.get(laneKey(topic, partition)) !== lane) {
          this.log.debug({ topic, partition, err: err.message }, 'a lane of a previous generation was refused; its successor owns the partition');
          return;
        }
        this.onFenced(topic, partition, err);
      },
      onFailure: (err, what) => this.onFailure(err, what),
      onHealthy: () => this.onHealthy(),
      log: this.log,
      stagingOrder: this.stagingOrder,
      dedup: this.opts.dedupInput,
    });
    this.stagingOrder?.add(lane);
    return lane;
  }

  private sinkFor(topic: string, partition: number): LaneSink {
    const sink = this.baseSinkFor(topic, partition);
    if (this.opts.dedupInput) sink.committedWithMetadata = async () => fetchStableCommit(await this.adminClient(), this.opts.groupId, topic, partition, { timeoutMs: 60000 });
    return sink;
  }

  private baseSinkFor(topic: string, partition: number): LaneSink {
    if (this.eagerSink) return this.eagerSink.lane();
    if (this.offsetsSink) {
      const sink = this.offsetsSink;
      return { init: async () => null, commit: (b) => sink.commit(b), committed: async () => null, close: async () => undefined, exactlyOnce: false };
    }
    if (this.shared) {
      // Lanes are only built in onJoin, after the generation was taken from the join (patched kafkajs, checked at construction).
      if (!this.generation) throw new Error(`chain ${this.opts.chain.name}: shared transactions got a group join without the generation`);
      const shared = this.shared;
      const generation = this.generation;
      const stable = () => this.fetchStable(topic, partition);
      // A hop's records are numbered in processing order across lanes (StagingOrder calls stage in
      // that order); the shared transaction writes them in it. With commit.sendAsProcessed every
      // chain's records are staged: sent into the open transaction as they come.
      const stage = this.stagingOrder || shared.sendsAsProcessed ? (records: SinkRecord[]) => shared.stage(records) : undefined;
      // The pool is initialised before the first offset read (once per sink: warmUp is memoised):
      // with a stable instance id, InitProducerId aborts what a crashed predecessor left open on the
      // same ids, so require_stable answers at once instead of after the transaction timeout.
      const init = async () => {
        await shared.warmUp();
        return stable();
      };
      return { init, commit: (b) => shared.commit(b, generation), stage, coordinated: shared, committed: stable, close: async () => undefined, exactlyOnce: true };
    }
    const txnOptions = {
      kafka: this.opts.kafka,
      groupId: this.opts.groupId,
      deadLetterTopic: this.opts.deadLetterTopic,
      limits: this.opts.limits,
      log: this.log,
      topic,
      partition,
      fetchCommitted: (t: string, p: number) => this.fetchCommitted(t, p),
    };
    if (this.opts.pipelinedCommits) {
      this.sendGate ??= new SendGate(this.opts.orderAcrossEntities ? topicsKey : orderingKey);
      const txns = new PipelinedTransactions({ ...txnOptions, gate: this.sendGate });
      return { init: () => txns.init(), commit: (b) => txns.commit(b), stage: (r) => txns.stage(r), committed: () => this.fetchCommitted(topic, partition), close: () => txns.close(), exactlyOnce: true };
    }
    const txns = new PartitionTransactions(txnOptions);
    return { init: () => txns.init(), commit: (b) => txns.commit(b), committed: () => this.fetchCommitted(topic, partition), close: () => txns.close(), exactlyOnce: true };
  }

  /**
   * The committed offset, once it is stable. Right after InitProducerId completes a previous owner's
   * transaction, its offset commit is written but the group coordinator may not have applied it yet,
   * and kafkajs' OffsetFetch (v4) cannot ask for stable offsets (require_stable came with KIP-447):
   * a stale answer would make the new owner redo records already delivered. So the offset is read
   * until two reads STABLE_READ_GAP_MS apart agree.
   */
  private async fetchCommitted(topic: string, partition: number): Promise<string | null> {
    let previous = await this.readCommitted(topic, partition);
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, STABLE_READ_GAP_MS));
      const current = await this.readCommitted(topic, partition);
      if (current === previous) return current;
      previous = current;
    }
    return previous;
  }

  /** Shared transactions: the committed offset once no pending transaction holds it (OffsetFetch require_stable). */
  private async fetchStable(topic: string, partition: number): Promise<string | null> {
    return fetchStableOffset(await this.adminClient(), this.opts.groupId, topic, partition, { timeoutMs: 60000 });
  }

  private adminClient(): Promise<Admin> {
    this.admin ??= (async () => {
      const admin = this.opts.kafka.admin();
      await admin.connect();
      return admin;
    })();
    this.admin.catch(() => (this.admin = undefined));
    return this.admin;
  }

  private async readCommitted(topic: string, partition: number): Promise<string | null> {
    this.admin ??= (async () => {
      const admin = this.opts.kafka.admin();
      await admin.connect();
      return admin;
    })();
    this.admin.catch(() => (this.admin = undefined));
    const res = await (await this.admin).fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
    const entry = res.find((r) => r.topic === topic)?.partitions.find((p) => p.partition === partition);
    return entry && Number(entry.offset) >= 0 ? entry.offset : null;
  }

  private async whileSaturated(): Promise<void> {
    for (const s of this.opts.chain.stages) {
      const bp = s.processor.backpressure;
      while (bp?.saturated() && this.running) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([bp.whenDrained(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
        clearTimeout(timer);
      }
    }
  }

  private onCommitted(records: ChainRecord[], seconds: number): void {
    const { metrics } = this.opts;
    this.opts.onCommitted?.(records);
    this.counters.commits += 1;
    metrics.commitSeconds.observe({ chain: this.opts.chain.name }, seconds);
    metrics.commitRecords.observe({ chain: this.opts.chain.name }, records.length);
    const now = Date.now();
    const rejectedKinds = new Set<string>();
    // Per-stage counts of this commit, for the counters and the events in/out metrics alike.
    const consumed = new Map<string, number>();
    const produced = new Map<string, number>();
    for (const r of records) {
      const t = r.trace;
      if (t.skipped) this.stageCounters.get(this.head.name)!.skipped += 1;
      for (const s of t.consumedBy) consumed.set(s, (consumed.get(s) ?? 0) + 1);
      for (const s of t.producedBy) {
        produced.set(s, (produced.get(s) ?? 0) + 1);
        // Outputs are visible at commit, or — eager sinks — once acknowledged.
        metrics.endToEndSeconds.observe({ stage: s }, ((r.visibleAt ?? now) - t.timestamp) / 1000);
      }
      if (r.rejection) {
        const stage = t.rejectedBy ?? this.head.name;
        this.stageCounters.get(stage)!.deadLettered += 1;
        metrics.deadLettered.inc({ stage, kind: r.rejection.kind });
        rejectedKinds.add(r.rejection.kind);
      }
    }
    for (const s of this.opts.chain.stages) {
      const counters = this.stageCounters.get(s.spec.name)!;
      const c = consumed.get(s.spec.name) ?? 0;
      const o = produced.get(s.spec.name) ?? 0;
      counters.consumed += c;
      counters.produced += o;
      if (c > 0) metrics.eventsIn.inc({ stage: s.spec.name, topic: s.spec.input.topic }, c);
      if (o > 0) metrics.eventsOut.inc({ stage: s.spec.name, topic: s.spec.output.topic }, o);
    }
    metrics.batchSize.observe({ stage: this.head.name }, records.length);
    metrics.batchSeconds.observe({ stage: this.head.name }, seconds);
    if (rejectedKinds.size > 0) {
      const what = this.opts.delivery === 'offsets-only' ? 'rejected records (offsets-only consumer: skipped, not dead-lettered)' : 'dead-lettered records';
      this.log.warn({ count: records.filter((r) => r.rejection).length, kinds: [...rejectedKinds] }, what);
    }
  }

  /**
   * A dependency or the broker fails (real failures, unlike the retriable answers kafkajs retries
   * quietly): logged at ERROR when it starts and every 10 s while it lasts, "recovered" when over.
   */
  private onFailure(err: Error, what: 'process' | 'commit'): void {
    const now = Date.now();
    if (this.failingSince === undefined || now - this.lastErrorLog >= 10000) {
      this.lastErrorLog = now;
      this.log.error({ err: `${err.name}: ${err.message}`, failingForMs: this.failingSince === undefined ? 0 : now - this.failingSince }, what === 'process' ? 'processing is failing; retrying with backoff (nothing is dead-lettered for it)' : 'commits are failing; retrying with a fresh producer');
    }
    this.failingSince ??= now;
    this.lastError = `${err.name}: ${err.message}`;
    this.opts.metrics.batchErrors.inc({ stage: this.head.name, kind: `${what}:${err.name || 'Error'}` });
  }

  private onHealthy(): void {
    if (this.failingSince === undefined) return;
    this.log.info({ failedForMs: Date.now() - this.failingSince }, 'recovered');
    this.failingSince = undefined;
  }

  /**
   * A fenced lane means another instance owns its partition now: this one missed a rebalance (a
   * long pause). Its work is dropped; the group's next join (normally within a session timeout)
   * rebuilds the lanes. Should none come, the consumer is restarted to rejoin.
   */
  private onFenced(topic: string, partition: number, err: Error): void {
    this.counters.fencedLanes += 1;
    this.log.warn({ topic, partition, err: err.message }, 'fenced: another instance owns this partition now; nothing of it committed here');
    this.consumer.pause([{ topic, partitions: [partition] }]);
    if (this.rejoinTimer || this.stopping) return;
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = undefined;
      if ([...this.lanes.values()].some((l) => l.isFenced)) void this.restartConsumer();
    }, 2 * (this.head.consumer?.sessionTimeoutMs ?? 30000));
  }

  /** Resolves once the consumer has joined its group and got an assignment (or times out). */
  waitForAssignment(timeoutMs = 30000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.lanes.size > 0) return resolve();
      const timer = setTimeout(() => {
        off();
        reject(new Error(`chain ${this.opts.chain.name}: no partition assignment within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Resolves once every lane of the current assignment owns its partition (transactional ids taken, committed offset read). */
  async lanesReady(): Promise<void> {
    await Promise.all([...this.lanes.values()].map((l) => l.whenReady()));
  }

  /** Partition -> queued records (for tests and status). */
  queued(): Record<number, number> {
    return Object.fromEntries([...this.lanes].filter(([key]) => key.startsWith(`${this.inputTopic}\0`)).map(([key, l]) => [Number(key.slice(this.inputTopic.length + 1)), l.queued]));
  }

  /**
   * Graceful stop: fetching stops, every lane processes what it holds and commits it (also in
   * at-least-once mode, before the consumer stops: kafkajs skips commits of a stopping consumer),
   * then the consumer leaves the group.
   */
  async stop(): Promise<void> {
    if (!this.running || this.stopping) return;
    this.stopping = true;
    clearTimeout(this.rejoinTimer);
    if (this.lanes.size > 0) {
      const partitions = new Map<string, number[]>();
      for (const key of this.lanes.keys()) {
        const [topic, p] = key.split('\0');
        partitions.set(topic, [...(partitions.get(topic) ?? []), Number(p)]);
      }
      try {
        this.consumer.pause([...partitions].map(([topic, ps]) => ({ topic, partitions: ps })));
      } catch {
        // not running any more (crashed): nothing to pause
      }
    }
    await Promise.all([...this.lanes.values()].map((l) => l.drain()));
    await Promise.allSettled(this.retired.map((l) => l.abandon()));
    this.running = false;
    await this.consumer.disconnect().catch(() => undefined);
    await this.eagerSink?.close();
    if (this.ownsShared) await this.shared?.close();
    if (this.admin) await (await this.admin.catch(() => undefined))?.disconnect().catch(() => undefined);
    this.log.info({ counters: this.counters, stages: Object.fromEntries(this.stageCounters) }, 'chain stopped');
  }
}

/** A record's ordering key for the SendGate: its outputs' topics and keys (a repartition record: the entity). */
function orderingKey(r: SinkRecord): string {
  return r.outputs.map((o) => `${o.topic}\0${o.message.key == null ? '' : o.message.key.toString()}`).join('\n');
}

/** A record's ordering key when the order across entities matters too: its outputs' topics only. */
function topicsKey(r: SinkRecord): string {
  return r.outputs.map((o) => o.topic).join('\n');
}

/**
 * Transaction-level metrics of a shared sink, labelled by `sink`: its transactional-id prefix (the
 * first shared group of the process, or the runner's own group). Per-group batch and refusal
 * counts come from each runner's group hooks.
 */
export function sharedSinkObserver(metrics: StageMetrics, sink: string): SharedTransactionsObserver {
  const labels = { sink };
  metrics.sharedTransactions.inc(labels, 0);
  metrics.sharedConcurrentRetries.inc(labels, 0);
  metrics.sharedEagerFallbacks.inc(labels, 0);
  return {
    committed: (records, seconds) => {
      metrics.sharedTransactions.inc(labels);
      metrics.sharedRecords.observe(labels, records);
      metrics.sharedSeconds.observe(labels, seconds);
    },
    concurrentRetry: () => metrics.sharedConcurrentRetries.inc(labels),
    eagerFallback: () => metrics.sharedEagerFallbacks.inc(labels),
    readerWait: (seconds, caughtUp) => metrics.sharedReaderWaitSeconds.observe({ sink, outcome: caughtUp ? 'caught_up' : 'timed_out' }, seconds),
  };
}

/** Lanes are per input partition of each topic the group reads. */
function laneKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}
