import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { ensureTopics } from '../kafka/admin';
import { createKafka } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { StageMetrics } from '../monitoring/metrics';
import { closeConsumerLag, registerConsumerLag, registerFeatureCache } from '../monitoring/stage-collectors';
import type { LoadedTopology, StageSpec } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { builtinProcessors } from './builtin';
import type { ProcessorRegistry } from './registry';
import { StageRunner } from './stage-runner';

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
}

/** Creates the topology's topics and registers every topic's value schema (idempotent). */
export async function provisionTopology(topology: LoadedTopology, kafka: Kafka, registry: SchemaRegistryClient, catalog = new SchemaCatalog(path.join(topology.baseDir, 'schemas'))): Promise<void> {
  await ensureTopics(kafka, topology.spec.topics);
  for (const t of topology.spec.topics) await registry.register(`${t.name}-value`, catalog.get(t.schema).text);
}

/** The stages of one topology running in this process. */
export class Pipeline {
  private constructor(
    readonly runners: StageRunner[],
    readonly metrics: StageMetrics,
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

    const runners: StageRunner[] = [];
    try {
      for (const stage of selected) {
        const def = processors.get(stage.processor);
        const groupId = `${options.groupPrefix ?? topology.spec.name}.${stage.name}`;
        const processor = await def.create(stage.config, { topology, stage, logger: createLogger(`processor.${def.name}`), redisUrl: endpoints.redisUrl, groupId, metricsRegistry: metrics.registry });
        runners.push(new StageRunner({ kafka, registry, catalog, topology, stage, processor, metrics, groupId }));
        const enricher = (processor as { enricher?: { stats: { cacheHits: number; cacheMisses: number } } }).enricher;
        if (enricher) registerFeatureCache(metrics.registry, stage.name, () => enricher.stats);
      }
      registerConsumerLag(metrics.registry, kafka, runners.map((r, i) => ({ stage: selected[i].name, groupId: r.groupId, topic: selected[i].input.topic })));
      await Promise.all(runners.map((r) => Promise.all([r.waitForAssignment(60000), r.start()])));
    } catch (err) {
      await Promise.allSettled(runners.map((r) => r.stop()));
      throw err;
    }
    log.info({ topology: topology.spec.name, stages: selected.map((s) => s.name) }, 'pipeline running');
    return new Pipeline(runners, metrics);
  }

  /** Ready when every stage of this process is running and holds partitions. */
  readiness(): { ready: boolean; checks: Record<string, unknown> } {
    const stages = this.runners.map((r) => r.health());
    return { ready: stages.length > 0 && stages.every((s) => s.ready), checks: { stages } };
  }

  /** Graceful: each stage finishes and commits its in-flight batch, then disconnects. */
  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
    await closeConsumerLag(this.metrics.registry);
    log.info('pipeline stopped');
  }
}

function selectStages(topology: LoadedTopology, names?: string[]): StageSpec[] {
  if (!names || names.length === 0) return topology.spec.stages;
  return names.map((n) => {
    const s = topology.spec.stages.find((x) => x.name === n);
    if (!s) throw new TributaryError(`no stage '${n}' in topology ${topology.spec.name} (stages: ${topology.spec.stages.map((x) => x.name).join(', ')})`);
    return s;
  });
}
