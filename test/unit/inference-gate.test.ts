import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkBound, classificationMetrics, ModelGateError, rocAuc, runGate, type GateSpec } from '../../src/inference/gate';
import { readModelCard } from '../../src/inference/model-card';
import { onnxInference } from '../../src/stages/inference';
import { repoRoot } from '../../src/stack/paths';
import { createLogger } from '../../src/util/logger';
import type { ProcessorContext } from '../../src/stages/processor';

const MODEL_DIR = path.join(repoRoot(), 'models', 'fraud', '1');
const logger = createLogger('test');

/** A copy of models/fraud/1 in a temp repository (tmp/fraud/<version>), optionally edited. */
function copyVersion(version: string, edit?: { gate?: (g: GateSpec) => void; card?: (c: Record<string, unknown>) => void; golden?: (lines: string[]) => string[] }): { repo: string; dir: string } {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-repo-'));
  const dir = path.join(repo, 'fraud', version);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(MODEL_DIR)) fs.copyFileSync(path.join(MODEL_DIR, f), path.join(dir, f));
  const gate = JSON.parse(fs.readFileSync(path.join(dir, 'gate.json'), 'utf8')) as GateSpec;
  edit?.gate?.(gate);
  fs.writeFileSync(path.join(dir, 'gate.json'), JSON.stringify(gate));
  const card = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  card.version = version;
  edit?.card?.(card);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card));
  if (edit?.golden) {
    const lines = fs.readFileSync(path.join(dir, 'golden.jsonl'), 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(path.join(dir, 'golden.jsonl'), edit.golden(lines).join('\n'));
  }
  return { repo, dir };
}

describe('gate metrics', () => {
  it('ROC AUC: perfect, inverted, random ties, and the textbook example', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    // 2 negatives x 4 positives = 8 pairs: 6 ordered, 1 inverted (0.4 > 0.35), 1 tie (0.4 = 0.4) counted half
    expect(rocAuc([0.1, 0.4, 0.35, 0.8, 0.4, 0.9], [0, 0, 1, 1, 1, 1])).toBeCloseTo(6.5 / 8, 10);
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNaN();
  });

  it('precision, recall, f1, accuracy at a threshold', () => {
    const m = classificationMetrics([0.9, 0.6, 0.4, 0.2, 0.7], [1, 0, 1, 0, 1], 0.5);
    expect(m.precision).toBeCloseTo(2 / 3);
    expect(m.recall).toBeCloseTo(2 / 3);
    expect(m.f1).toBeCloseTo(2 / 3);
    expect(m.accuracy).toBeCloseTo(3 / 5);
  });

  it('bounds: absolute range, change vs live (absolute and relative, either direction), skip without live', () => {
    expect(checkBound('x', { metric: 'rocAuc', min: 0.85 }, 0.9)[0].status).toBe('pass');
    expect(checkBound('x', { metric: 'rocAuc', min: 0.85 }, 0.8)[0].status).toBe('fail');
    expect(checkBound('x', { metric: 'recall', max: 0.9 }, 0.95)[0].status).toBe('fail');
    expect(checkBound('x', { metric: 'rocAuc', min: 0.5 }, NaN)[0].status).toBe('fail');
    const hib = { metric: 'rocAuc' as const, change: { direction: 'higher_is_better' as const, absolute: -0.01 } };
    expect(checkBound('x', hib, 0.935, 0.94)[0].status).toBe('pass');
    expect(checkBound('x', hib, 0.92, 0.94)[0]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/change -0.02 < -0.01/) });
    expect(checkBound('x', hib, 0.92)[0].status).toBe('skip');
    const rel = { metric: 'precision' as const, change: { direction: 'higher_is_better' as const, relative: 0.05 } };
    expect(checkBound('x', rel, 0.63, 0.6)[0].status).toBe('pass');
    expect(checkBound('x', rel, 0.62, 0.6)[0].status).toBe('fail');
    const lib = { metric: 'accuracy' as const, change: { direction: 'lower_is_better' as const, absolute: 0 } };
    expect(checkBound('x', lib, 0.1, 0.2)[0].status).toBe('pass');
    expect(checkBound('x', lib, 0.3, 0.2)[0].status).toBe('fail');
  });
});

