/**
 * The topologies the bench runs, all derived from the demo topology file of the checkout under test
 * (so they follow it when it changes), each on fresh topics `<name>.<suffix>` and a fresh topology
 * name (hence fresh consumer groups, transactional ids and streaming-state namespaces):
 *
 * - `default`: the demo topology as written (model 2; batch + streaming feature sets).
 * - `nostream`: the demo topology with the streaming (`windowed_aggregation`) sets dropped from the
 *   extraction stage's `features` (and so without the repartition hop they imply), scored by the
 *   demo model's own graph with those inputs held at the sets' declared defaults
 *   (`nostream-model.ts`: `fraud-nostream@2`, generated outside the checkout). A checkout whose
 *   loader still refuses it is reported as not servable.
 * - `stateless`: extraction with the base feature set only (no Redis at all), scored by model 1.
 * - `bycard`: the demo topology with `partitionBy: none` on the extraction stage, fed by a driver
 *   that keys each event by its `cardId` (the deployment the README names for producers that key by
 *   the entity): the same work without the repartition hop, so the pair default/bycard measures
 *   what the hop costs.
 * - `hop`: the stateless topology with `partitionBy: cardId` on the extraction stage: model 1's work
 *   behind a repartition hop, the counterpart of the Kafka Streams peer run with `--repartition-by
 *   cardId` (`kstreams-tuned-hop`), so the pairs stateless/hop on both sides measure each one's hop.
 * - `dedup`: the demo topology with `repartition.delivery: deduplicated` on the extraction stage:
 *   the same work with the hop written as processed (no transaction of its own on the event's path)
 *   and its copies skipped by lineage, so the pair default/dedup measures the two kinds of hop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { parse } from 'yaml';
import { writeNostreamModel } from './nostream-model';
import type { LoadedTopology, StageSpec, TopologySpec } from '../../src/topology/spec';
import type { TributaryCode } from './tributary-code';

export const TOPOLOGY_FILE = 'topologies/fraud-detection.yaml';
export type Variant = 'default' | 'nostream' | 'stateless' | 'bycard' | 'hop' | 'dedup';

/** The field of the input event the bench's driver keys records by for a variant. */
export function driverKeyField(variant: Variant): 'transactionId' | 'cardId' {
  return variant === 'bycard' ? 'cardId' : 'transactionId';
}
export type Delivery = 'exactly-once' | 'at-least-once';
/** A stage's `commit` as the bench sets it on every stage of a variant. */
export type CommitSettings = { intervalMs?: number; maxRecords?: number; readerWaitMs?: number };

export interface VariantOptions {
  variant: Variant;
  suffix: string;
  partitions: number;
  delivery?: Delivery;
  /** Per-stage `commit` (engines that know it); omitted when undefined. */
  commit?: CommitSettings;
  /** Exactly-once transactions per stage (`shared`: exactly-once v2); omitted when undefined. */
  transactions?: 'per-partition' | 'shared';
  /** The scoring stage's `pool.workers` (0: the model runs on the pipeline's own thread); undefined: the topology's. */
  poolWorkers?: number;
}

interface FeatureSetLike {
  name: string;
  kind: string;
}

