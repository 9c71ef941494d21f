import { Counter, Gauge, Registry, register as defaultRegistry } from 'prom-client';
import type { ModelCard } from '../inference/model-card';
import { TributaryError } from '../util/errors';
import { adjustPValues, gTest, jsDivergence, percentileCdf, psi, smoothObserved, smoothReference, type Correction } from './drift-stats';
import { QuantileSketch } from './quantile-sketch';

/** Numeric column: bins (-inf, e1], (e1, e2], ..., (ek, +inf) at the training deciles. */
export interface NumericProfile {
  kind: 'numeric';
  edges: number[];
  frequencies: number[];
  /** 0..100th training percentiles (reference CDF for the KS check). */
  percentiles: number[];
}

/** Categorical column: top-K values with their training frequencies, plus "other". */
export interface CategoricalProfile {
  kind: 'categorical';
  values: number[];
  frequencies: number[];
  otherFrequency: number;
}

export type ColumnProfile = NumericProfile | CategoricalProfile;

/** `monitoring.baseline` of a model card (written by models/train/baseline.py). */
export interface BaselineProfile {
  source: string;
  rows: number;
  features: Record<string, ColumnProfile>;
  score: NumericProfile;
}

export class MissingBaselineError extends TributaryError {}

/** The card's baseline, checked to cover every feature the model takes. */
export function readBaseline(card: ModelCard): BaselineProfile {
  const b = (card.monitoring as { baseline?: BaselineProfile } | undefined)?.baseline;
  if (!b || !b.features || !b.score) {
    throw new MissingBaselineError(`model ${card.name}@${card.version} has no monitoring.baseline in its card (write one: .venv/bin/python models/train/baseline.py --version ${card.version})`);
  }
  const missing = card.features.names.filter((n) => !b.features[n]);
  if (missing.length > 0) throw new MissingBaselineError(`model ${card.name}@${card.version}: baseline lacks features ${missing.join(', ')}`);
  return b;
}