describe('model card', () => {
  it('requires who built it and when, and the training data version; validates approvedBy when present', () => {
    const { dir } = copyVersion('2', { card: (c) => { delete c.createdBy; c.createdAt = 'yesterday'; (c.trainingData as Record<string, unknown>).version = undefined; c.approvedBy = { name: '' }; } });
    expect(() => readModelCard(dir)).toThrow(/createdBy[\s\S]*createdAt[\s\S]*trainingData[\s\S]*approvedBy/);
  });
});

describe('runGate on fraud@1', () => {
  it('passes its own gate: golden within tolerance, confidence metrics and segments within bounds, p99 under budget', async () => {
    const phases = new Set<string>();
    const report = await runGate(MODEL_DIR, { logger, onProgress: (p) => phases.add(p) });
    expect(report.passed).toBe(true);
    expect(report.checks.find((c) => c.name === 'golden')?.status).toBe('pass');
    expect(report.metrics.rocAuc).toBeGreaterThan(0.9);
    expect(report.checks.some((c) => c.name.startsWith('confidence[merchantCategory=') && c.status === 'pass')).toBe(true);
    expect(report.latency?.p99Ms).toBeLessThan(25);
    expect([...phases]).toEqual(['golden', 'confidence', 'latency']);
  });

  it('fails a version whose metric is outside its bound, and says which', async () => {
    const { dir } = copyVersion('2', { gate: (g) => (g.confidence!.metrics[0].min = 0.99) });
    const report = await runGate(dir, { logger });
    expect(report.passed).toBe(false);
    expect(report.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['confidence.rocAuc']);
  });

  it('fails a version whose golden scores drift beyond tolerance', async () => {
    const { dir } = copyVersion('2', {
      golden: (lines) => lines.map((l, i) => (i === 3 ? JSON.stringify({ ...JSON.parse(l), score: JSON.parse(l).score + 0.01 }) : l)),
    });
    const report = await runGate(dir, { logger });
    expect(report.checks.find((c) => c.name === 'golden')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/row 3.*1 rows outside/) });
  });

  it('compares against the live version when given (change bounds), and fails a p99 budget it cannot meet', async () => {
    const { dir } = copyVersion('2', { gate: (g) => (g.latency = { p99Ms: 0.000001, batchSize: 1, runs: 20 }) });
    const report = await runGate(dir, { liveDir: MODEL_DIR, logger });
    expect(report.live).toBe('1');
    expect(report.checks.find((c) => c.name === 'confidence.rocAuc vs live')?.status).toBe('pass'); // same weights: no change
    expect(report.checks.find((c) => c.name === 'latency')?.status).toBe('fail');
  });

  it('a tampered model.onnx fails at load (sha256)', async () => {
    const { dir } = copyVersion('2');
    fs.appendFileSync(path.join(dir, 'model.onnx'), Buffer.from([0]));
    const report = await runGate(dir, { logger });
    expect(report.checks.find((c) => c.name === 'load')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/sha256/) });
  });
});

describe('onnx_inference refuses a version that fails its gate', () => {
  it('create() rejects with ModelGateError and starts no pool', async () => {
    const { repo } = copyVersion('2', { gate: (g) => (g.confidence!.metrics[1].min = 0.99) });
    const ctx = { topology: { baseDir: '/' }, stage: { name: 'score' }, logger } as unknown as ProcessorContext;
    const err = await onnxInference.create({ model: { repository: repo, name: 'fraud', version: '2' } }, ctx).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ModelGateError);
    expect((err as Error).message).toMatch(/fraud@2 failed its gate: confidence.precision: precision 0.73\d+ outside 0.99/);
  });
});
