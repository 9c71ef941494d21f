import type { Feedback, Prediction, ShadowPrediction } from '../client/generated/avro-types';
import {
  bootstrap,
  calibration,
  classificationMetrics,
  expectedCalibrationError,
  histogram,
  jensenShannon,
  mean,
  psi,
  quantile,
  rocAuc,
  rocCurve,
  twoProportionZTest,
  type Interval,
  type MetricName,
  type ZTest,
} from '../util/stats';

export interface LineageRef {
  topic: string;
  partition: number;
  offset: number | bigint;
}

export const lineageKey = (l: LineageRef): string => `${l.topic}/${l.partition}/${String(l.offset)}`;

export interface ReportInput {
  live: Prediction[];
  shadow?: ShadowPrediction[];
  feedback?: Feedback[];
  /** Segment values (e.g. country, merchantCategory) of each input event, by lineage key. */
  segments?: Map<string, Record<string, string>>;
  segmentBy?: string[];
  /** Only events whose ingestTime is in [from, to) (ms). */
  from?: number;
  to?: number;
  sources?: Record<string, string>;
  options?: {
    bins?: number;
    bootstrapIterations?: number;
    seed?: number;
    alpha?: number;
    /** Predictions whose key has no feedback count as negatives (feedback carries only confirmed positives). */
    unlabelledAsNegative?: boolean;
    /** Decision threshold for agreement; default each record's own. */
    threshold?: number;
    /**
     * Compare the shadow only with live predictions of this route (e.g. a canary's control arm,
     * when a treatment arm serves the shadow's own version); the A/B table still covers every route.
     */
    compareRoute?: string;
    /** Window of the `agreement.recent` figure (default ONLINE_AGREEMENT_WINDOW, drift's). */
    agreementWindow?: number;
  };
}

