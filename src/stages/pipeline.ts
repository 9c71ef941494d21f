import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { ensureTopics } from '../kafka/admin';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import { createKafka } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { StageMetrics } from '../monitoring/metrics';
import { closeConsumerLag, registerConsumerLag, registerFeatureCache } from '../monitoring/stage-collectors';
import type { LoadedTopology, StageSpec, TopicSpec } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import type { DeadLetter } from '../client/generated/avro-types';
import { Chain, type ChainStage } from '../engine/chain';
import { ChainRunner, DEFAULT_COMMIT, type StageCounters } from '../engine/chain-runner';
import type { TopicLimits } from '../engine/commit-sink';
import { CutoverDrain, fastForward } from '../engine/cutover';
import { fusedEdges, planChains } from '../engine/plan';
import { readTopicLimits } from '../engine/topic-limits';
import { DEFAULT_REPLY_PARTITIONS, REPLY_RETENTION_MS, replyTopicName, type ReplyRoute } from '../engine/replies';
import { builtinProcessors } from './builtin';
import type { Processor } from './processor';
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
}

/** Creates the topology's topics and registers every topic's value schema (idempotent). */
export async function provisionTopology(topology: LoadedTopology, kafka: Kafka, registry: SchemaRegistryClient, catalog = new SchemaCatalog(path.join(topology.baseDir, 'schemas'))): Promise<void> {
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
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return { topic, partitions: meta.topics[0].partitions.length };
  } finally {
    await admin.disconnect();
  }
}

/** What building a chain needs, shared by the pipeline's chains and cut-over drains. */
interface BuildContext {
  options: PipelineOptions;
  processors: ProcessorRegistry;
  kafka: Kafka;
  registry: SchemaRegistryClient;
  catalog: SchemaCatalog;
  metrics: StageMetrics;
  limits: TopicLimits;
  dlq: { encoder: AvroEncoder<DeadLetter>; id: number };
  replies: ReplyRoute;
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
  ) {}

  static async start(options: PipelineOptions): Promise<Pipeline> {
    const { topology, endpoints } = options;
    const processors = options.processors ?? builtinProcessors();
    const metrics = options.metrics ?? new StageMetrics();
    const selected = selectStages(topology, options.stages);
    const kafka = createKafka({ clientId: topology.spec.kafka?.clientId ?? `tributary-${topology.spec.name}`, brokers: topology.spec.kafka?.brokers ?? endpoints.brokers });
    const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const catalog = new SchemaCatalog(path.join(topology.baseDir, 'schemas'));
    await provisionTopology(topology, kafka, registry, catalog);
    const deadLetterTopic = topology.spec.deadLetter.topic;
    const replies = await readReplyRoute(kafka, topology);
    const limits = await readTopicLimits(kafka, [...selected.map((s) => s.output.topic), deadLetterTopic, replies.topic]);
    const dlqEncoder = new AvroEncoder<DeadLetter>(registry, catalog.get('dead-letter'), deadLetterTopic);
    const ctx: BuildContext = { options, processors, kafka, registry, catalog, metrics, limits, dlq: { encoder: dlqEncoder, id: await dlqEncoder.id() }, replies };

    const plan = planChains(selected, { fuse: options.fuse ?? true, runsApart: (s) => processors.get(s.processor).runsApart === true });
    const runners: ChainRunner[] = [];
    const created: Processor[] = [];
    const drains: CutoverDrain[] = [];
    try {
      for (const planned of plan) runners.push(await buildRunner(ctx, planned.stages, created));
      // Lag is the chain's group on its input; it is reported under the chain's first stage.
      registerConsumerLag(metrics.registry, kafka, runners.map((r, i) => ({ stage: plan[i].stages[0].name, groupId: r.groupId, topic: plan[i].stages[0].input.topic })));
      await Promise.all(runners.map((r) => Promise.all([r.waitForAssignment(60000), r.start()])));
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
      await closeAll(created);
      throw err;
    }
    const fused = fusedEdges(plan).map((e) => ({ groupId: groupOf(options, e.downstream), topic: e.topic }));
    log.info({ topology: topology.spec.name, chains: runners.map((r) => r.chainName) }, 'pipeline running');
    return new Pipeline(runners, metrics, created, drains, fused, kafka);
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
  async stop(): Promise<void> {
    await Promise.all([...this.runners.map((r) => r.stop()), ...this.drains.map((d) => d.stop())]);
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
  const { options, processors, kafka, registry, catalog, metrics } = ctx;
  const { topology, endpoints } = options;
  const topicSchema = (name: string) => catalog.get(topology.spec.topics.find((t) => t.name === name)!.schema);
  const chainStages: ChainStage[] = [];
  for (const stage of stages) {
    const def = processors.get(stage.processor);
    // Processors keep their own stage's group name for state (streaming state, hot-swap control)
    // whether fused or not, so a cut-over does not move their state.
    const processor = await def.create(stage.config, { topology, stage, logger: createLogger(`processor.${def.name}`), redisUrl: endpoints.redisUrl, groupId: groupOf(options, stage), metricsRegistry: metrics.registry });
    created.push(processor);
    const encoder = new AvroEncoder<unknown>(registry, topicSchema(stage.output.topic), stage.output.topic);
    chainStages.push({ spec: stage, processor, encoder, schemaId: await encoder.id() });
    const enricher = (processor as { enricher?: { stats: { cacheHits: number; cacheMisses: number } } }).enricher;
    if (enricher) registerFeatureCache(metrics.registry, stage.name, () => enricher.stats);
  }
  const head = stages[0];
  const chain = new Chain({
    stages: chainStages,
    decoder: new AvroDecoder(registry, topicSchema(head.input.topic).type),
    dlqEncoder: ctx.dlq.encoder,
    dlqSchemaId: ctx.dlq.id,
    deadLetterMaxValueBytes: 512 * 1024,
    replies: ctx.replies,
    log: createLogger('engine'),
  });
  const delivery = head.delivery ?? 'exactly-once';
  return new ChainRunner({
    kafka,
    chain,
    groupId: groupOf(options, head),
    delivery,
    commit: { ...DEFAULT_COMMIT[delivery], ...(head.commit ?? {}) },
    deadLetterTopic: topology.spec.deadLetter.topic,
    limits: ctx.limits,
    metrics,
  });
}

async function closeAll(processors: Processor[]): Promise<void> {
  await Promise.allSettled(processors.map((p) => p.close()));
}

function selectStages(topology: LoadedTopology, names?: string[]): StageSpec[] {
  if (!names || names.length === 0) return topology.spec.stages;
  return names.map((n) => {
    const s = topology.spec.stages.find((x) => x.name === n);
    if (!s) throw new TributaryError(`no stage '${n}' in topology ${topology.spec.name} (stages: ${topology.spec.stages.map((x) => x.name).join(', ')})`);
    return s;
  });
}