/** Index of x's bin under a profile (the same rule the baseline script used). */
export function binOf(p: ColumnProfile, x: number): number {
  if (p.kind === 'categorical') {
    const i = p.values.indexOf(x);
    return i < 0 ? p.values.length : i;
  }
  // first edge >= x
  let lo = 0;
  let hi = p.edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (p.edges[mid] >= x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function referenceFrequencies(p: ColumnProfile): number[] {
  return p.kind === 'categorical' ? [...p.frequencies, p.otherFrequency] : p.frequencies;
}

export type DriftLevel = 'OK' | 'WARN' | 'ALERT';
export type DriftScope = 'FEATURES' | 'SCORE';

export interface DriftConfig {
  /** A window closes after this many events (tumbling by count; default 5000)... */
  windowEvents?: number;
  /** ...or after this long with at least `minEvents` (default 60 s). */
  windowMs?: number;
  /** Fewer events than this are not evaluated (the window keeps filling; default 500). */
  minEvents?: number;
  psiWarn?: number;
  psiAlert?: number;
  /** KS statistic thresholds (numeric features and the score). */
  ksWarn?: number;
  ksAlert?: number;
  /** Significance level for the corrected p-values (default 0.01). */
  alpha?: number;
  correction?: Correction;
  /** KLL sketch size per numeric column (default 200). */
  sketchK?: number;
}

export const DRIFT_DEFAULTS: Required<DriftConfig> = {
  windowEvents: 5000,
  windowMs: 60000,
  minEvents: 500,
  psiWarn: 0.1,
  psiAlert: 0.25,
  ksWarn: 0.1,
  ksAlert: 0.2,
  alpha: 0.01,
  correction: 'benjamini-hochberg',
  sketchK: 200,
};

export interface FeatureDrift {
  feature: string;
  kind: 'numeric' | 'categorical';
  psi: number;
  jsDivergence: number;
  /** Approximate KS statistic (numeric columns): the sketch's CDF against the baseline percentiles. */
  ks: number | null;
  /** G-test p-value of the window's bin counts against the baseline frequencies. */
  pValue: number;
  adjustedPValue: number;
  level: DriftLevel;
}

export interface DriftReport {
  scope: DriftScope;
  level: DriftLevel;
  windowStart: number;
  windowEnd: number;
  windowEvents: number;
  features: FeatureDrift[];
  /** WARN/ALERT features, worst first. */
  driftedFeatures: string[];
}

interface Column {
  name: string;
  profile: ColumnProfile;
  expected: number[];
  counts: number[];
  sketch?: QuantileSketch;
}

const LEVEL_RANK: Record<DriftLevel, number> = { OK: 0, WARN: 1, ALERT: 2 };

/** Tumbling window of bin counts (and quantile sketches) over a set of columns. */
export class DriftWindow {
  private readonly columns: Column[];
  private n = 0;
  private startedAt: number;

  constructor(
    readonly scope: DriftScope,
    columns: { name: string; profile: ColumnProfile }[],
    private readonly config: Required<DriftConfig>,
    now = Date.now(),
  ) {
    this.columns = columns.map((c) => ({ ...c, expected: smoothReference(referenceFrequencies(c.profile)), counts: [], sketch: undefined }));
    this.startedAt = now;
    this.reset(now);
  }

  get events(): number {
    return this.n;
  }

  /** One row, values in column order. Returns the report when this row closes the window. */
  add(row: ArrayLike<number>, now = Date.now()): DriftReport | undefined {
    for (let j = 0; j < this.columns.length; j++) {
      const c = this.columns[j];
      const x = row[j];
      c.counts[binOf(c.profile, x)] += 1;
      c.sketch?.add(x);
    }
    this.n += 1;
    return this.n >= this.config.windowEvents ? this.close(now) : undefined;
  }

  /** Closes the window when its time is up and it has enough events. */
  tick(now = Date.now()): DriftReport | undefined {
    return now - this.startedAt >= this.config.windowMs && this.n >= this.config.minEvents ? this.close(now) : undefined;
  }

  /** Evaluates the current contents without closing (status views). */
  evaluate(now = Date.now()): DriftReport {
    const cfg = this.config;
    const raw = this.columns.map((c) => {
      const observed = smoothObserved(c.counts);
      const test = gTest(c.counts, c.expected);
      let ks: number | null = null;
      if (c.sketch && c.profile.kind === 'numeric') {
        const pct = c.profile.percentiles;
        let d = 0;
        for (const x of [...c.sketch.points(), ...pct]) d = Math.max(d, Math.abs(c.sketch.cdf(x) - percentileCdf(pct, x)));
        ks = d;
      }
      return { c, psi: psi(observed, c.expected), js: jsDivergence(observed, c.expected), ks, pValue: test.pValue };
    });
    const adjusted = adjustPValues(raw.map((r) => r.pValue), cfg.correction);
    const features: FeatureDrift[] = raw.map((r, i) => {
      const significant = adjusted[i] < cfg.alpha;
      const ks = r.ks ?? 0;
      const level: DriftLevel = !significant ? 'OK' : r.psi >= cfg.psiAlert || ks >= cfg.ksAlert ? 'ALERT' : r.psi >= cfg.psiWarn || ks >= cfg.ksWarn ? 'WARN' : 'OK';
      return { feature: r.c.name, kind: r.c.profile.kind, psi: r.psi, jsDivergence: r.js, ks: r.ks, pValue: r.pValue, adjustedPValue: adjusted[i], level };
    });
    const drifted = features.filter((f) => f.level !== 'OK').sort((a, b) => LEVEL_RANK[b.level] - LEVEL_RANK[a.level] || b.psi - a.psi);
    const level = drifted.length === 0 ? 'OK' : drifted[0].level;
    return { scope: this.scope, level, windowStart: this.startedAt, windowEnd: now, windowEvents: this.n, features, driftedFeatures: drifted.map((f) => f.feature) };
  }

  private close(now: number): DriftReport {
    const report = this.evaluate(now);
    this.reset(now);
    return report;
  }

  private reset(now: number): void {
    this.n = 0;
    this.startedAt = now;
    for (const c of this.columns) {
      c.counts = new Array(referenceFrequencies(c.profile).length).fill(0);
      c.sketch = c.profile.kind === 'numeric' ? new QuantileSketch(this.config.sketchK) : undefined;
    }
  }
}

type L = 'model' | 'version' | 'feature';

/** Drift metrics, one set per prom-client registry. */
export class DriftMetrics {
  readonly psi: Gauge<L>;
  readonly js: Gauge<L>;
  readonly ks: Gauge<L>;
  readonly pValue: Gauge<L>;
  readonly level: Gauge<L>;
  readonly windows: Counter<'model' | 'version' | 'scope' | 'level'>;
  readonly alerts: Counter<'model' | 'version' | 'scope' | 'level'>;
  readonly events: Counter<'model' | 'version' | 'scope'>;
  readonly ignored: Counter<'model' | 'reason'>;
  readonly windowFill: Gauge<'model' | 'version' | 'scope'>;
  readonly lastWindow: Gauge<'model' | 'version' | 'scope'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    const labelNames: L[] = ['model', 'version', 'feature'];
    this.psi = new Gauge({ name: 'tributary_drift_psi', help: 'Population stability index of the last closed window vs the training baseline (feature="_score" for the score)', labelNames, registers });
    this.js = new Gauge({ name: 'tributary_drift_js_divergence', help: 'Jensen-Shannon divergence (bits) of the last closed window vs the baseline bins', labelNames, registers });
    this.ks = new Gauge({ name: 'tributary_drift_ks_statistic', help: 'Approximate KS statistic (quantile sketch vs baseline percentiles) of the last closed window, numeric features', labelNames, registers });
    this.pValue = new Gauge({ name: 'tributary_drift_adjusted_p_value', help: 'G-test p-value of the last closed window after the multiple-testing correction across features', labelNames, registers });
    this.level = new Gauge({ name: 'tributary_drift_level', help: 'Drift level of the last closed window: 0 ok, 1 warn, 2 alert', labelNames, registers });
    this.windows = new Counter({ name: 'tributary_drift_windows_total', help: 'Closed drift windows by worst level', labelNames: ['model', 'version', 'scope', 'level'], registers });
    this.alerts = new Counter({ name: 'tributary_drift_alerts_total', help: 'Drift alert events published (windows at WARN or ALERT)', labelNames: ['model', 'version', 'scope', 'level'], registers });
    this.events = new Counter({ name: 'tributary_drift_events_total', help: 'Feature vectors / scores counted into drift windows', labelNames: ['model', 'version', 'scope'], registers });
    this.ignored = new Counter({ name: 'tributary_drift_ignored_total', help: 'Records the drift monitor skipped (other model version, other feature set, undecodable)', labelNames: ['model', 'reason'], registers });
    this.windowFill = new Gauge({ name: 'tributary_drift_window_events', help: 'Events in the open drift window', labelNames: ['model', 'version', 'scope'], registers });
    this.lastWindow = new Gauge({ name: 'tributary_drift_last_window_timestamp_seconds', help: 'When the last drift window closed', labelNames: ['model', 'version', 'scope'], registers });
  }

  private static readonly byRegistry = new WeakMap<Registry, DriftMetrics>();

  static for(registry: Registry = defaultRegistry): DriftMetrics {
    let m = DriftMetrics.byRegistry.get(registry);
    if (!m) {
      m = new DriftMetrics(registry);
      DriftMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}

export const SCORE_FEATURE = '_score';

/**
 * Drift of one model version: a feature window (all the card's features, multiple-testing
 * corrected together) and a score window, each tumbling by count or time, compared with the
 * card's training baseline. Closed windows update the metrics and come back as reports.
 */
export class DriftMonitor {
  readonly baseline: BaselineProfile;
  readonly config: Required<DriftConfig>;
  readonly features: DriftWindow;
  readonly score: DriftWindow;
  private readonly metrics?: DriftMetrics;
  private readonly names: string[];
  private readonly orderCache = new Map<string, number[] | null>();
  readonly last: Partial<Record<DriftScope, DriftReport>> = {};

  constructor(
    readonly card: ModelCard,
    config: DriftConfig = {},
    registry?: Registry,
    now = Date.now(),
  ) {
    this.baseline = readBaseline(card);
    this.config = { ...DRIFT_DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
    this.names = card.features.names;
    this.features = new DriftWindow('FEATURES', this.names.map((name) => ({ name, profile: this.baseline.features[name] })), this.config, now);
    this.score = new DriftWindow('SCORE', [{ name: SCORE_FEATURE, profile: this.baseline.score }], this.config, now);
    this.metrics = registry ? DriftMetrics.for(registry) : undefined;
  }

  private get labels() {
    return { model: this.card.name, version: this.card.version };
  }

  /**
   * Counts one feature vector (values named by `names`, any order that covers the card's features).
   * Returns null when the names do not cover the model's features.
   */
  observeVector(names: readonly string[], values: readonly number[], now = Date.now()): DriftReport | undefined | null {
    const key = names.join('\u0000');
    let order = this.orderCache.get(key);
    if (order === undefined) {
      const idx = this.names.map((n) => names.indexOf(n));
      order = idx.some((i) => i < 0) ? null : idx;
      this.orderCache.set(key, order);
    }
    if (order === null) {
      this.metrics?.ignored.inc({ model: this.card.name, reason: 'feature_names' });
      return null;
    }
    const row = order.map((i) => values[i]);
    this.metrics?.events.inc({ ...this.labels, scope: 'FEATURES' });
    const r = this.features.add(row, now);
    this.metrics?.windowFill.set({ ...this.labels, scope: 'FEATURES' }, this.features.events);
    return r && this.record(r, now);
  }

  observeScore(score: number, now = Date.now()): DriftReport | undefined {
    this.metrics?.events.inc({ ...this.labels, scope: 'SCORE' });
    const r = this.score.add([score], now);
    this.metrics?.windowFill.set({ ...this.labels, scope: 'SCORE' }, this.score.events);
    return r && this.record(r, now);
  }

  /** Time-based closes. */
  tick(now = Date.now()): DriftReport[] {
    return [this.features.tick(now), this.score.tick(now)].filter((r): r is DriftReport => r !== undefined).map((r) => this.record(r, now));
  }

  private record(r: DriftReport, now: number): DriftReport {
    this.last[r.scope] = r;
    const m = this.metrics;
    if (m) {
      for (const f of r.features) {
        const l = { ...this.labels, feature: f.feature };
        m.psi.set(l, f.psi);
        m.js.set(l, f.jsDivergence);
        if (f.ks !== null) m.ks.set(l, f.ks);
        m.pValue.set(l, f.adjustedPValue);
        m.level.set(l, LEVEL_RANK[f.level]);
      }
      m.windows.inc({ ...this.labels, scope: r.scope, level: r.level });
      m.lastWindow.set({ ...this.labels, scope: r.scope }, now / 1000);
      m.windowFill.set({ ...this.labels, scope: r.scope }, 0);
    }
    return r;
  }

  countAlert(r: DriftReport): void {
    this.metrics?.alerts.inc({ ...this.labels, scope: r.scope, level: r.level });
  }
}