/** The raw (unvalidated) spec of a variant, renamed onto suffixed topics. */
export function variantSpec(root: string, o: VariantOptions): TopologySpec {
  const spec = parse(fs.readFileSync(path.join(root, TOPOLOGY_FILE), 'utf8')) as TopologySpec;
  const extract = spec.stages.find((s) => s.processor === 'feature_extraction');
  const score = spec.stages.find((s) => s.processor === 'onnx_inference');
  if (!extract || !score) throw new Error(`${TOPOLOGY_FILE}: expected a feature_extraction and an onnx_inference stage`);
  const sets = (spec.features?.sets ?? []) as FeatureSetLike[];
  const kindOf = (n: string) => sets.find((s) => s.name === n)?.kind;
  const cfg = extract.config as { features?: string[]; vector?: unknown; featureSet?: string };
  if (o.variant === 'nostream') {
    const dropped = (cfg.features ?? []).filter((n) => kindOf(n) === 'windowed_aggregation');
    cfg.features = (cfg.features ?? []).filter((n) => kindOf(n) !== 'windowed_aggregation');
    const heldAt: Record<string, number> = {};
    for (const set of sets as Array<FeatureSetLike & { fields?: Array<{ name: string; default?: number }> }>) {
      if (dropped.includes(set.name)) for (const f of set.fields ?? []) heldAt[f.name] = f.default ?? 0;
    }
    const model = (score.config as { model: { repository: string; name: string; version: string } }).model;
    const repository = path.join(os.tmpdir(), 'tributary-bench-models', crypto.createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 12));
    const narrowed = writeNostreamModel({ modelDir: path.resolve(root, model.repository, model.name, model.version), heldAt, repository });
    (score.config as { model: unknown }).model = { repository: narrowed.repository, name: narrowed.name, version: narrowed.version };
  } else if (o.variant === 'bycard') {
    (extract as { partitionBy?: string }).partitionBy = 'none';
  } else if (o.variant === 'dedup') {
    const own = extract as { repartition?: Record<string, unknown> };
    own.repartition = { ...own.repartition, delivery: 'deduplicated' };
  } else if (o.variant === 'stateless' || o.variant === 'hop') {
    if (o.variant === 'hop') (extract as { partitionBy?: string }).partitionBy = 'cardId';
    delete cfg.features;
    delete cfg.vector;
    (score.config as { model: { version: string } }).model.version = '1';
    delete spec.features;
  }
  if (o.poolWorkers !== undefined) {
    const scoring = score.config as { pool?: Record<string, unknown> };
    scoring.pool = { ...scoring.pool, workers: o.poolWorkers };
  }
  const rename = (t: string) => `${t}.${o.suffix}`;
  spec.name = `${spec.name}-${o.suffix}`;
  for (const t of spec.topics) {
    const dlq = t.name === spec.deadLetter.topic;
    t.name = rename(t.name);
    if (!dlq) t.partitions = o.partitions;
  }
  spec.deadLetter.topic = rename(spec.deadLetter.topic);
  for (const s of spec.stages as Array<StageSpec & { commit?: unknown }>) {
    s.input.topic = rename(s.input.topic);
    s.output.topic = rename(s.output.topic);
    if (o.delivery) s.delivery = o.delivery;
    if (o.commit) s.commit = o.commit;
    if (o.transactions) (s as { transactions?: string }).transactions = o.transactions;
  }
  return spec;
}

/** Validates a variant with the checkout's own loader; throws the loader's error when it refuses. */
export function loadVariant(code: TributaryCode, o: VariantOptions): LoadedTopology {
  const file = path.join(code.ref.root, TOPOLOGY_FILE);
  return code.loader.validateTopology(variantSpec(code.ref.root, o), file, { registry: code.builtin.builtinProcessors(), baseDir: code.ref.root });
}

export interface TopologyFacts {
  stages: string[];
  /** Topics between stages (each costs one more produce + consume hop when stages are not fused). */
  intermediateTopics: string[];
  inputTopic: string;
  predictionTopic: string;
  deadLetterTopic: string;
  baseFeatureSet: string;
  featureSets: Array<{ name: string; kind: string }>;
  model: string;
  featureCount: number;
  delivery: Delivery;
  /** The extraction stage's `partitionBy` as written (undefined: implied by its streaming sets). */
  partitionBy?: string;
}

/** What a loaded topology does, read from its spec (used to name the differences between systems). */
export function topologyFacts(t: LoadedTopology): TopologyFacts {
  const stages = t.spec.stages;
  const extract = stages.find((s) => s.processor === 'feature_extraction')!;
  const score = stages.find((s) => s.processor === 'onnx_inference')!;
  const ecfg = extract.config as { featureSet: string; features?: string[] };
  const model = (score.config as { model: { name: string; version: string; repository: string } }).model;
  const sets = (t.spec.features?.sets ?? []) as FeatureSetLike[];
  let featureCount = NaN;
  try {
    const card = JSON.parse(fs.readFileSync(path.join(t.baseDir, model.repository, model.name, model.version, 'model.json'), 'utf8')) as { features: { names: string[] } };
    featureCount = card.features.names.length;
  } catch {
    // reported as NaN: the card is not where the topology says (the loader would have refused it)
  }
  return {
    stages: stages.map((s) => s.name),
    intermediateTopics: stages.slice(0, -1).map((s) => s.output.topic),
    inputTopic: stages[0].input.topic,
    predictionTopic: stages[stages.length - 1].output.topic,
    deadLetterTopic: t.spec.deadLetter.topic,
    baseFeatureSet: ecfg.featureSet,
    featureSets: (ecfg.features ?? []).map((n) => ({ name: n, kind: sets.find((s) => s.name === n)?.kind ?? '?' })),
    model: `${model.name}@${model.version}`,
    featureCount,
    delivery: (extract.delivery ?? 'exactly-once') as Delivery,
    partitionBy: (extract as { partitionBy?: string }).partitionBy,
  };
}
