import type { Feedback, Prediction, ShadowPrediction } from '../../src/client/generated/avro-types';
import { Registry } from 'prom-client';
import { ShadowAgreement } from '../../src/monitoring/shadow-agreement';
import { fmt, renderHtml } from '../../src/shadow/html';
import { buildReport, NO_LABELS_NOTE, reportJson } from '../../src/shadow/report';
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

describe('report readability and consistency (issue 15)', () => {
  const base = (i: number, score: number, shadowScore: number, opts: { route?: string; ingest?: number; produced?: number; shadowProduced?: number } = {}) => {
    const p = { ...live(`k${i}`, i % 3, i, score, 1, opts.route ?? 'canary:stable'), ingestTime: opts.ingest ?? 1000 + i, producedTime: opts.produced ?? 1050 + i };
    const s = { ...shadow(`k${i}`, i % 3, i, shadowScore, 2), ingestTime: opts.ingest ?? 1000 + i, producedTime: opts.shadowProduced ?? 1060 + i };
    return { p, s };
  };

  it('says "no labels: quality metrics omitted" and gives a verdict that needs labels', () => {
    const pairs = Array.from({ length: 20 }, (_, i) => base(i, i / 20, i / 20 + 0.01));
    const r = buildReport({ live: pairs.map((x) => x.p), shadow: pairs.map((x) => x.s), options: { bootstrapIterations: 20 } });
    expect(r.metrics).toBeUndefined();
    expect(r.notes).toEqual([NO_LABELS_NOTE]);
    expect(r.verdict.decision).toBe('need-labels');
    expect(r.verdict.text).toContain('no labels: quality metrics omitted');
  });

  it('verdict: keep live when a metric interval lies below zero, promote when ROC AUC is better', () => {
    // Live ranks perfectly; the shadow inverts half the positives.
    const worse = Array.from({ length: 200 }, (_, i) => {
      const positive = i % 4 === 0;
      return { ...base(i, positive ? 0.9 : 0.1, positive && i % 8 === 0 ? 0.05 : positive ? 0.9 : 0.1), y: positive };
    });
    const fbs = worse.map((x) => fb(x.p.key, x.y));
    const keep = buildReport({ live: worse.map((x) => x.p), shadow: worse.map((x) => x.s), feedback: fbs, options: { bootstrapIterations: 100 } });
    expect(keep.verdict.decision).toBe('keep-live');
    expect(keep.verdict.text).toMatch(/^keep fraud@1: fraud@2 is worse on .*recall −0\.500/);
    // Swap the roles: the shadow is the perfect ranker.
    const better = worse.map((x) => ({ p: { ...x.p, score: x.s.score!, label: x.s.score! >= 0.5 }, s: { ...x.s, score: x.p.score, label: x.p.score >= 0.5 } }));
    const promote = buildReport({ live: better.map((x) => x.p), shadow: better.map((x) => x.s), feedback: fbs, options: { bootstrapIterations: 100 } });
    expect(promote.verdict.decision).toBe('promote');
    const failing = buildReport({ live: worse.map((x) => x.p), shadow: worse.map((x, i) => (i < 10 ? { ...x.s, status: 'TIMEOUT' as const, score: null, label: null } : x.s)), feedback: fbs, options: { bootstrapIterations: 20 } });
    expect(failing.verdict.decision).toBe('investigate');
    expect(failing.verdict.text).toContain('timeouts 10');
  });

  it('reports the shadow catch-up apart from its end-to-end latency', () => {
    // Events every 4 s from t=1 s; the shadow group starts at t=281 s: the 70 events before that waited
    // and are worked through 10 ms apart; later ones are scored 60 ms after ingestion.
    const pairs = Array.from({ length: 150 }, (_, i) => {
      const ingest = 1000 + i * 4000;
      return base(i, 0.2, 0.2, { ingest, produced: ingest + 20, shadowProduced: ingest < 281000 ? 281000 + i * 10 : ingest + 60 });
    });
    const r = buildReport({ live: pairs.map((x) => x.p), shadow: pairs.map((x) => x.s) });
    expect(r.shadowCatchUp).toEqual({ backlogRecords: 70, durationMs: 690, startedBehindMs: 280000, thresholdMs: 1000 });
    expect(r.latency.endToEnd.shadow).toMatchObject({ n: 80, p50: 60, p99: 60 });
    expect(r.latency.endToEnd.live.p99).toBe(20);
    const html = renderHtml(r);
    expect(html).toContain('70 records were waiting when it started (280 s behind); worked through in 0.69 s');
    expect(html).toContain('end to end: shadow (after catch-up)');
    // A shadow that kept up has no backlog.
    expect(buildReport({ live: pairs.slice(80).map((x) => x.p), shadow: pairs.slice(80).map((x) => x.s) }).shadowCatchUp.backlogRecords).toBe(0);
  });

  it('compares the shadow with one route only when asked (a canary arm serving the shadow\'s version is left out)', () => {
    const pairs = Array.from({ length: 40 }, (_, i) => base(i, 0.3, i % 10 === 0 ? 0.7 : 0.3, { route: i % 10 === 0 ? 'canary:candidate' : 'canary:stable' }));
    const all = buildReport({ live: pairs.map((x) => x.p), shadow: pairs.map((x) => x.s) });
    const control = buildReport({ live: pairs.map((x) => x.p), shadow: pairs.map((x) => x.s), options: { compareRoute: 'canary:stable' } });
    expect(all.counts.matched).toBe(40);
    expect(control.counts.matched).toBe(36);
    expect(control.agreement.rate).toBe(1);
    expect(all.agreement.rate).toBe(0.9);
    expect(control.sources.route).toBe('canary:stable');
  });

  it('agreement equals drift\'s online tributary_shadow_agreement_ratio on the same records (shadow decided at the live threshold)', () => {
    // The shadow's own threshold is 0.9 here; agreement still uses the live model's 0.5.
    const pairs = Array.from({ length: 300 }, (_, i) => base(i, (i * 37) % 100 / 100, ((i * 53) % 100) / 100));
    pairs.forEach((x) => (x.s = { ...x.s, threshold: 0.9, label: x.s.score! >= 0.9 }));
    const online = new ShadowAgreement(new Registry(), 1000);
    pairs.forEach((x) => {
      online.observeLive(x.p);
      online.observeShadow(x.s);
    });
    const r = buildReport({ live: pairs.map((x) => x.p), shadow: pairs.map((x) => x.s) });
    expect(r.agreement.rate).toBeCloseTo(online.ratio(), 12);
    expect(r.agreement.recent).toEqual({ window: 1000, n: 300, rate: r.agreement.rate });
    // Over a window smaller than the run, both keep the latest joins.
    const small = new ShadowAgreement(new Registry(), 100);
    pairs.forEach((x) => {
      small.observeLive(x.p);
      small.observeShadow(x.s);
    });
    expect(buildReport({ live: pairs.map((x) => x.p), shadow: pairs.map((x) => x.s), options: { agreementWindow: 100 } }).agreement.recent.rate).toBeCloseTo(small.ratio(), 12);
  });

  it('rounds numbers for reading', () => {
    expect([fmt(282087.123), fmt(123.456), fmt(12.345), fmt(1.2345), fmt(0.012345), fmt(0), fmt(NaN)]).toEqual(['282,087', '123', '12.3', '1.23', '0.0123', '0', '–']);
  });
});