export interface Quantiles {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface SegmentRow {
  by: string;
  value: string;
  n: number;
  agreement: number;
  meanDelta: number;
  livePositiveRate: number;
  shadowPositiveRate: number;
  labelled: number;
  liveRocAuc: number;
  shadowRocAuc: number;
}

export interface RouteRow {
  route: string;
  predictions: number;
  flagged: number;
  labelled: number;
  positives: number;
  truePositives: number;
  flaggedLabelled: number;
  precision: number;
  recall: number;
  models: string[];
}

export interface ShadowReport {
  generatedAt: string;
  range: { from?: string; to?: string };
  sources: Record<string, string>;
  models: { live: string[]; shadow: string[] };
  counts: {
    live: number;
    shadow: number;
    matched: number;
    unmatchedLive: number;
    unmatchedShadow: number;
    duplicateLive: number;
    duplicateShadow: number;
    feedback: number;
    feedbackUnmatched: number;
    labelledPairs: number;
  };
  shadowOutcomes: { ok: number; error: number; timeout: number; errorRate: number; timeoutRate: number; errors: { message: string; count: number }[] };
  /**
   * Decisions at the live threshold on both sides (the shadow's score against the live model's
   * threshold, as `tributary drift --shadow-topic` does), over OK matched pairs. `recent`: the same
   * over the last `window` pairs in join order, which is what drift's tributary_shadow_agreement_ratio
   * gauge shows (window 1000 there by default).
   */
  agreement: {
    n: number;
    rate: number;
    bothPositive: number;
    bothNegative: number;
    liveOnly: number;
    shadowOnly: number;
    liveThreshold: number;
    shadowThreshold: number;
    recent: { window: number; n: number; rate: number };
  };
  scoreDelta: { n: number; mean: number; median: number; p05: number; p95: number; meanAbs: number; maxAbs: number; histogram: { lo: number; hi: number; counts: number[] } };
  divergence: { bins: number; psi: number; jensenShannon: number; live: number[]; shadow: number[] };
  metrics?: { n: number; positives: number; live: Record<MetricName, number>; shadow: Record<MetricName, number>; deltas: Record<MetricName, Interval> };
  calibration?: { live: ReturnType<typeof calibration>; shadow: ReturnType<typeof calibration>; eceLive: number; eceShadow: number };
  roc?: { live: { fpr: number; tpr: number }[]; shadow: { fpr: number; tpr: number }[] };
  /**
   * model: the model call alone (each record's latencyMs). endToEnd: input record in Kafka -> output
   * record produced; for the shadow only once its consumer group had caught up (see shadowCatchUp),
   * so a backlog it started behind is not mistaken for latency.
   */
  latency: { model: { live: Quantiles; shadow: Quantiles; deltaP50: number; deltaP99: number }; endToEnd: { live: Quantiles; shadow: Quantiles } };
  /**
   * The shadow's start behind the live log: records already waiting when it produced its first
   * output (ingested more than `thresholdMs` = max(1 s, 2 x live end-to-end p99) before it), how far
   * behind it started, and how long it took to work through them.
   */
  shadowCatchUp: { backlogRecords: number; durationMs: number; startedBehindMs: number; thresholdMs: number };
  segments: SegmentRow[];
  abTest?: { control: string; routes: RouteRow[]; tests: { route: string; metric: 'precision' | 'recall'; test: ZTest }[] };
  /** Why a section is absent, e.g. `no labels: quality metrics omitted`. */
  notes: string[];
  /** One line for people: what the numbers say about the shadow, and the action it suggests. */
  verdict: { decision: 'promote' | 'keep-live' | 'no-difference' | 'investigate' | 'need-labels'; text: string };
}

/** The note a report carries when it has no labels to compute quality metrics with. */
export const NO_LABELS_NOTE = 'no labels: quality metrics omitted';

/** Default window of drift's online agreement gauge (ShadowAgreement). */
export const ONLINE_AGREEMENT_WINDOW = 1000;

function q(values: number[]): Quantiles {
  return { n: values.length, mean: mean(values), p50: quantile(values, 0.5), p95: quantile(values, 0.95), p99: quantile(values, 0.99) };
}

/** Keeps the first record per lineage; counts the rest as duplicates. */
function byLineage<T extends { lineage: LineageRef }>(records: T[]): { map: Map<string, T>; duplicates: number } {
  const map = new Map<string, T>();
  let duplicates = 0;
  for (const r of records) {
    const k = lineageKey(r.lineage);
    if (map.has(k)) duplicates++;
    else map.set(k, r);
  }
  return { map, duplicates };
}

/** Evenly thins a curve to at most `max` points (keeps the ends). */
function thin<T>(points: T[], max = 200): T[] {
  if (points.length <= max) return points;
  const step = (points.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => points[Math.round(i * step)]);
}

/**
 * The offline comparison of a live prediction log with a shadow log (joined exactly on input
 * lineage), optionally with later labels (feedback, joined by key) and per-segment values of the
 * input events. Pure: the CLI reads the topics, this computes.
 */
export function buildReport(input: ReportInput): ShadowReport {
  const opt = input.options ?? {};
  const bins = opt.bins ?? 20;
  const inRange = (t: number) => (input.from === undefined || t >= input.from) && (input.to === undefined || t < input.to);
  const liveAll = input.live.filter((p) => inRange(p.ingestTime));
  const shadowAll = (input.shadow ?? []).filter((s) => inRange(s.ingestTime));
  const live = byLineage(opt.compareRoute === undefined ? liveAll : liveAll.filter((p) => p.route === opt.compareRoute));
  const shadow = byLineage(shadowAll);

  // Labels: the latest feedback per key.
  const labels = new Map<string, Feedback>();
  for (const f of input.feedback ?? []) {
    const prev = labels.get(f.key);
    if (!prev || f.labelTime >= prev.labelTime) labels.set(f.key, f);
  }
  const liveKeys = new Set([...live.map.values()].map((p) => p.key));
  const labelOf = (key: string): number | undefined => {
    const f = labels.get(key);
    if (f) return f.label ? 1 : 0;
    return opt.unlabelledAsNegative && labels.size > 0 ? 0 : undefined;
  };

  const pairs: { live: Prediction; shadow: ShadowPrediction; lk: string }[] = [];
  for (const [k, s] of shadow.map) {
    const p = live.map.get(k);
    if (p) pairs.push({ live: p, shadow: s, lk: k });
  }
  const ok = pairs.filter((p) => p.shadow.status === 'OK' && p.shadow.score !== null);
  const liveThreshold = opt.threshold ?? ok[0]?.live.threshold ?? liveAll[0]?.threshold ?? 0.5;
  const shadowThreshold = opt.threshold ?? ok[0]?.shadow.threshold ?? liveThreshold;
  const livePos = (p: Prediction) => (opt.threshold !== undefined ? p.score >= opt.threshold : p.label);
  const shadowPos = (s: ShadowPrediction) => (opt.threshold !== undefined ? s.score! >= opt.threshold : (s.label ?? s.score! >= s.threshold));
  // Agreement: would the shadow have decided as the live model did, at the live model's threshold.
  const shadowPosAtLive = (s: ShadowPrediction, p: Prediction) => s.score! >= (opt.threshold ?? p.threshold);
  const agrees = (p: { live: Prediction; shadow: ShadowPrediction }) => livePos(p.live) === shadowPosAtLive(p.shadow, p.live);

  let bothPositive = 0, bothNegative = 0, liveOnly = 0, shadowOnly = 0;
  for (const p of ok) {
    const a = livePos(p.live), b = shadowPosAtLive(p.shadow, p.live);
    if (a && b) bothPositive++;
    else if (!a && !b) bothNegative++;
    else if (a) liveOnly++;
    else shadowOnly++;
  }
  const deltas = ok.map((p) => p.shadow.score! - p.live.score);
  const absDeltas = deltas.map(Math.abs);
  const liveScores = ok.map((p) => p.live.score);
  const shadowScores = ok.map((p) => p.shadow.score!);
  const liveHist = histogram(liveScores, bins);
  const shadowHist = histogram(shadowScores, bins);
  const deltaRange = Math.max(0.05, quantile(absDeltas, 1) || 0);

  const liveE2e = q([...live.map.values()].map((p) => p.producedTime - p.ingestTime));
  const catchUp = shadowCatchUp([...shadow.map.values()], liveE2e.p99);

  // Outcomes of the shadow.
  const statusCount = (s: string) => shadowAll.filter((r) => r.status === s).length;
  const errorCounts = new Map<string, number>();
  for (const r of shadowAll) if (r.status !== 'OK') errorCounts.set(r.error ?? r.status, (errorCounts.get(r.error ?? r.status) ?? 0) + 1);
  const nShadow = shadowAll.length;

  const report: ShadowReport = {
    generatedAt: new Date().toISOString(),
    range: { from: input.from !== undefined ? new Date(input.from).toISOString() : undefined, to: input.to !== undefined ? new Date(input.to).toISOString() : undefined },
    sources: { ...(input.sources ?? {}), ...(opt.compareRoute !== undefined ? { route: opt.compareRoute } : {}) },
    models: {
      live: [...new Set([...live.map.values()].map((p) => `${p.modelName}@${p.modelVersion}`))].sort(),
      shadow: [...new Set(shadowAll.map((s) => `${s.modelName}@${s.modelVersion}`))].sort(),
    },
    counts: {
      live: live.map.size,
      shadow: shadow.map.size,
      matched: pairs.length,
      unmatchedLive: input.shadow ? live.map.size - pairs.length : 0,
      unmatchedShadow: shadow.map.size - pairs.length,
      duplicateLive: live.duplicates,
      duplicateShadow: shadow.duplicates,
      feedback: labels.size,
      feedbackUnmatched: [...labels.keys()].filter((k) => !liveKeys.has(k)).length,
      labelledPairs: ok.filter((p) => labelOf(p.live.key) !== undefined).length,
    },
    shadowOutcomes: {
      ok: statusCount('OK'),
      error: statusCount('ERROR'),
      timeout: statusCount('TIMEOUT'),
      errorRate: nShadow ? statusCount('ERROR') / nShadow : NaN,
      timeoutRate: nShadow ? statusCount('TIMEOUT') / nShadow : NaN,
      errors: [...errorCounts].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count).slice(0, 10),
    },
    agreement: {
      n: ok.length,
      rate: ok.length ? (bothPositive + bothNegative) / ok.length : NaN,
      bothPositive,
      bothNegative,
      liveOnly,
      shadowOnly,
      liveThreshold,
      shadowThreshold: liveThreshold,
      recent: recentAgreement(ok, agrees, opt.agreementWindow ?? ONLINE_AGREEMENT_WINDOW),
    },
    scoreDelta: {
      n: deltas.length,
      mean: mean(deltas),
      median: quantile(deltas, 0.5),
      p05: quantile(deltas, 0.05),
      p95: quantile(deltas, 0.95),
      meanAbs: mean(absDeltas),
      maxAbs: quantile(absDeltas, 1),
      histogram: { lo: -deltaRange, hi: deltaRange, counts: histogram(deltas, bins, -deltaRange, deltaRange) },
    },
    divergence: { bins, psi: ok.length ? psi(liveHist, shadowHist) : NaN, jensenShannon: jensenShannon(liveHist, shadowHist), live: liveHist, shadow: shadowHist },
    latency: {
      model: {
        live: q(ok.map((p) => p.live.latencyMs).filter((x): x is number => typeof x === 'number')),
        shadow: q(shadowAll.filter((s) => s.status === 'OK').map((s) => s.latencyMs)),
        deltaP50: NaN,
        deltaP99: NaN,
      },
      endToEnd: { live: liveE2e, shadow: q(catchUp.steady) },
    },
    shadowCatchUp: catchUp.summary,
    segments: [],
    notes: [],
    verdict: { decision: 'need-labels', text: '' },
  };
  report.latency.model.deltaP50 = report.latency.model.shadow.p50 - report.latency.model.live.p50;
  report.latency.model.deltaP99 = report.latency.model.shadow.p99 - report.latency.model.live.p99;

