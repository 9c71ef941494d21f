import type { Kafka } from 'kafkajs';
import { SchemaCatalog, topologySchemas } from '../kafka/avro-schemas';
import { ensureTopics, whileNotServed } from '../kafka/admin';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import { createKafka } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { StageMetrics } from '../monitoring/metrics';
import { closeConsumerLag, registerConsumerLag, registerFeatureCache } from '../monitoring/stage-collectors';
import type { LoadedTopology, StageSpec, TopicSpec } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { applyPipelineV8Flags, semiSpaceMiB } from '../util/node-flags';
import type { DeadLetter, PartialVector } from '../engine/records';
import { Chain, type ChainStage } from '../engine/chain';
import { ChainRunner, DEFAULT_COMMIT, sharedSinkObserver, TRANSACTIONAL_INPUT_FETCH, type StageCounters } from '../engine/chain-runner';
import type { CommitPolicy } from '../engine/lane';
import { SharedTransactions } from '../engine/shared-transactions';
import type { TopicLimits } from '../engine/commit-sink';
import { CutoverDrain, fastForward } from '../engine/cutover';
import { fusedEdges, planChains } from '../engine/plan';
import { checkInstanceId } from '../engine/instance-id';
import { readTopicLimits } from '../engine/topic-limits';
import { DEFAULT_REPLY_PARTITIONS, REPLY_RETENTION_MS, replyTopicName, type ReplyRoute } from '../engine/replies';
import { KeyMismatchReporter, REPARTITION_PROCESSOR, duplicatesSkipped, RepartitionPurger, checkRepartitionTopics, planRepartitions, purgedCounter, repartitionProcessor, type EffectiveTopology, type RepartitionEdge } from '../engine/repartition';
import { PartialVectorDecoder } from '../engine/partial-vector';
import { processorsFor } from './load-topology';
import type { Processor, ProcessorDefinition } from './processor';
import type { ProcessorRegistry } from './registry';

const log = createLogger('pipeline');

/** Where the pipeline's servers are. */
export interface PipelineEndpoints {
  brokers: string[];
  schemaRegistryUrl: string;
  redisUrl?: string;
}

export interface PipelineOptions {
  topology: LoadedTopology;
  endpoints: PipelineEndpoints;
  /** Run only these stages (one stage per process deployments); default all. */
  stages?: string[];
  /** Default: the built-ins plus the topology's plugins. */
  processors?: ProcessorRegistry;
  metrics?: StageMetrics;
  /** Consumer group prefix override (tests, backfills); default the topology name. */
  groupPrefix?: string;
  /**
   * Fuse consecutive stages of this process into one chain (default true): an event is extracted
   * and scored in memory and the intermediate topic is written as a side output in the same
   * transaction. False: every stage is its own consumer group and the topic is the hand-off.
   */
  fuse?: boolean;
  /**
   * Shared transactions (stages with `transactions: shared`): this process's part of the
   * transactional ids (default: random per start). Unique among live processes; the same id after
   * a restart lets the new process abort its predecessor's open transaction at once.
   */
  instanceId?: string;
  /**
   * Shared transactions: `process` (default) — every shared chain of this process (a repartition
   * hop and the chain reading it included) commits in one transaction per interval; `chain` — one
   * shared sink per chain (more transactions; for comparison).
   */
  sharedScope?: 'process' | 'chain';
  /**
   * At stop, move the split era's downstream groups to the end of the topics the fused chains wrote
   * (default true). Processes of one topology stopping at the same moment (`run --processes N`)
   * would each do it under the same transactional id and fence each other (harmless, but logged at
   * ERROR by the client): `run --processes` leaves it to its first worker.
   */
  fastForwardOnStop?: boolean;
}

/** Creates the topology's topics and registers every topic's value schema (idempotent). */
export async function provisionTopology(topology: LoadedTopology, kafka: Kafka, registry: SchemaRegistryClient, catalog = topologySchemas(topology)): Promise<void> {
  await ensureTopics(kafka, [...topology.spec.topics, replyTopicSpec(topology)]);
  for (const t of topology.spec.topics) await registry.register(`${t.name}-value`, catalog.get(t.schema).text);
}

/** The topology's reply topic (request-reply through the gateway, src/engine/replies.ts): created with its topics. */
export function replyTopicSpec(topology: LoadedTopology): TopicSpec {
  return { name: replyTopicName(topology.spec.name), partitions: DEFAULT_REPLY_PARTITIONS, schema: 'prediction', config: { 'retention.ms': String(REPLY_RETENTION_MS) } };
}

