/**
 * Backfill / batch prediction: replays a bounded range of a topology's input topic through the
 * topology's own extraction and scoring processors, in-process (no intermediate topics), and writes
 * the predictions to a topic or a file. The two stages run as one chain of the stage engine, fed by
 * its bounded range source (src/engine/range-runner.ts); the job's sinks are the lanes' sinks.
 *
 * - The range is resolved to [start, end) offsets per partition once, when the job is created, and
 *   saved with the job (plan.json): a resumed job ends where it was planned to, however much was
 *   appended since.
 * - Its own consumer groups (a throwaway reader group; offsets in `checkpointGroup`) and its own
 *   streaming-feature namespace (`backfill.<job>` by default; refusing the live one), reset when
 *   the job is created. Features are computed as of each event's time by the same Lua state the
 *   live stage uses; records are applied per partition in offset order, like the live stage.
 * - Point-in-time identity with a live run holds when the live run processed the same records from
 *   an empty entity state: the range starts at the beginning of the stream, or `--warmup-from`
 *   replays the records before the range (state only, no output) from where the live state began;
 *   the input topic is keyed by the streaming entity (else cross-partition order differs); and the
 *   batch feature sets have the version the live run read (recorded in each prediction).
 * - Resumable: see sinks.ts (topic output: transactions; file output: append + atomic checkpoint).
 *   A replayed batch gets the same vectors (the state script skips offsets it already applied).
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import type { DeadLetter, FeatureVector, Prediction } from '../client/generated/avro-types';
import { FencedError, StreamingState } from '../features/streaming';
import { ensureTopics } from '../kafka/admin';
import { topologySchemas } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import { createKafka } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { resolveEndpoints } from '../util/endpoints';
import { extractionVector, featureExtraction, type ExtractionConfig } from '../stages/extraction';
import { onnxInference, type InferenceConfig } from '../stages/inference';
import type { PipelineEndpoints } from '../stages/pipeline';
import type { Processor, ProcessorContext } from '../stages/processor';
import { topicSchema } from '../stages/load-topology';
import { Chain, type ChainRecord } from '../engine/chain';
import type { CommitBatch } from '../engine/commit-sink';
import { RANGE_COMMIT, RangeRunner } from '../engine/range-runner';
import { topicMaxMessageBytes } from '../engine/topic-limits';
import type { LoadedTopology, StageSpec } from '../topology/spec';
import { ConfigError, TransientError, TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { connectRedisClient } from '../util/redis';
import { evaluateFeedback, type FeedbackReport } from './feedback';
import { JobStore, defaultStateDir, emptyCounters, type BackfillPlan, type Counters, type OutputTarget } from './job-store';
import { parseRangeSpec, resolveRanges, type PartitionRange } from './range';
import { FileSink, TopicSink, type OutputRow, type Sink, type SinkBatch } from './sinks';

const log = createLogger('backfill');

export interface BackfillOptions {
  topology: LoadedTopology;
  endpoints?: PipelineEndpoints;
  from: string;
  to?: string;
  warmupFrom?: string;
  /** `topic:NAME`, `file:PATH`, or a bare value: a path ending in .jsonl/.ndjson/.json/.csv or holding a '/' is a file, else a topic. */
  output: string;
  format?: 'jsonl' | 'csv';
  /** Job name (state dir entry); default derived from the topology, range, output and model. */
  job?: string;
  stateDir?: string;
  /** Model version to score with (default: the topology's); e.g. a candidate for offline evaluation. */
  modelVersion?: string;
  modelRepository?: string;
  threshold?: number;
  stateNamespace?: string;
  /** File output: add each prediction's feature vector. */
  includeFeatures?: boolean;
  /** Topic output: dead letters go here (default: the topology's dead-letter topic). */
  deadLetterTopic?: string;
  /** Forget an existing job of the same name and start over. */
  restart?: boolean;
  /** Fetch size per partition (small values: more, smaller batches). */
  fetchBytes?: number;
  /** Records per commit of each partition (default RANGE_COMMIT.maxRecords): smaller commits, finer resume points. */
  commitRecords?: number;
  /** Inference worker threads (default: the stage's pool config). */
  workers?: number;
  /** Feedback topic (records of schemas/feedback.avsc): ROC AUC / precision / recall of the backfilled scores. */
  feedbackTopic?: string;
  onProgress?: (p: BackfillProgress) => void;
  /** Aborting stops gracefully after the in-flight batches (the job stays resumable). */
  signal?: AbortSignal;
}