  // Metrics on labelled pairs, with paired bootstrap intervals of the deltas.
  const labelled = ok.map((p) => ({ ...p, y: labelOf(p.live.key) })).filter((p): p is typeof p & { y: number } => p.y !== undefined);
  const positives = labelled.filter((p) => p.y === 1).length;
  if (labelled.length > 0) {
    const ys = labelled.map((p) => p.y);
    const ls = labelled.map((p) => p.live.score);
    const ss = labelled.map((p) => p.shadow.score!);
    const lm = classificationMetrics(ls, ys, liveThreshold);
    const sm = classificationMetrics(ss, ys, shadowThreshold);
    const names: MetricName[] = ['rocAuc', 'precision', 'recall', 'f1', 'accuracy'];
    const deltasCi = {} as Record<MetricName, Interval>;
    names.forEach((m, i) => {
      deltasCi[m] = bootstrap(
        labelled.length,
        (idx) => {
          const y = idx.map((j) => ys[j]);
          const a = classificationMetrics(idx.map((j) => ls[j]), y, liveThreshold)[m];
          const b = classificationMetrics(idx.map((j) => ss[j]), y, shadowThreshold)[m];
          return b - a;
        },
        { iterations: opt.bootstrapIterations ?? 300, seed: (opt.seed ?? 7) + i, alpha: opt.alpha ?? 0.05 },
      );
    });
    report.metrics = { n: labelled.length, positives, live: lm, shadow: sm, deltas: deltasCi };
    const cl = calibration(ls, ys);
    const cs = calibration(ss, ys);
    report.calibration = { live: cl, shadow: cs, eceLive: expectedCalibrationError(cl), eceShadow: expectedCalibrationError(cs) };
    if (positives > 0 && positives < labelled.length) report.roc = { live: thin(rocCurve(ls, ys)), shadow: thin(rocCurve(ss, ys)) };
  } else report.notes.push(NO_LABELS_NOTE);

