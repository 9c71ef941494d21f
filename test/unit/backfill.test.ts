import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Prediction } from '../../src/client/generated/avro-types';
import { readOutputFile, splitCsvLine } from '../../src/backfill/feedback';
import { JobStore, emptyCounters } from '../../src/backfill/job-store';
import { evaluate, rocAuc } from '../../src/backfill/metrics';
import { buildRanges, parseRangeSpec, specOffsets, type PartitionBounds } from '../../src/backfill/range';
import { parseOutput } from '../../src/backfill/runner';
import { FileSink, csvHeader, formatRow } from '../../src/backfill/sinks';
import { progressLine, summaryText } from '../../src/cli/commands/backfill';

const bounds: PartitionBounds[] = [
  { partition: 0, low: 0, high: 100 },
  { partition: 1, low: 10, high: 50 },
];

function prediction(partition: number, offset: number, key = `k${partition}-${offset}`, score = 0.25): Prediction {
  return { key, modelName: 'fraud', modelVersion: '2', score, label: score >= 0.5, threshold: 0.5, eventTime: 1000 + offset, ingestTime: 2000 + offset, producedTime: 3000, lineage: { topic: 't', partition, offset }, featureSetVersions: { card_profile: '3' }, route: 'live', latencyMs: 1 };
}

describe('backfill range specs', () => {
  it('parses earliest/latest, ISO times, epoch ms and partition offsets; rejects the rest', () => {
    expect(parseRangeSpec('earliest')).toEqual({ kind: 'earliest' });
    expect(parseRangeSpec('latest')).toEqual({ kind: 'latest' });
    expect(parseRangeSpec('2026-11-29T05:00:00Z')).toEqual({ kind: 'time', ms: Date.parse('2026-11-29T05:00:00Z') });
    expect(parseRangeSpec('1764392400000')).toEqual({ kind: 'time', ms: 1764392400000 });
    expect(parseRangeSpec('0:10, 1:20')).toEqual({ kind: 'offsets', offsets: new Map([[0, 10], [1, 20]]) });
    expect(() => parseRangeSpec('0:1,0:2')).toThrow(/listed twice/);
    expect(() => parseRangeSpec('yesterday', '--to')).toThrow(/--to 'yesterday'/);
  });

  it('resolves to [start, end) per partition, clamped to the log, with warmup before the start', () => {
    const from = specOffsets(parseRangeSpec('0:20,1:0'), bounds, undefined, '--from');
    expect(from).toEqual(new Map([[0, 20], [1, 10]])); // below the log start: clamped
    const to = specOffsets({ kind: 'time', ms: 5 }, bounds, new Map([[0, 60], [1, -1]]), '--to');
    expect(to).toEqual(new Map([[0, 60], [1, 50]])); // no record at/after the time: the end offset
    const warm = specOffsets({ kind: 'earliest' }, bounds, undefined, '--warmup-from');
    expect(buildRanges(bounds, from, to, warm)).toEqual([
      { partition: 0, warmupStart: 0, start: 20, end: 60 },
      { partition: 1, warmupStart: 10, start: 10, end: 50 },
    ]);
    // An end before the start is an empty range, never a negative one.
    expect(buildRanges(bounds, new Map([[0, 70], [1, 10]]), new Map([[0, 60], [1, 10]]))[0]).toEqual({ partition: 0, warmupStart: 70, start: 70, end: 70 });
    expect(() => specOffsets(parseRangeSpec('0:1'), bounds, undefined, '--from')).toThrow(/partition 1 is not listed/);
    expect(() => specOffsets(parseRangeSpec('0:1,1:1,7:1'), bounds, undefined, '--from')).toThrow(/no partition 7/);
  });

  it('tells topic from file outputs', () => {
    expect(parseOutput('preds.backfill')).toEqual({ kind: 'topic', topic: 'preds.backfill' });
    expect(parseOutput('topic:a/b')).toEqual({ kind: 'topic', topic: 'a/b' });
    expect(parseOutput('out.csv')).toEqual({ kind: 'file', path: path.resolve('out.csv'), format: 'csv' });
    expect(parseOutput('file:out', 'jsonl')).toEqual({ kind: 'file', path: path.resolve('out'), format: 'jsonl' });
  });
});

describe('offline metrics', () => {
  it('ROC AUC by ranks with ties; precision and recall of the decisions', () => {
    expect(rocAuc([{ score: 0.9, actual: true }, { score: 0.1, actual: false }])).toBe(1);
    expect(rocAuc([{ score: 0.1, actual: true }, { score: 0.9, actual: false }])).toBe(0);
    expect(rocAuc([{ score: 0.5, actual: true }, { score: 0.5, actual: false }])).toBe(0.5);
    // 3 positives, 2 negatives: pairs (p > n) = 0.8:{0.3,0.2}=2, 0.4:{0.3,0.2}=2, 0.25:{0.2}=1 -> 5/6
    expect(rocAuc([0.8, 0.4, 0.25].map((score) => ({ score, actual: true })).concat([0.3, 0.2].map((score) => ({ score, actual: false }))))).toBeCloseTo(5 / 6, 12);
    expect(rocAuc([{ score: 1, actual: true }])).toBeNull();
    const m = evaluate([
      { score: 0.9, predicted: true, actual: true },
      { score: 0.7, predicted: true, actual: false },
      { score: 0.2, predicted: false, actual: true },
      { score: 0.1, predicted: false, actual: false },
    ]);
    expect(m).toMatchObject({ labeled: 4, positives: 2, precision: 0.5, recall: 0.5, truePositives: 1, falsePositives: 1, falseNegatives: 1, rocAuc: 0.75 });
  });
});

