import type { Feedback, Prediction, ShadowPrediction } from '../../src/client/generated/avro-types';
import { buildReport, reportJson } from '../../src/shadow/report';
import { bootstrap, calibration, histogram, jensenShannon, normalCdf, psi, quantile, rocCurve, twoProportionZTest } from '../../src/shadow/stats';

describe('report statistics (hand-computed)', () => {
  it('quantiles (nearest rank), histograms', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([10, 20, 30, 40], 0.5)).toBe(20);
    expect(quantile([10, 20, 30, 40], 0.99)).toBe(40);
    expect(histogram([0, 0.1, 0.5, 0.99, 1], 2)).toEqual([2, 3]);
  });
  it('PSI and Jensen-Shannon divergence', () => {
    // (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    expect(psi([50, 50], [25, 75])).toBeCloseTo(0.274653, 5);
    expect(psi([10, 30], [10, 30])).toBeCloseTo(0, 10);
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(1, 10);
    expect(jensenShannon([3, 7], [3, 7])).toBeCloseTo(0, 10);
    // P=[.5,.5], Q=[1,0], M=[.75,.25]: 0.5*(0.207519) + 0.5*(0.415037)
    expect(jensenShannon([1, 1], [1, 0])).toBeCloseTo(0.311278, 5);
  });
  it('two-proportion z-test and the normal CDF', () => {
    expect(normalCdf(1.96)).toBeCloseTo(0.975, 4);
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    // pooled 0.575, se = sqrt(0.575*0.425*0.02) = 0.069911, z = 0.15/0.069911
    const t = twoProportionZTest(50, 100, 65, 100);
    expect(t.z).toBeCloseTo(2.1456, 3);
    expect(t.pValue).toBeCloseTo(0.0319, 3);
    expect(t.significant).toBe(true);
    expect(twoProportionZTest(50, 100, 55, 100).significant).toBe(false);
  });
  it('bootstrap: deterministic by seed, degenerate statistic has a zero-width interval', () => {
    const constant = bootstrap(20, () => 3, { iterations: 50 });
    expect([constant.low, constant.estimate, constant.high]).toEqual([3, 3, 3]);
    const values = Array.from({ length: 50 }, (_, i) => i);
    const m = (idx: readonly number[]) => idx.reduce((s, i) => s + values[i], 0) / idx.length;
    const a = bootstrap(50, m, { seed: 3 });
    expect(bootstrap(50, m, { seed: 3 })).toEqual(a);
    expect(a.estimate).toBe(24.5);
    expect(a.low).toBeLessThan(24.5);
    expect(a.high).toBeGreaterThan(24.5);
    expect(a.high - a.low).toBeLessThan(16); // ~ 2 x 1.96 x 14.4/sqrt(50)
  });
  it('ROC curve and calibration bins', () => {
    expect(rocCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toEqual([
      { fpr: 0, tpr: 0 },
      { fpr: 0, tpr: 0.5 },
      { fpr: 0.5, tpr: 0.5 },
      { fpr: 0.5, tpr: 1 },
      { fpr: 1, tpr: 1 },
    ]);
    const c = calibration([0.05, 0.15, 0.95, 0.85], [0, 0, 1, 0], 2);
    expect(c.map((b) => [b.n, Number(b.meanScore.toFixed(9)), b.positiveRate])).toEqual([[2, 0.1, 0], [2, 0.9, 0.5]]);
  });
});

const lin = (partition: number, offset: number) => ({ topic: 't', partition, offset });
function live(key: string, partition: number, offset: number, score: number, latencyMs: number, route = 'stable'): Prediction {
  return { key, modelName: 'fraud', modelVersion: '1', score, label: score >= 0.5, threshold: 0.5, eventTime: 0, ingestTime: 1000, producedTime: 1100, lineage: lin(partition, offset), featureSetVersions: {}, route, latencyMs };
}
function shadow(key: string, partition: number, offset: number, score: number | null, latencyMs: number, status: ShadowPrediction['status'] = 'OK'): ShadowPrediction {
  return { key, shadow: 'shadow', modelName: 'fraud', modelVersion: '2', status, score, label: score === null ? null : score >= 0.5, threshold: 0.5, latencyMs, error: status === 'OK' ? null : 'boom', eventTime: 0, ingestTime: 1000, producedTime: 1300, lineage: lin(partition, offset), featureSetVersions: {} };
}
const fb = (key: string, label: boolean): Feedback => ({ key, label, source: 'chargeback', labelTime: 5000 });