/** The reply topic and how many partitions it really has (it may have been created larger). */
export async function readReplyRoute(kafka: Kafka, topology: LoadedTopology): Promise<ReplyRoute> {
  const topic = replyTopicName(topology.spec.name);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const meta = await whileNotServed(`metadata of ${topic}`, () => admin.fetchTopicMetadata({ topics: [topic] }));
    return { topic, partitions: meta.topics[0].partitions.length };
  } finally {
    await admin.disconnect();
  }
}

/**
 * The topology as the engine runs it: repartition steps and topics inserted in front of the stages
 * that need their input keyed by an entity (explicit `partitionBy`, or implied by the processor).
 */
export function effectiveTopology(topology: LoadedTopology, processors: ProcessorRegistry = processorsFor(topology)): EffectiveTopology {
  return planRepartitions(
    topology,
    (stage) => processors.get(stage.processor).partitionKeys?.(stage.config, { topology, stage, logger: log }) ?? [],
    (stage) => processors.get(stage.processor).entitySteps === true,
  );
}

/** What building a chain needs, shared by the pipeline's chains and cut-over drains. */
interface BuildContext {
  options: PipelineOptions;
  /** The effective topology (with repartition steps). */
  topology: LoadedTopology;
  keyChecks: Map<string, string>;
  /** The repartition hops of the effective topology. */
  edges: RepartitionEdge[];
  keyMismatches: KeyMismatchReporter;
  processors: ProcessorRegistry;
  kafka: Kafka;
  registry: SchemaRegistryClient;
  catalog: SchemaCatalog;
  metrics: StageMetrics;
  limits: TopicLimits;
  dlq: { encoder: AvroEncoder<DeadLetter>; id: number };
  replies: ReplyRoute;
  /** The process's shared-transaction sink (created with the first chain that uses it). */
  shared?: SharedTransactions;
}

/** The stages of one topology running in this process, as chains of the stage engine. */
export class Pipeline {
  private constructor(
    readonly runners: ChainRunner[],
    readonly metrics: StageMetrics,
    private readonly processors: Processor[],
    private readonly drains: CutoverDrain[],
    private readonly fused: { groupId: string; topic: string }[],
    private readonly kafka: Kafka,
    /** Repartition hops whose reading stage runs in this process (their purgers run here). */
    readonly repartitions: RepartitionEdge[],
    private readonly purgers: RepartitionPurger[],
    /** Mismatched keys of `partitionBy: none` stages, counted. */
    readonly keyMismatches: KeyMismatchReporter,
    /** The process-wide shared-transaction sink, if any chain uses one. */
    readonly shared?: SharedTransactions,
  ) {}