describe('file output', () => {
  it('JSON lines and CSV rows read back to the same keys, scores and positions (quoted CSV cells too)', () => {
    const rows = [{ prediction: prediction(0, 1, 'a,"b"', 0.125) }, { prediction: prediction(2, 7, 'plain', 0.75) }];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bf-unit-'));
    fs.writeFileSync(path.join(dir, 'o.jsonl'), rows.map((r) => formatRow(r, 'jsonl')).join(''));
    fs.writeFileSync(path.join(dir, 'o.csv'), csvHeader() + rows.map((r) => formatRow(r, 'csv')).join(''));
    const want = [
      { key: 'a,"b"', score: 0.125, label: false, partition: 0, offset: 1 },
      { key: 'plain', score: 0.75, label: true, partition: 2, offset: 7 },
    ];
    expect(readOutputFile(path.join(dir, 'o.jsonl'), 'jsonl')).toEqual(want);
    expect(readOutputFile(path.join(dir, 'o.csv'), 'csv')).toEqual(want);
    expect(splitCsvLine('x,"y,""z""",')).toEqual(['x', 'y,"z"', '']);
  });

  it('a resumed sink truncates what was appended after the last checkpoint and resumes from its offsets', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bf-unit-'));
    const file = path.join(dir, 'out.jsonl');
    const store = new JobStore(dir, 'job1');
    const first = new FileSink(store, file, 'jsonl', undefined, emptyCounters());
    expect(await first.resumeOffsets([0, 1])).toEqual(new Map([[0, null], [1, null]]));
    await first.write({ partition: 0, nextOffset: 2, rows: [{ prediction: prediction(0, 0) }, { prediction: prediction(0, 1) }], deadLetters: [], events: 2, warmupEvents: 0 });
    const good = fs.readFileSync(file, 'utf8');
    // A crash after an append but before its checkpoint: a torn half line and a whole unrecorded batch.
    fs.appendFileSync(file, formatRow({ prediction: prediction(1, 0) }, 'jsonl') + '{"key":"torn');
    const second = new FileSink(store, file, 'jsonl', undefined, emptyCounters());
    expect(await second.resumeOffsets([0, 1])).toEqual(new Map([[0, 2], [1, null]]));
    expect(fs.readFileSync(file, 'utf8')).toBe(good);
    expect(second.counters()).toMatchObject({ events: 2, predictions: 2 });
    await second.write({ partition: 1, nextOffset: 1, rows: [{ prediction: prediction(1, 0) }], deadLetters: [], events: 1, warmupEvents: 0 });
    expect(readOutputFile(file, 'jsonl').map((r) => `${r.partition}:${r.offset}`)).toEqual(['0:0', '0:1', '1:0']);
    expect((await second.complete(10)).predictions).toBe(3);
  });
});

describe('backfill CLI output', () => {
  it('progress line: bar, done/total, events/s, ETA; summary: counts, duration and feedback metrics', () => {
    const counters = { ...emptyCounters(), predictions: 480, deadLettered: 20 };
    expect(progressLine({ done: 500, total: 2000, eventsPerSecond: 250.4, etaMs: 6000, counters }, 8)).toBe('[##......] 25.0% 500/2000 events  250 events/s  ETA 0:06  predictions 480  dead-lettered 20');
    expect(progressLine({ done: 0, total: 10, eventsPerSecond: 0, etaMs: null, counters }, 4)).toContain('ETA --:--');
    const text = summaryText({
      job: 'j', topology: 't', inputTopic: 'in', output: 'file:/o.jsonl', model: 'fraud@3', stateNamespace: 'backfill.j',
      ranges: [{ partition: 0, warmupStart: 0, start: 10, end: 20 }], events: 10, warmupEvents: 10, predictions: 9, deadLettered: 1,
      durationMs: 2000, totalRunMs: 3000, eventsPerSecond: 3.3, processing: { events: 20, ms: 1000, eventsPerSecond: 20 },
      resumed: true, complete: true, alreadyComplete: false,
      feedback: { topic: 'fb', labels: 9, predictions: 9, labeled: 9, positives: 3, negatives: 6, rocAuc: 0.9, precision: 0.5, recall: 2 / 3, truePositives: 2, falsePositives: 2, falseNegatives: 1 },
    });
    expect(text).toContain('backfill j: complete (resumed)');
    expect(text).toContain('0:[10,20) warmup from 0');
    expect(text).toMatch(/events\s+10 \(\+10 warmup\)/);
    expect(text).toMatch(/dead-lettered 1/);
    expect(text).toContain('ROC AUC 0.9000  precision 0.5000  recall 0.6667');
  });
});
