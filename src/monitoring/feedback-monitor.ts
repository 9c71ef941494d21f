import { Counter, Gauge, type Registry } from 'prom-client';

export interface FeedbackConfig {
  /** Rolling window: the latest this many labelled predictions (default 5000). */
  labelledWindow?: number;
  /** Rolling window of predictions for the confident share (default 5000). */
  predictionWindow?: number;
  /** A prediction is confident when its score is <= low or >= high (defaults 0.1 / 0.9). */
  confidentLow?: number;
  confidentHigh?: number;
  /** Predictions (and early labels) kept waiting for their counterpart (default 200000 each; oldest dropped). */
  maxPending?: number;
}

export interface FeedbackSnapshot {
  labelled: number;
  precision: number | null;
  recall: number | null;
  rocAuc: number | null;
  /** Of the recent predictions, the share with a confident score. */
  confidentShare: number | null;
  /** Of the labelled predictions in the window, the share whose label the feedback contradicts. */
  correctedShare: number | null;
}

interface Scored {
  score: number;
  predicted: boolean;
}

/** ROC AUC by ranks (Mann-Whitney U, ties averaged); null without both classes. */
export function rocAuc(scores: readonly number[], labels: readonly boolean[]): number | null {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[idx[k]]) {
      pos++;
      rankSum += avg;
    }
    i = j + 1;
  }
  const neg = idx.length - pos;
  if (pos === 0 || neg === 0) return null;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * Feedback-based monitoring of one model version: predictions joined with labels that arrive later
 * (feedback topic, keyed by the event key; either side may come first), over rolling windows.
 */
export class FeedbackMonitor {
  private readonly cfg: Required<FeedbackConfig>;
  private readonly pending = new Map<string, Scored>();
  private readonly earlyLabels = new Map<string, boolean>();
  private readonly labelled: { score: number; predicted: boolean; actual: boolean }[] = [];
  private readonly recent: boolean[] = [];
  private readonly gauges?: { precision: Gauge<string>; recall: Gauge<string>; auc: Gauge<string>; confident: Gauge<string>; corrected: Gauge<string>; labels: Counter<string>; unmatched: Counter<string> };

  constructor(
    readonly model: string,
    readonly version: string,
    config: FeedbackConfig = {},
    registry?: Registry,
  ) {
    this.cfg = { labelledWindow: 5000, predictionWindow: 5000, confidentLow: 0.1, confidentHigh: 0.9, maxPending: 200000, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
    if (registry) {
      const registers = [registry];
      const labelNames = ['model', 'version'];
      const g = (name: string, help: string) => (registry.getSingleMetric(name) as Gauge<string>) ?? new Gauge({ name, help, labelNames, registers });
      const c = (name: string, help: string) => (registry.getSingleMetric(name) as Counter<string>) ?? new Counter({ name, help, labelNames, registers });
      this.gauges = {
        precision: g('tributary_feedback_precision_ratio', 'Precision of the latest labelled predictions (rolling window)'),
        recall: g('tributary_feedback_recall_ratio', 'Recall of the latest labelled predictions (rolling window)'),
        auc: g('tributary_feedback_roc_auc_ratio', 'ROC AUC of the latest labelled predictions (rolling window)'),
        confident: g('tributary_predictions_confident_ratio', 'Share of recent predictions with a confident score (<= low or >= high)'),
        corrected: g('tributary_feedback_corrected_ratio', 'Share of labelled predictions whose predicted label the feedback contradicts (rolling window)'),
        labels: c('tributary_feedback_labels_total', 'Feedback labels joined with a prediction'),
        unmatched: c('tributary_feedback_unmatched_total', 'Feedback labels or predictions dropped unjoined (pending limit)'),
      };
    }
  }

  private get labels() {
    return { model: this.model, version: this.version };
  }

  observePrediction(key: string, score: number, predicted: boolean): void {
    this.recent.push(score <= this.cfg.confidentLow || score >= this.cfg.confidentHigh);
    if (this.recent.length > this.cfg.predictionWindow) this.recent.shift();
    const early = this.earlyLabels.get(key);
    if (early !== undefined) {
      this.earlyLabels.delete(key);
      this.join({ score, predicted }, early);
    } else {
      this.pending.set(key, { score, predicted });
      this.bound(this.pending);
    }
    this.publish();
  }

  observeFeedback(key: string, actual: boolean): void {
    const p = this.pending.get(key);
    if (p) {
      this.pending.delete(key);
      this.join(p, actual);
    } else {
      this.earlyLabels.set(key, actual);
      this.bound(this.earlyLabels);
    }
    this.publish();
  }

  snapshot(): FeedbackSnapshot {
    const w = this.labelled;
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let corrected = 0;
    for (const r of w) {
      if (r.predicted && r.actual) tp++;
      else if (r.predicted) fp++;
      else if (r.actual) fn++;
      if (r.predicted !== r.actual) corrected++;
    }
    return {
      labelled: w.length,
      precision: tp + fp > 0 ? tp / (tp + fp) : null,
      recall: tp + fn > 0 ? tp / (tp + fn) : null,
      rocAuc: rocAuc(w.map((r) => r.score), w.map((r) => r.actual)),
      confidentShare: this.recent.length > 0 ? this.recent.filter(Boolean).length / this.recent.length : null,
      correctedShare: w.length > 0 ? corrected / w.length : null,
    };
  }

  private join(p: Scored, actual: boolean): void {
    this.labelled.push({ score: p.score, predicted: p.predicted, actual });
    if (this.labelled.length > this.cfg.labelledWindow) this.labelled.shift();
    this.gauges?.labels.inc(this.labels);
  }

  private bound(m: Map<string, unknown>): void {
    while (m.size > this.cfg.maxPending) {
      m.delete(m.keys().next().value as string);
      this.gauges?.unmatched.inc(this.labels);
    }
  }

  private dirty = 0;

  /** Gauges are recomputed at most every 200 updates (AUC sorts the window). */
  private publish(force = false): void {
    if (!this.gauges || (!force && ++this.dirty < 200)) return;
    this.dirty = 0;
    const s = this.snapshot();
    const set = (g: Gauge<string>, v: number | null) => (v === null ? undefined : g.set(this.labels, v));
    set(this.gauges.precision, s.precision);
    set(this.gauges.recall, s.recall);
    set(this.gauges.auc, s.rocAuc);
    set(this.gauges.confident, s.confidentShare);
    set(this.gauges.corrected, s.correctedShare);
  }

  /** Recomputes the gauges now (end of a consumed batch). */
  flush(): void {
    this.publish(true);
  }
}