  static async start(options: PipelineOptions): Promise<Pipeline> {
    // Before any record's code gets hot: V8 must not move the per-batch allocation sites to the old generation (node-flags.ts).
    const pretenuring = applyPipelineV8Flags();
    const { endpoints } = options;
    if (options.instanceId !== undefined) checkInstanceId(options.instanceId, 'instanceId');
    const processors = options.processors ?? processorsFor(options.topology);
    const metrics = options.metrics ?? new StageMetrics();
    const effective = effectiveTopology(options.topology, processors);
    const topology = effective.topology;
    const selected = selectStages(topology, options.stages);
    const kafka = createKafka({ clientId: topology.spec.kafka?.clientId ?? `tributary-${topology.spec.name}`, brokers: topology.spec.kafka?.brokers ?? endpoints.brokers });
    const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const catalog = topologySchemas(topology);
    await checkRepartitionTopics(kafka, effective.edges);
    await provisionTopology(topology, kafka, registry, catalog);
    const deadLetterTopic = topology.spec.deadLetter.topic;
    const replies = await readReplyRoute(kafka, topology);
    const limits = await readTopicLimits(kafka, [...selected.map((s) => s.output.topic), deadLetterTopic, replies.topic]);
    const dlqEncoder = new AvroEncoder<DeadLetter>(registry, catalog.get('dead-letter'), deadLetterTopic);
    const keyMismatches = new KeyMismatchReporter(metrics.registry, log);
    const ctx: BuildContext = { options, topology, keyChecks: effective.keyChecks, edges: effective.edges, keyMismatches, processors, kafka, registry, catalog, metrics, limits, dlq: { encoder: dlqEncoder, id: await dlqEncoder.id() }, replies };

    const defOf = (s: StageSpec) => definition(processors, s.processor);
    const plan = planChains(selected, { fuse: options.fuse ?? true, runsApart: (s) => defOf(s).runsApart === true, boundaries: new Set(effective.edges.map((e) => e.topic.name)) });
    const runners: ChainRunner[] = [];
    const created: Processor[] = [];
    const drains: CutoverDrain[] = [];
    try {
      for (const planned of plan) runners.push(await buildRunner(ctx, planned.stages, created));
      // Lag is the chain's group on its input; it is reported under the chain's first stage.
      registerConsumerLag(metrics.registry, kafka, runners.map((r, i) => ({ stage: plan[i].stages[0].name, groupId: r.groupId, topic: plan[i].stages[0].input.topic })));
      await Promise.all(runners.map((r) => Promise.all([r.waitForAssignment(60000), r.start()])));
      // Started means taking records: every lane owns its partition. Lanes that become ready at
      // different times would otherwise process their partitions' first records out of step (a
      // repartition hop would write one entity's first records out of order).
      // Bounded: a lane that cannot take its partition keeps retrying in the background (readiness says so).
      await waitAtMost(Promise.all(runners.map((r) => r.lanesReady())), 60000);
      for (const edge of fusedEdges(plan)) {
        const drain = await CutoverDrain.startIfNeeded({
          kafka,
          groupId: groupOf(options, edge.downstream),
          topic: edge.topic,
          log,
          makeRunner: async () => {
            const own: Processor[] = [];
            const runner = await buildRunner(ctx, [edge.downstream], own);
            return { runner, close: () => closeAll(own) };
          },
        });
        if (drain) drains.push(drain);
      }
    } catch (err) {
      await Promise.allSettled([...runners.map((r) => r.stop()), ...drains.map((d) => d.stop())]);
      await ctx.shared?.close();
      await closeAll(created);
      throw err;
    }
    // The groups moved at stop (none when another process of the topology does it: fastForwardOnStop false).
    const fused = options.fastForwardOnStop === false ? [] : fusedEdges(plan).map((e) => ({ groupId: groupOf(options, e.downstream), topic: e.topic }));
    const repartitions = effective.edges.filter((e) => selected.some((s) => s.name === e.stage));
    const purged = purgedCounter(metrics.registry);
    const purgers = repartitions.map((e) => new RepartitionPurger({ kafka, groupId: groupOf(options, selected.find((s) => s.name === e.stage)!), topic: e.topic.name, intervalMs: e.purgeIntervalMs, log, purged }));
    for (const p of purgers) p.start();
    log.info({ topology: topology.spec.name, chains: runners.map((r) => r.chainName), repartitions: repartitions.map((e) => ({ stage: e.stage, by: e.field, topic: e.topic.name })), v8MaxSemiSpaceMiB: semiSpaceMiB(), v8AllocationSitePretenuring: pretenuring }, 'pipeline running');
    return new Pipeline(runners, metrics, created, drains, fused, kafka, repartitions, purgers, keyMismatches, ctx.shared);
  }

  /** Committed counters of one stage (whichever chain runs it). */
  stageCounters(stage: string): StageCounters {
    for (const r of this.runners) {
      const c = r.stageCounters.get(stage);
      if (c) return c;
    }
    throw new TributaryError(`stage '${stage}' does not run in this pipeline`);
  }

  /** Resolves when every cut-over drain started by this pipeline has finished. */
  async cutoverDrained(): Promise<void> {
    await Promise.all(this.drains.map((d) => d.done));
  }

  /** Ready when every chain of this process is running and holds partitions; one check per stage (naming its chain). */
  readiness(): { ready: boolean; checks: Record<string, unknown> } {
    const stages = this.runners.flatMap((r) => {
      const health = r.health();
      return r.stageNames.map((stage) => ({ ...health, stage, chain: r.chainName }));
    });
    return { ready: stages.length > 0 && stages.every((s) => s.ready), checks: { stages } };
  }

  /** Graceful: each chain finishes and commits what it holds, then processors close. */
  /** Purges consumed repartition records now (also done every `repartition.purgeIntervalMs`); returns the records deleted. */
  async purgeRepartitions(): Promise<number> {
    let n = 0;
    for (const p of this.purgers) n += await p.purgeOnce();
    return n;
  }