export interface BackfillProgress {
  /** Offsets covered so far (warmup + range), over every attempt. */
  done: number;
  total: number;
  /** This attempt's rate (offsets/s). */
  eventsPerSecond: number;
  etaMs: number | null;
  counters: Counters;
}

export interface BackfillSummary {
  job: string;
  topology: string;
  inputTopic: string;
  output: string;
  model: string;
  stateNamespace: string;
  ranges: PartitionRange[];
  /** Events in the range (scored or dead-lettered). */
  events: number;
  warmupEvents: number;
  predictions: number;
  deadLettered: number;
  /** Wall time of this invocation. */
  durationMs: number;
  /** Running time over every attempt. */
  totalRunMs: number;
  /** Range events per second over every attempt's running time. */
  eventsPerSecond: number;
  /** This attempt, from its first fetched batch to its last write (startup excluded): events (range + warmup) and time. */
  processing: { events: number; ms: number; eventsPerSecond: number };
  resumed: boolean;
  complete: boolean;
  alreadyComplete: boolean;
  feedback?: FeedbackReport;
}

/** The extraction stage reading the input topic and the inference stage it feeds. */
export function backfillStages(topology: LoadedTopology): { extract: StageSpec; score: StageSpec } {
  const score = topology.spec.stages.find((s) => s.processor === 'onnx_inference');
  if (!score) throw new TributaryError(`topology ${topology.spec.name} has no onnx_inference stage to backfill with`);
  const extract = topology.spec.stages.find((s) => s.processor === 'feature_extraction' && s.output.topic === score.input.topic);
  if (!extract) throw new TributaryError(`topology ${topology.spec.name}: no feature_extraction stage feeds stage '${score.name}' (input ${score.input.topic})`);
  return { extract, score };
}

export function parseOutput(output: string, format?: 'jsonl' | 'csv'): OutputTarget {
  const m = /^(topic|file):(.+)$/.exec(output);
  const kind = m ? m[1] : /\.(jsonl|ndjson|json|csv)$/i.test(output) || output.includes('/') || output.includes(path.sep) ? 'file' : 'topic';
  const value = m ? m[2] : output;
  if (kind === 'topic') {
    if (format) throw new ConfigError('--format', 'only for file output');
    return { kind: 'topic', topic: value };
  }
  const fmt = format ?? (/\.csv$/i.test(value) ? 'csv' : 'jsonl');
  if (fmt !== 'jsonl' && fmt !== 'csv') throw new ConfigError('--format', `must be jsonl or csv, not '${String(fmt)}'`);
  return { kind: 'file', path: path.resolve(value), format: fmt };
}

/** The live stage's streaming namespace (which a backfill must never write to). */
export function liveNamespace(topology: LoadedTopology, extract: StageSpec): string {
  return (extract.config as unknown as ExtractionConfig).stateNamespace ?? `${topology.spec.name}.${extract.name}`;
}

function defaultJobName(o: BackfillOptions, target: OutputTarget, modelVersion: string): string {
  const h = createHash('sha256')
    .update(JSON.stringify([o.topology.spec.name, o.from, o.to ?? 'latest', o.warmupFrom ?? '', target, modelVersion, o.stateNamespace ?? '', !!o.includeFeatures]))
    .digest('hex')
    .slice(0, 10);
  return `${o.topology.spec.name}-${h}`;
}