  // Per-segment breakdown.
  if (input.segments && input.segmentBy) {
    for (const by of input.segmentBy) {
      const groups = new Map<string, typeof ok>();
      for (const p of ok) {
        const v = input.segments.get(p.lk)?.[by] ?? '(unknown)';
        (groups.get(v) ?? groups.set(v, []).get(v)!).push(p);
      }
      for (const [value, list] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
        const lab = list.map((p) => ({ p, y: labelOf(p.live.key) })).filter((x) => x.y !== undefined) as { p: (typeof ok)[number]; y: number }[];
        report.segments.push({
          by,
          value,
          n: list.length,
          agreement: list.filter(agrees).length / list.length,
          meanDelta: mean(list.map((p) => p.shadow.score! - p.live.score)),
          livePositiveRate: list.filter((p) => livePos(p.live)).length / list.length,
          shadowPositiveRate: list.filter((p) => shadowPos(p.shadow)).length / list.length,
          labelled: lab.length,
          liveRocAuc: rocAuc(lab.map((x) => x.p.live.score), lab.map((x) => x.y)),
          shadowRocAuc: rocAuc(lab.map((x) => x.p.shadow.score!), lab.map((x) => x.y)),
        });
      }
    }
  }

  // A/B between routes of the live log (canary, A/B, bandit arms), on feedback.
  const routes = [...new Set(liveAll.map((p) => p.route).filter((r): r is string => typeof r === 'string'))].sort();
  if (routes.length >= 2 && labels.size > 0) {
    const allLive = byLineage(liveAll).map;
    const rows: RouteRow[] = routes.map((route) => {
      const ps = [...allLive.values()].filter((p) => p.route === route);
      const withLabel = ps.map((p) => ({ p, y: labelOf(p.key) })).filter((x) => x.y !== undefined);
      const flaggedLabelled = withLabel.filter((x) => x.p.label).length;
      const truePositives = withLabel.filter((x) => x.p.label && x.y === 1).length;
      const pos = withLabel.filter((x) => x.y === 1).length;
      return {
        route,
        predictions: ps.length,
        flagged: ps.filter((p) => p.label).length,
        labelled: withLabel.length,
        positives: pos,
        truePositives,
        flaggedLabelled,
        precision: flaggedLabelled ? truePositives / flaggedLabelled : NaN,
        recall: pos ? truePositives / pos : NaN,
        models: [...new Set(ps.map((p) => `${p.modelName}@${p.modelVersion}`))],
      };
    });
    const control = rows.reduce((a, b) => (b.predictions > a.predictions ? b : a));
    const tests: NonNullable<ShadowReport['abTest']>['tests'] = [];
    for (const r of rows) {
      if (r === control) continue;
      tests.push({ route: r.route, metric: 'precision', test: twoProportionZTest(control.truePositives, control.flaggedLabelled, r.truePositives, r.flaggedLabelled, opt.alpha ?? 0.05) });
      tests.push({ route: r.route, metric: 'recall', test: twoProportionZTest(control.truePositives, control.positives, r.truePositives, r.positives, opt.alpha ?? 0.05) });
    }
    report.abTest = { control: control.route, routes: rows, tests };
  }
  report.verdict = verdict(report);
  return report;
}