  async stop(): Promise<void> {
    await Promise.all(this.purgers.map((p) => p.stop()));
    await Promise.all([...this.runners.map((r) => r.stop()), ...this.drains.map((d) => d.stop())]);
    await this.shared?.close();
    await closeAll(this.processors);
    // Nothing of the split era is left to drain: move the downstream groups past what they would skip.
    if (this.drains.every((d) => d.completed)) for (const f of this.fused) await fastForward(this.kafka, f.groupId, f.topic, log);
    await closeConsumerLag(this.metrics.registry);
    log.info('pipeline stopped');
  }
}

function groupOf(options: PipelineOptions, stage: StageSpec): string {
  return `${options.groupPrefix ?? options.topology.spec.name}.${stage.name}`;
}

async function buildRunner(ctx: BuildContext, stages: StageSpec[], created: Processor[]): Promise<ChainRunner> {
  const { options, processors, kafka, registry, catalog, metrics, topology } = ctx;
  const { endpoints } = options;
  const topicSchema = (name: string) => catalog.get(topology.spec.topics.find((t) => t.name === name)!.schema);
  const chainStages: ChainStage[] = [];
  // A deduplicated hop (no transactions) and the stage that reads its topic (skips what it wrote twice).
  const dedupHop = ctx.edges.some((e) => e.delivery === 'deduplicated' && e.step.name === stages[0].name);
  // The hop whose topic this chain reads, if any (a stage reads one topic).
  const hopIn = ctx.edges.find((e) => e.stage === stages[0].name);
  const dedupReader = hopIn?.delivery === 'deduplicated' ? hopIn : undefined;
  for (const stage of stages) {
    const def = definition(processors, stage.processor);
    // Processors keep their own stage's group name for state (streaming state, hot-swap control)
    // whether fused or not, so a cut-over does not move their state.
    const processor = await def.create(stage.config, { topology, stage, logger: createLogger(`processor.${def.name}`), redisUrl: endpoints.redisUrl, groupId: groupOf(options, stage), metricsRegistry: metrics.registry });
    created.push(processor);
    const encoder = new AvroEncoder<unknown>(registry, topicSchema(stage.output.topic), stage.output.topic);
    const checkField = ctx.keyChecks.get(stage.name);
    chainStages.push({
      spec: stage,
      processor,
      encoder,
      schemaId: await encoder.id(),
      passthroughValue: stage.processor === REPARTITION_PROCESSOR,
      forwardRejected: dedupHop && stage.processor === REPARTITION_PROCESSOR,
      wrapsEvent: wrapsEvent(stage),
      keyCheck: checkField ? { field: checkField, onKeyMismatch: (count, example) => ctx.keyMismatches.report(stage.name, checkField, count, example) } : undefined,
    });
    const enricher = (processor as { enricher?: { stats: { cacheHits: number; cacheMisses: number } } }).enricher;
    if (enricher) registerFeatureCache(metrics.registry, stage.name, () => enricher.stats);
  }
  const head = stages[0];
  const inputDecoder = new AvroDecoder(registry, topicSchema(head.input.topic).type);
  // Behind an earlier per-entity step the input is a partial record carrying the original event.
  const carried = head.entityStep && head.entityStep.index > 0 ? new PartialVectorDecoder(inputDecoder as AvroDecoder<PartialVector>, new AvroDecoder(registry, topicSchema(head.entityStep.eventTopic).type)) : undefined;
  const chain = new Chain({
    stages: chainStages,
    decoder: carried ?? inputDecoder,
    dlqEncoder: ctx.dlq.encoder,
    dlqSchemaId: ctx.dlq.id,
    deadLetterMaxValueBytes: 512 * 1024,
    replies: ctx.replies,
    log: createLogger('engine'),
  });
  // The deduplicated hop writes without transactions (its commits only record the input position)
  // and keeps the at-least-once default: the stage's `commit` is the stage's own.
  const delivery = dedupHop ? 'at-least-once' : (head.delivery ?? 'exactly-once');
  const commit = { ...DEFAULT_COMMIT[delivery], ...(dedupHop ? {} : (head.commit ?? {})) };
  const transactions = dedupHop ? undefined : transactionsOf(head);
  // A stage that runs apart (a shadow) commits through a sink of its own: its backlog or a slow
  // candidate model never enlarges or delays the live chains' transactions.
  const apart = definition(processors, head.processor).runsApart === true;
  const shared = transactions === 'shared' && !apart ? sharedSinkOf(ctx, groupOf(options, head), commit) : undefined;
  return new ChainRunner({
    kafka,
    chain,
    groupId: groupOf(options, head),
    delivery,
    commit,
    deadLetterTopic: topology.spec.deadLetter.topic,
    limits: ctx.limits,
    metrics,
    // A repartition hop (or a per-entity step writing partial records keyed by the next entity)
    // writes records as they are processed, each entity in processing order (one entity's records
    // from several input partitions meet in one repartition partition).
    pipelinedCommits: head.processor === REPARTITION_PROCESSOR || wrapsEvent(head),
    // In front of a later per-entity step, each internal partition in processing order across entities.
    orderAcrossEntities: wrapsEvent(head) || (head.processor === REPARTITION_PROCESSOR && topology.spec.stages.some((s) => s.input.topic === head.output.topic && s.entityStep !== undefined && s.entityStep.index < s.entityStep.entities.length - 1)),
    transactions,
    instanceId: options.instanceId,
    sharedSink: shared,
    deduplicatedHop: dedupHop,
    dedupInput: dedupReader ? skippedCopies(duplicatesSkipped(metrics.registry), dedupReader.topic.name) : undefined,
    // Behind an exactly-once hop the input arrives a transaction at a time: fetch it at once.
    fetch: hopIn && !dedupReader ? TRANSACTIONAL_INPUT_FETCH : undefined,
  });
}