function samePlan(plan: BackfillPlan, want: Omit<BackfillPlan, 'createdAt' | 'ranges' | 'checkpointGroup' | 'version' | 'job'>): string[] {
  const diffs: string[] = [];
  const check = (name: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${name}: job has ${JSON.stringify(a)}, asked ${JSON.stringify(b)}`);
  };
  check('topology', plan.topology, want.topology);
  check('input', plan.inputTopic, want.inputTopic);
  check('range', plan.specs, want.specs);
  check('output', plan.output, want.output);
  check('model', plan.model, want.model);
  check('state namespace', plan.stateNamespace, want.stateNamespace);
  check('include features', plan.includeFeatures, want.includeFeatures);
  return diffs;
}

function dataIn(ranges: readonly PartitionRange[]): number {
  return ranges.reduce((n, r) => n + (r.end - r.warmupStart), 0);
}

/** Runs (or resumes) a backfill job to its planned end; returns its summary. */
export async function runBackfill(o: BackfillOptions): Promise<BackfillSummary> {
  const began = Date.now();
  const { topology } = o;
  const endpoints = o.endpoints ?? resolveEndpoints();
  const { extract, score } = backfillStages(topology);
  const inputTopic = extract.input.topic;
  // The input events' schema comes from the topology (the topic's `schema`), whatever the domain.
  const inputType = topicSchema(topology, inputTopic, `stages[${topology.spec.stages.indexOf(extract)}].input.topic`);
  const target = parseOutput(o.output, o.format);
  const scoreConfig = score.config as unknown as InferenceConfig;
  const model = { repository: path.resolve(topology.baseDir, o.modelRepository ?? scoreConfig.model.repository), name: scoreConfig.model.name, version: o.modelVersion ?? scoreConfig.model.version };
  const job = o.job ?? defaultJobName(o, target, model.version);
  const stateNamespace = o.stateNamespace ?? `backfill.${job}`;
  if (stateNamespace === liveNamespace(topology, extract)) throw new ConfigError('--state-namespace', `'${stateNamespace}' is the live stage's streaming state; a backfill needs its own`);
  if (target.kind === 'topic' && topology.spec.stages.some((s) => s.output.topic === target.topic || s.input.topic === target.topic)) {
    throw new ConfigError('--output', `topic ${target.topic} belongs to the live topology; write a backfill to its own topic`);
  }
  if (o.includeFeatures && target.kind === 'topic') throw new ConfigError('--include-features', 'only for file output (the prediction schema has no features)');
  const specs = { from: o.from, to: o.to ?? 'latest', ...(o.warmupFrom ? { warmupFrom: o.warmupFrom } : {}) };
  const parsed = { from: parseRangeSpec(specs.from, '--from'), to: parseRangeSpec(specs.to, '--to'), warmupFrom: o.warmupFrom ? parseRangeSpec(o.warmupFrom, '--warmup-from') : undefined };

  const store = new JobStore(o.stateDir ?? defaultStateDir(), job);
  if (o.restart) store.remove();
  const kafka = createKafka({ clientId: `tributary-backfill-${job}`, brokers: topology.spec.kafka?.brokers ?? endpoints.brokers });
  const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
  const catalog = topologySchemas(topology);
  const redisUrl = endpoints.redisUrl ?? process.env.REDIS_URL;
  const deadLetterTopic = target.kind === 'topic' ? (o.deadLetterTopic ?? topology.spec.deadLetter.topic) : undefined;
  const want = { topology: topology.spec.name, inputTopic, specs, output: target, model, stateNamespace, includeFeatures: !!o.includeFeatures, ...(deadLetterTopic ? { deadLetterTopic } : {}) };

  let plan = store.plan();
  const resumed = plan !== undefined;
  if (plan) {
    const diffs = samePlan(plan, want);
    if (diffs.length > 0) throw new TributaryError(`backfill job '${job}' exists with other settings (${diffs.join('; ')}); use --restart or another --job`);
  } else {
    const admin = kafka.admin();
    await admin.connect();
    let ranges: PartitionRange[];
    try {
      if (!(await admin.listTopics()).includes(inputTopic)) throw new TributaryError(`input topic ${inputTopic} does not exist`);
      ranges = await resolveRanges(admin, inputTopic, parsed);
    } finally {
      await admin.disconnect();
    }
    // A new job starts from empty streaming state in its own namespace.
    if (redisUrl) {
      const redis = await connectRedisClient(redisUrl);
      try {
        await new StreamingState(redis, stateNamespace, []).reset();
      } finally {
        redis.disconnect();
      }
    }
    const created = Date.now();
    plan = { version: 1, job, createdAt: new Date(created).toISOString(), ranges, checkpointGroup: `tributary-backfill.${job}.${created}`, ...want };
    store.savePlan(plan);
    log.info({ job, ranges, output: target, model: `${model.name}@${model.version}`, stateNamespace }, 'backfill planned');
  }
  const p = plan;

  const previous = store.counters();
  let processing = { events: 0, ms: 0, eventsPerSecond: 0 };
  const summarize = (counters: Counters, complete: boolean, alreadyComplete: boolean, feedback?: FeedbackReport): BackfillSummary => ({
    job,
    topology: topology.spec.name,
    inputTopic,
    output: target.kind === 'topic' ? `topic:${target.topic}` : `file:${target.path}`,
    model: `${model.name}@${model.version}`,
    stateNamespace,
    ranges: p.ranges,
    events: counters.events,
    warmupEvents: counters.warmupEvents,
    predictions: counters.predictions,
    deadLettered: counters.deadLettered,
    durationMs: Date.now() - began,
    totalRunMs: counters.runMs,
    eventsPerSecond: counters.runMs > 0 ? counters.events / (counters.runMs / 1000) : 0,
    processing,
    resumed,
    complete,
    alreadyComplete,
    feedback,
  });
  const feedbackFor = async (): Promise<FeedbackReport | undefined> =>
    o.feedbackTopic ? evaluateFeedback({ kafka, registry, catalog, feedbackTopic: o.feedbackTopic, plan: p, groupPrefix: p.checkpointGroup }) : undefined;
  if (previous?.done) return summarize(previous, true, true, await feedbackFor());

  // Processors: the topology's own, with the backfill's namespace and model version.
  const metricsRegistry = new Registry();
  const ctx = (stage: StageSpec, name: string): ProcessorContext => ({ topology, stage, logger: createLogger(`backfill.${name}`), redisUrl, groupId: p.checkpointGroup, metricsRegistry });
  const extractionConfig: ExtractionConfig = { ...(extract.config as unknown as ExtractionConfig), stateNamespace };
  const inferenceConfig: InferenceConfig & Record<string, unknown> = { ...scoreConfig, model, gate: false, ...(o.threshold !== undefined ? { threshold: o.threshold } : {}) };
  // One version, no live switching: hot swap, routing and shadowing are live concerns.
  for (const k of ['hotSwap', 'routing', 'shadow', 'simulateDelayMs']) delete inferenceConfig[k];
  if (o.workers) inferenceConfig.pool = { ...(inferenceConfig.pool ?? {}), workers: o.workers };
  const problems = onnxInference.validate?.(inferenceConfig, ctx(score, 'score')) ?? [];
  if (problems.length > 0) throw problems[0];

  const initial = previous ? { ...previous } : emptyCounters();
  initial.attempts += 1;
  let extractor: Processor | undefined;
  let scorer: Processor | undefined;
  let sink: Sink | undefined;
  let featureNames: string[] | undefined;
  const started = Date.now();
  let complete = false;
  try {
    extractor = await featureExtraction.create(extractionConfig, ctx(extract, 'extract'));
    scorer = await onnxInference.create(inferenceConfig, ctx(score, 'score'));
    if (o.includeFeatures) featureNames = [...extractionVector(extractionConfig, { topology }).names];
    if (target.kind === 'file') {
      sink = new FileSink(store, target.path, target.format, target.format === 'csv' ? featureNames : undefined, initial);
    } else {
      await ensureTopics(kafka, [
        { name: target.topic, partitions: topology.spec.topics.find((t) => t.name === score.output.topic)?.partitions ?? 1, schema: 'prediction' },
        { name: deadLetterTopic!, partitions: 1, schema: 'dead-letter', config: topology.spec.topics.find((t) => t.name === deadLetterTopic)?.config },
      ]);
      sink = new TopicSink({ kafka, registry, catalog, store: store, inputTopic, outputTopic: target.topic, deadLetterTopic: deadLetterTopic!, checkpointGroup: p.checkpointGroup, maxMessageBytes: await topicMaxMessageBytes(kafka, target.topic), initial, log });
    }
    const resume = await sink.resumeOffsets(p.ranges.map((r) => r.partition));
    const position = new Map(p.ranges.map((r) => [r.partition, Math.max(resume.get(r.partition) ?? r.warmupStart, r.warmupStart)]));
    const total = dataIn(p.ranges);
    const doneNow = () => p.ranges.reduce((n, r) => n + (Math.min(position.get(r.partition)!, r.end) - r.warmupStart), 0);
    const doneAtStart = doneNow();
    const atStart = sink.counters();
    let firstBatchAt: number | undefined;
    let lastWriteAt: number | undefined;
    const report = () => {
      if (!o.onProgress) return;
      const secs = (Date.now() - started) / 1000;
      const rate = secs > 0 ? (doneNow() - doneAtStart) / secs : 0;
      const remaining = total - doneNow();
      o.onProgress({ done: doneNow(), total, eventsPerSecond: rate, etaMs: remaining === 0 ? 0 : rate > 0 ? (remaining / rate) * 1000 : null, counters: sink!.counters() });
    };
    const timer = o.onProgress ? setInterval(report, 250) : undefined;
    timer?.unref();
    report();

    // The topology's own extract -> score chain, in memory: no encoder (nothing goes to the live
    // topics); the sinks write each record's prediction (and vector) to the job's topic or file.
    const decoder = new AvroDecoder<unknown>(registry, inputType);
    const chain = new Chain({
      stages: [
        { spec: extract, processor: guardJob(extractor, job, (err) => runner.fail(err)) },
        { spec: score, processor: scorer },
      ],
      decoder,
      deadLetterMaxValueBytes: 512 * 1024,
      // The sinks write each record's vector and prediction as values (toSinkBatch).
      keepValues: true,
      log: createLogger('engine').child({ backfill: job }),
    });
    const rangeOf = new Map(p.ranges.map((r) => [r.partition, r]));
    const s = sink;
    const runner: RangeRunner = new RangeRunner({
      kafka,
      chain,
      topic: inputTopic,
      ranges: p.ranges.map((r) => ({ partition: r.partition, from: position.get(r.partition)!, end: r.end })),
      groupPrefix: p.checkpointGroup,
      maxBytesPerPartition: o.fetchBytes,
      commit: o.commitRecords ? { ...RANGE_COMMIT, maxRecords: o.commitRecords } : undefined,
      signal: o.signal,
      log,
      onFetched: () => (firstBatchAt ??= Date.now()),
      sinkFor: (partition) => ({
        init: async () => {
          const at = resume.get(partition);
          return at === null || at === undefined ? null : String(at);
        },
        commit: async (batch) => {
          await s.write(toSinkBatch(batch, rangeOf.get(partition)!.start, !!o.includeFeatures));
          position.set(partition, Number(batch.nextOffset));
          lastWriteAt = Date.now();
        },
        committed: () => s.committed(partition),
        exactlyOnce: s.exactlyOnce,
        close: async () => undefined,
      }),
    });
    const { aborted } = await runner.run();
    // Ranges that end on transaction markers: nothing is left to read past the last record.
    if (!aborted) for (const r of p.ranges) position.set(r.partition, r.end);

    if (timer) clearInterval(timer);
    report();
    const now = sink.counters();
    const n = now.events + now.warmupEvents - atStart.events - atStart.warmupEvents;
    const ms = firstBatchAt !== undefined && lastWriteAt !== undefined ? lastWriteAt - firstBatchAt : 0;
    processing = { events: n, ms, eventsPerSecond: ms > 0 ? n / (ms / 1000) : 0 };
    // A stop that arrives after the last batch was written leaves nothing to resume: that job is complete.
    if (aborted && doneNow() < total) {
      const runMs = Date.now() - started;
      const c = sink.counters();
      await sink.close(runMs);
      sink = undefined;
      return summarize({ ...c, runMs: c.runMs + runMs }, false, false);
    }
    const counters = await sink.complete(Date.now() - started);
    complete = true;
    await sink.close();
    sink = undefined;
    return summarize(counters, true, false, await feedbackFor());
  } finally {
    if (sink) await sink.close(complete ? 0 : Date.now() - started).catch(() => undefined);
    await Promise.allSettled([extractor?.close(), scorer?.close()]);
  }
}

/** A lane's commit as a backfill sink batch: warmup records only built state; the rest are predictions or dead letters. */
function toSinkBatch(batch: CommitBatch, start: number, includeFeatures: boolean): SinkBatch {
  const rows: OutputRow[] = [];
  const deadLetters: DeadLetter[] = [];
  let events = 0;
  let warmupEvents = 0;
  for (const r of batch.records as ChainRecord[]) {
    if (r.trace.offset < start) {
      warmupEvents++;
      continue;
    }
    events++;
    if (r.rejection) {
      const d = r.deadLetterRecord(r.rejection);
      deadLetters.push({ ...d, stage: `backfill.${d.stage}` });
      continue;
    }
    const [features, prediction] = r.values as [FeatureVector, Prediction];
    rows.push({ prediction, ...(includeFeatures ? { features: { names: features.names, values: features.values } } : {}) });
  }
  return { partition: batch.partition, nextOffset: Number(batch.nextOffset), rows, deadLetters, events, warmupEvents };
}

/**
 * The extraction processor of a job: its streaming state fences a second process running the same
 * job (FencedError). That ends this run without writing anything more (the chunk is not retried
 * as a processing failure, which would dead-letter its records).
 */
function guardJob(processor: Processor, job: string, fail: (err: Error) => void): Processor {
  const guard = (err: unknown): unknown => {
    if (!isFenced(err)) return err;
    fail(new TributaryError(`backfill job '${job}' is being run by another process (${(err as Error).message})`));
    return new TransientError('backfill job taken over by another process', { cause: err });
  };
  return {
    async processBatch(records, scope) {
      // The state writes the processor defers to the chunk's commit are guarded as its call is.
      const guarded = scope && { beforeCommit: (work: Promise<unknown>) => scope.beforeCommit(work.catch((err) => Promise.reject(guard(err)))) };
      try {
        return await processor.processBatch(records, guarded);
      } catch (err) {
        throw guard(err);
      }
    },
    close: () => processor.close(),
    backpressure: processor.backpressure,
  };
}

function isFenced(err: unknown): boolean {
  for (let cur: unknown = err, depth = 0; cur && depth < 6; depth++, cur = (cur as { cause?: unknown }).cause) if (cur instanceof FencedError) return true;
  return false;
}