/** Agreement over the last `window` OK pairs in join order (the later of the two records' production). */
function recentAgreement<T extends { live: Prediction; shadow: ShadowPrediction }>(pairs: T[], agrees: (p: T) => boolean, window: number): { window: number; n: number; rate: number } {
  const last = [...pairs].sort((a, b) => Math.max(a.live.producedTime, a.shadow.producedTime) - Math.max(b.live.producedTime, b.shadow.producedTime)).slice(-window);
  return { window, n: last.length, rate: last.length ? last.filter(agrees).length / last.length : NaN };
}

/**
 * Splits the shadow's records into the backlog it found when it started — records ingested more
 * than `thresholdMs` before its first output, which waited for the shadow group to exist (e.g. a
 * new group reading the topic from the beginning) — and the rest, whose end-to-end latencies are
 * returned as the steady state. `durationMs`: from its first output to the last backlog record.
 */
export function shadowCatchUp(records: ShadowPrediction[], liveE2eP99: number): { steady: number[]; summary: ShadowReport['shadowCatchUp'] } {
  const thresholdMs = Math.max(1000, Number.isFinite(liveE2eP99) ? 2 * liveE2eP99 : 0);
  if (records.length === 0) return { steady: [], summary: { backlogRecords: 0, durationMs: 0, startedBehindMs: 0, thresholdMs } };
  const firstOut = records.reduce((m, s) => Math.min(m, s.producedTime), Infinity);
  const earliestIngest = records.reduce((m, s) => Math.min(m, s.ingestTime), Infinity);
  const waited = (s: ShadowPrediction) => s.ingestTime < firstOut - thresholdMs;
  const backlog = records.filter(waited);
  return {
    steady: records.filter((s) => !waited(s)).map((s) => s.producedTime - s.ingestTime),
    summary: {
      backlogRecords: backlog.length,
      durationMs: backlog.length ? backlog.reduce((m, s) => Math.max(m, s.producedTime), -Infinity) - firstOut : 0,
      startedBehindMs: backlog.length ? firstOut - earliestIngest : 0,
      thresholdMs,
    },
  };
}