/** Counts the copies a de-duplicating reader of `topic` skips. */
function skippedCopies(counter: ReturnType<typeof duplicatesSkipped>, topic: string): { onSkipped(count: number): void } {
  return { onSkipped: (count) => counter.inc({ topic }, count) };
}

/**
 * How an exactly-once stage commits: its `transactions`, default `shared` (exactly-once v2: one
 * transaction per interval for the process — 3x lower latency than per-partition transactions in
 * BENCHMARKS live-quick-4); undefined for at-least-once stages.
 */
export function transactionsOf(stage: StageSpec): 'per-partition' | 'shared' | undefined {
  if ((stage.delivery ?? 'exactly-once') !== 'exactly-once') return undefined;
  return stage.transactions ?? 'shared';
}

/**
 * The process's shared-transaction sink: created with the first chain that uses one (its group is
 * the transactional ids' prefix, unique per deployment), committing at the shortest interval any
 * of its chains asks for. `sharedScope: chain`: undefined (each runner makes its own).
 */
function sharedSinkOf(ctx: BuildContext, groupId: string, commit: CommitPolicy): SharedTransactions | undefined {
  if (ctx.options.sharedScope === 'chain') return undefined;
  if (ctx.shared) {
    ctx.shared.tighten(commit);
    return ctx.shared;
  }
  ctx.shared = new SharedTransactions({ kafka: ctx.kafka, groupId, idPrefix: groupId, deadLetterTopic: ctx.topology.spec.deadLetter.topic, limits: ctx.limits, log: createLogger('engine').child({ shared: groupId }), instanceId: ctx.options.instanceId, commit: { ...commit }, observer: sharedSinkObserver(ctx.metrics, groupId) });
  return ctx.shared;
}

function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

async function closeAll(processors: Processor[]): Promise<void> {
  await Promise.allSettled(processors.map((p) => p.close()));
}

/** The processor definition of a stage, the internal repartition step included. */
function definition(processors: ProcessorRegistry, name: string): ProcessorDefinition<unknown> {
  return name === REPARTITION_PROCESSOR ? (repartitionProcessor as ProcessorDefinition<unknown>) : processors.get(name);
}

/** A per-entity step before the last: it writes partial records keyed by the next entity. */
function wrapsEvent(stage: StageSpec): boolean {
  return stage.entityStep !== undefined && stage.entityStep.index < stage.entityStep.entities.length - 1;
}

/** The stages to run; selecting a stage selects its internal steps too (repartition hop, per-entity steps: they feed nothing else). */
function selectStages(topology: LoadedTopology, names?: string[]): StageSpec[] {
  if (!names || names.length === 0) return topology.spec.stages;
  const wanted = new Set<string>();
  const user = topology.spec.stages.filter((x) => x.internalOf === undefined);
  for (const n of names) {
    if (!user.some((x) => x.name === n)) throw new TributaryError(`no stage '${n}' in topology ${topology.spec.name} (stages: ${user.map((x) => x.name).join(', ')})`);
    wanted.add(n);
    for (const x of topology.spec.stages) if (x.internalOf === n) wanted.add(x.name);
  }
  return topology.spec.stages.filter((s) => wanted.has(s.name));
}