describe('buildReport on a small hand-computed set', () => {
  const report = buildReport({
    live: [live('a', 0, 0, 0.2, 1), live('b', 0, 1, 0.6, 2), live('c', 1, 0, 0.9, 3, 'candidate'), live('d', 1, 1, 0.4, 4), live('f', 2, 5, 0.1, 5), live('a', 0, 0, 0.2, 1)],
    shadow: [shadow('a', 0, 0, 0.3, 10), shadow('b', 0, 1, 0.4, 20), shadow('c', 1, 0, 0.95, 30), shadow('e', 2, 0, 0.5, 40), shadow('d', 1, 1, null, 5, 'ERROR')],
    feedback: [fb('a', false), fb('b', true), fb('c', true), fb('zz', true)],
    segments: new Map([['t/0/0', { country: 'US' }], ['t/0/1', { country: 'US' }], ['t/1/0', { country: 'GB' }]]),
    segmentBy: ['country'],
    options: { bins: 2, bootstrapIterations: 50 },
  });

  it('counts matched / unmatched / duplicates and shadow outcomes', () => {
    expect(report.counts).toEqual({ live: 5, shadow: 5, matched: 4, unmatchedLive: 1, unmatchedShadow: 1, duplicateLive: 1, duplicateShadow: 0, feedback: 4, feedbackUnmatched: 1, labelledPairs: 3 });
    expect(report.shadowOutcomes).toMatchObject({ ok: 4, error: 1, timeout: 0, errorRate: 0.2, timeoutRate: 0 });
    expect(report.models).toEqual({ live: ['fraud@1'], shadow: ['fraud@2'] });
  });
  it('agreement at the threshold and score deltas over OK pairs', () => {
    expect(report.agreement).toMatchObject({ n: 3, bothPositive: 1, bothNegative: 1, liveOnly: 1, shadowOnly: 0 });
    expect(report.agreement.rate).toBeCloseTo(2 / 3, 10);
    expect(report.scoreDelta.mean).toBeCloseTo(-0.05 / 3, 10);
    expect(report.scoreDelta.median).toBeCloseTo(0.05, 10);
    expect(report.scoreDelta.meanAbs).toBeCloseTo(0.35 / 3, 10);
    expect(report.scoreDelta.maxAbs).toBeCloseTo(0.2, 10);
  });
  it('divergence of the score distributions (2 bins: live [1,2], shadow [2,1])', () => {
    expect(report.divergence.live).toEqual([1, 2]);
    expect(report.divergence.shadow).toEqual([2, 1]);
    expect(report.divergence.psi).toBeCloseTo((2 / 3) * Math.log(2), 4);
    expect(report.divergence.jensenShannon).toBeCloseTo(0.081704, 5);
  });
  it('metrics with labels and their deltas', () => {
    expect(report.metrics!.n).toBe(3);
    expect(report.metrics!.positives).toBe(2);
    expect(report.metrics!.live).toMatchObject({ rocAuc: 1, precision: 1, recall: 1 });
    expect(report.metrics!.shadow).toMatchObject({ rocAuc: 1, precision: 1, recall: 0.5 });
    expect(report.metrics!.deltas.recall.estimate).toBeCloseTo(-0.5, 10);
    expect(report.roc!.live[report.roc!.live.length - 1]).toEqual({ fpr: 1, tpr: 1 });
  });
  it('latency quantiles and deltas', () => {
    expect(report.latency.model.live).toMatchObject({ n: 3, p50: 2, p99: 3 });
    expect(report.latency.model.shadow).toMatchObject({ n: 4, p50: 20, p99: 40 });
    expect(report.latency.model.deltaP50).toBe(18);
    expect(report.latency.endToEnd.shadow.p50).toBe(300);
  });
  it('per-segment breakdown', () => {
    expect(report.segments.map((s) => [s.value, s.n, s.agreement, Number(s.meanDelta.toFixed(6))])).toEqual([
      ['GB', 1, 1, 0.05],
      ['US', 2, 0.5, -0.05],
    ]);
  });
  it('A/B between routes with a two-proportion z-test', () => {
    expect(report.abTest!.control).toBe('stable');
    expect(report.abTest!.routes.map((r) => [r.route, r.predictions, r.flaggedLabelled, r.truePositives, r.positives])).toEqual([
      ['candidate', 1, 1, 1, 1],
      ['stable', 4, 1, 1, 1],
    ]);
    expect(report.abTest!.tests.map((t) => [t.route, t.metric])).toEqual([['candidate', 'precision'], ['candidate', 'recall']]);
  });
  it('filters by ingest time range and serialises NaN as null', () => {
    const empty = buildReport({ live: [live('a', 0, 0, 0.2, 1)], shadow: [], from: 2000 });
    expect(empty.counts.live).toBe(0);
    expect(JSON.parse(reportJson(empty)).agreement.rate).toBeNull();
  });
});
