/** Offline evaluation of backfilled scores against labels (a feedback topic). */

export interface LabeledScore {
  score: number;
  /** The model's decision (score >= threshold). */
  predicted: boolean;
  /** The ground truth from feedback. */
  actual: boolean;
}

export interface EvaluationMetrics {
  /** Predictions that had a label. */
  labeled: number;
  positives: number;
  negatives: number;
  /** Area under the ROC curve (ties count half); null without both classes. */
  rocAuc: number | null;
  /** Of the predicted positives, the share truly positive; null when nothing was predicted positive. */
  precision: number | null;
  /** Of the true positives, the share predicted positive; null without positives. */
  recall: number | null;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}

/** ROC AUC by ranks (Mann–Whitney U), average ranks for tied scores. */
export function rocAuc(rows: readonly { score: number; actual: boolean }[]): number | null {
  const pos = rows.filter((r) => r.actual).length;
  const neg = rows.length - pos;
  if (pos === 0 || neg === 0) return null;
  const sorted = [...rows].sort((a, b) => a.score - b.score);
  let rankSumPos = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1].score === sorted[i].score) j++;
    const avgRank = (i + j + 2) / 2; // ranks are 1-based
    for (let k = i; k <= j; k++) if (sorted[k].actual) rankSumPos += avgRank;
    i = j + 1;
  }
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function evaluate(rows: readonly LabeledScore[]): EvaluationMetrics {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let positives = 0;
  for (const r of rows) {
    if (r.actual) positives++;
    if (r.predicted && r.actual) tp++;
    else if (r.predicted && !r.actual) fp++;
    else if (!r.predicted && r.actual) fn++;
  }
  return {
    labeled: rows.length,
    positives,
    negatives: rows.length - positives,
    rocAuc: rocAuc(rows),
    precision: tp + fp > 0 ? tp / (tp + fp) : null,
    recall: tp + fn > 0 ? tp / (tp + fn) : null,
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
  };
}