/**
 * The verdict line. Errors/timeouts above 1% come first (the numbers are then biased); with
 * labels, a metric whose paired-bootstrap interval lies wholly below zero means keep the live
 * model, ROC AUC wholly above zero with nothing worse means the shadow is a promotion candidate,
 * otherwise no significant difference; without labels only agreement and divergence can be said.
 */
export function verdict(r: ShadowReport): ShadowReport['verdict'] {
  const shadowName = r.models.shadow.join(', ') || 'the shadow';
  const liveName = r.models.live.join(', ') || 'live';
  const pctText = (x: number) => `${(100 * x).toFixed(1)}%`;
  const failRate = (r.shadowOutcomes.errorRate || 0) + (r.shadowOutcomes.timeoutRate || 0);
  if (r.counts.matched === 0) return { decision: 'investigate', text: `${shadowName}: no shadow record matched a live one; check that the shadow stage ran over this range` };
  if (failRate > 0.01) return { decision: 'investigate', text: `${shadowName} failed on ${pctText(failRate)} of its inputs (errors ${r.shadowOutcomes.error}, timeouts ${r.shadowOutcomes.timeout}): fix that before comparing` };
  const agreeText = `agrees with ${liveName} on ${pctText(r.agreement.rate)} of ${r.agreement.n} decisions, PSI ${r.divergence.psi.toFixed(3)}`;
  if (!r.metrics) return { decision: 'need-labels', text: `${shadowName} ${agreeText}; ${NO_LABELS_NOTE}, so no quality verdict: add --feedback` };
  const names = ['rocAuc', 'precision', 'recall'] as const;
  const worse = names.filter((m) => r.metrics!.deltas[m].high < 0);
  const better = names.filter((m) => r.metrics!.deltas[m].low > 0);
  const show = (ms: readonly string[]) => ms.map((m) => `${m} ${signed(r.metrics!.deltas[m as (typeof names)[number]].estimate)}`).join(', ');
  const n = `${r.metrics.n} labelled events, ${r.metrics.positives} positive`;
  if (worse.length > 0) return { decision: 'keep-live', text: `keep ${liveName}: ${shadowName} is worse on ${show(worse)} (95% intervals below 0, ${n})${better.length ? `, better on ${show(better)}` : ''}; it ${agreeText}` };
  if (better.includes('rocAuc')) return { decision: 'promote', text: `${shadowName} is a promotion candidate: better on ${show(better)} (95% intervals above 0, ${n}), worse on nothing; it ${agreeText}` };
  return { decision: 'no-difference', text: `no significant difference between ${shadowName} and ${liveName} on ${n}${better.length ? ` (better on ${show(better)})` : ''}; it ${agreeText}` };
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
}

/** JSON with NaN/Infinity as null. */
export function reportJson(report: ShadowReport): string {
  return `${JSON.stringify(report, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}
