/**
 * Offline evaluation: joins a finished backfill's predictions with a feedback topic (records of
 * schemas/feedback.avsc, keyed by the event key — the transaction id — with a boolean label; the
 * latest label of a key wins) and computes ROC AUC, precision and recall of the backfilled scores.
 * The predictions are read back from the job's output (file or topic), so a resumed job's earlier
 * attempts count too.
 */
import { splitCsv } from '../features/load-file';
import * as fs from 'node:fs';
import type { Kafka } from 'kafkajs';
import type { Feedback, Prediction } from '../client/generated/avro-types';
import type { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import { RecordRejection } from '../kafka/dead-letter';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { TributaryError } from '../util/errors';
import type { BackfillPlan } from './job-store';
import { evaluate, type EvaluationMetrics } from './metrics';
import { readRanges } from '../engine/range-source';
import { CSV_COLUMNS } from './sinks';

export interface FeedbackReport extends EvaluationMetrics {
  topic: string;
  /** Distinct keys with a label. */
  labels: number;
  predictions: number;
}

export interface ScoredKey {
  key: string;
  score: number;
  label: boolean;
  partition: number;
  offset: number;
}

/** Reads a whole topic as it is now (bounded at its current end offsets). */
export async function readTopicNow(kafka: Kafka, topic: string, groupPrefix: string, onMessage: (m: { key: Buffer | null; value: Buffer | null; partition: number; offset: number }) => Promise<void>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  let offsets;
  try {
    if (!(await admin.listTopics()).includes(topic)) throw new TributaryError(`topic ${topic} does not exist`);
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  await readRanges({
    kafka,
    topic,
    groupPrefix,
    ranges: offsets.map((o) => ({ partition: o.partition, from: Number(o.low), end: Number(o.high) })),
    onBatch: async (b) => {
      for (const m of b.messages) await onMessage({ key: m.key, value: m.value, partition: b.partition, offset: Number(m.offset) });
    },
  });
}

/** Splits one CSV line (RFC 4180 quoting): the feature loader's splitter. */
export const splitCsvLine = splitCsv;

/** The predictions of a file output (JSON lines or CSV as the backfill writes them). */
export function readOutputFile(file: string, format: 'jsonl' | 'csv'): ScoredKey[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  if (format === 'jsonl') {
    return lines.map((l) => {
      const p = JSON.parse(l) as Prediction;
      return { key: p.key, score: p.score, label: p.label, partition: p.lineage.partition, offset: p.lineage.offset };
    });
  }
  const col = (name: string) => CSV_COLUMNS.indexOf(name);
  return lines.slice(1).map((l) => {
    const c = splitCsvLine(l);
    return { key: c[col('key')], score: Number(c[col('score')]), label: c[col('label')] === 'true', partition: Number(c[col('partition')]), offset: Number(c[col('offset')]) };
  });
}

/** The predictions of a job's output, deduplicated by input position and limited to its range. */
export async function readJobPredictions(opts: { kafka: Kafka; registry: SchemaRegistryClient; catalog: SchemaCatalog; plan: BackfillPlan; groupPrefix: string }): Promise<ScoredKey[]> {
  const { plan } = opts;
  let rows: ScoredKey[] = [];
  if (plan.output.kind === 'file') rows = readOutputFile(plan.output.path, plan.output.format);
  else {
    const decoder = new AvroDecoder<Prediction>(opts.registry, opts.catalog.get('prediction').type);
    await readTopicNow(opts.kafka, plan.output.topic, `${opts.groupPrefix}.verify`, async (m) => {
      const p = await decoder.decode(m.value);
      if (p instanceof RecordRejection || p.lineage.topic !== plan.inputTopic) return;
      rows.push({ key: p.key, score: p.score, label: p.label, partition: p.lineage.partition, offset: p.lineage.offset });
    });
  }
  const ranges = new Map(plan.ranges.map((r) => [r.partition, r]));
  const seen = new Set<string>();
  return rows.filter((r) => {
    const range = ranges.get(r.partition);
    const id = `${r.partition}:${r.offset}`;
    if (!range || r.offset < range.start || r.offset >= range.end || seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

export async function evaluateFeedback(opts: { kafka: Kafka; registry: SchemaRegistryClient; catalog: SchemaCatalog; feedbackTopic: string; plan: BackfillPlan; groupPrefix: string }): Promise<FeedbackReport> {
  const labels = new Map<string, boolean>();
  const decoder = new AvroDecoder<Feedback>(opts.registry, opts.catalog.get('feedback').type);
  await readTopicNow(opts.kafka, opts.feedbackTopic, `${opts.groupPrefix}.feedback`, async (m) => {
    const f = await decoder.decode(m.value);
    if (!(f instanceof RecordRejection)) labels.set(f.key, f.label);
  });
  const predictions = await readJobPredictions(opts);
  const joined = predictions.filter((p) => labels.has(p.key)).map((p) => ({ score: p.score, predicted: p.label, actual: labels.get(p.key)! }));
  return { topic: opts.feedbackTopic, labels: labels.size, predictions: predictions.length, ...evaluate(joined) };
}
