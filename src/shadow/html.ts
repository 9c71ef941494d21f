import { NO_LABELS_NOTE, type Quantiles, type ShadowReport } from './report';

function catchUpText(r: ShadowReport): string {
  const c = r.shadowCatchUp;
  if (c.backlogRecords === 0) return 'none (the shadow kept up from the start)';
  return `${c.backlogRecords.toLocaleString('en-US')} records were waiting when it started (${fmt(c.startedBehindMs / 1000)} s behind); worked through in ${fmt(c.durationMs / 1000)} s`;
}

/**
 * The report as one self-contained HTML file: inline CSS, inline SVG plots, no external resources.
 * A small inline script checks that every plot laid out (non-empty SVG geometry) and marks
 * <body data-plots-rendered="N">, which the headless-browser test reads back.
 */

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Rounded for reading: thousands separated, 2 decimals at most from 1 up, 3 significant digits below. */
export function fmt(x: number | undefined | null, digits = 3): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return Number(x.toFixed(1)).toString();
  if (a >= 1) return Number(x.toFixed(2)).toString();
  if (a === 0) return '0';
  return Number(x.toPrecision(digits)).toString();
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
const ms = (x: number) => (Number.isFinite(x) ? `${fmt(x)} ms` : '–');

const W = 420;
const H = 240;
const M = { l: 44, r: 12, t: 14, b: 34 };
const COLORS = { live: '#1f77b4', shadow: '#ff7f0e', diag: '#999' };

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  kind: 'line' | 'bars';
  dashed?: boolean;
}

/** One SVG chart: linear axes, ticks, series, legend. */
interface ChartOptions {
  x: [number, number];
  y: [number, number];
  xLabel: string;
  yLabel: string;
  /** Logarithmic y axis (decades), so small bins — the score tail — stay visible. Zero values are not drawn. */
  logY?: boolean;
  /** Named x ticks (categories) instead of numeric ones. */
  xTicks?: { x: number; label: string }[];
}

function chart(id: string, title: string, series: Series[], opts: ChartOptions): string {
  const [x0, x1] = opts.x;
  let [y0, y1] = opts.y;
  if (opts.logY) {
    y0 = 10 ** Math.floor(Math.log10(y0 > 0 ? y0 : 1e-4));
    y1 = 10 ** Math.ceil(Math.log10(y1 > y0 ? y1 : y0 * 10));
  } else if (!(y1 > y0)) y1 = y0 + 1;
  const ty = (y: number) => (opts.logY ? Math.log10(Math.max(y, y0)) : y);
  const sx = (x: number) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const sy = (y: number) => H - M.b - ((ty(y) - ty(y0)) / (ty(y1) - ty(y0))) * (H - M.t - M.b);
  const parts: string[] = [];
  const xTicks = opts.xTicks ?? Array.from({ length: 5 }, (_, i) => ({ x: x0 + ((x1 - x0) * i) / 4, label: fmt(x0 + ((x1 - x0) * i) / 4, 2) }));
  const yTicks = opts.logY
    ? Array.from({ length: Math.round(Math.log10(y1 / y0)) + 1 }, (_, i) => y0 * 10 ** i)
    : Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  for (const t of xTicks) parts.push(`<line x1="${sx(t.x)}" y1="${H - M.b}" x2="${sx(t.x)}" y2="${H - M.b + 4}" stroke="#333"/><text x="${sx(t.x)}" y="${H - M.b + 15}" font-size="10" text-anchor="middle">${esc(t.label)}</text>`);
  for (const yv of yTicks) parts.push(`<line x1="${M.l}" y1="${sy(yv)}" x2="${W - M.r}" y2="${sy(yv)}" stroke="#eee"/><text x="${M.l - 4}" y="${sy(yv) + 3}" font-size="10" text-anchor="end">${fmt(yv, 2)}</text>`);
  parts.push(`<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="#333"/><line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="#333"/>`);
  parts.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 4}" font-size="11" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  parts.push(`<text x="12" y="${(M.t + H - M.b) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 12 ${(M.t + H - M.b) / 2})">${esc(opts.yLabel)}</text>`);
  series.forEach((s, si) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    if (s.kind === 'bars') {
      const n = series.filter((z) => z.kind === 'bars').length;
      const k = series.filter((z) => z.kind === 'bars').indexOf(s);
      const step = pts.length > 1 ? pts[1][0] - pts[0][0] : (x1 - x0) / 10;
      const bw = (sx(x0 + step) - sx(x0)) / n;
      for (const [x, y] of pts) if (!(opts.logY && y <= 0)) parts.push(`<rect class="series-${esc(s.name)}" x="${(sx(x) + k * bw).toFixed(2)}" y="${sy(y).toFixed(2)}" width="${Math.max(0.5, bw - 0.5).toFixed(2)}" height="${Math.max(opts.logY ? 1 : 0, sy(y0) - sy(y)).toFixed(2)}" fill="${s.color}" fill-opacity="0.75"><title>${esc(s.name)} ${fmt(x, 3)}: ${fmt(y, 4)}</title></rect>`);
    } else {
      const d = pts.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${sx(x).toFixed(2)},${sy(y).toFixed(2)}`).join('');
      parts.push(`<path class="series-${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    }
    parts.push(`<rect x="${W - M.r - 110}" y="${M.t + 4 + si * 14}" width="10" height="10" fill="${s.color}"/><text x="${W - M.r - 96}" y="${M.t + 13 + si * 14}" font-size="10">${esc(s.name)}</text>`);
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg data-plot="${esc(id)}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${parts.join('')}</svg></figure>`;
}

function table(headers: string[], rows: (string | number)[][], cls = ''): string {
  return `<table class="${cls}"><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${typeof c === 'number' ? fmt(c) : esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function quantRow(name: string, q: Quantiles): (string | number)[] {
  return [name, q.n, q.mean, q.p50, q.p95, q.p99];
}

const GLOSSARY: [string, string][] = [
  ['live / shadow', 'live: the model whose predictions go to the prediction topic; shadow: a candidate scoring the same inputs in its own consumer group, logged only.'],
  ['matched', 'a live and a shadow record for the same input record (same topic, partition and offset).'],
  ['agreement', 'share of matched events where the shadow\'s score, at the live model\'s threshold, gives the live decision; drift\'s tributary_shadow_agreement_ratio is the same figure over its last 1,000 joins.'],
  ['score delta', 'shadow score minus live score for the same event.'],
  ['PSI', 'population stability index of the two score distributions: below 0.1 similar, 0.1–0.25 moderate shift, above 0.25 large shift.'],
  ['Jensen–Shannon divergence', 'symmetric distance between the two score distributions, 0 (same) to 1 bit (disjoint).'],
  ['95% CI (paired bootstrap)', 'range of the metric difference over resamples of the same labelled events; a range wholly above or below 0 is a significant difference.'],
  ['ECE', 'expected calibration error: how far predicted scores are from observed positive rates, averaged over score bins.'],
  ['model latency', 'time of the model call for the record (batching included).'],
  ['end to end', 'input record written to Kafka → output record produced.'],
  ['catch-up', 'time the shadow\'s consumer group spent working through records that were waiting when it started; reported apart from its latency.'],
];

export function renderHtml(r: ShadowReport): string {
  const bins = r.divergence.bins;
  const centers = Array.from({ length: bins }, (_, i) => i / bins);
  const norm = (c: number[]) => {
    const t = c.reduce((a, b) => a + b, 0) || 1;
    return c.map((x) => x / t);
  };
  const ln = norm(r.divergence.live);
  const sn = norm(r.divergence.shadow);
  const sections: string[] = [];

  sections.push(`<section id="verdict"><h2>Verdict</h2><p class="verdict verdict-${esc(r.verdict.decision)}">${esc(r.verdict.text)}</p>${r.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}</section>`);
  sections.push(`<section id="summary"><h2>Summary</h2>${table(
    ['', 'value'],
    [
      ['live model(s)', r.models.live.join(', ') || '–'],
      ['shadow model(s)', r.models.shadow.join(', ') || '–'],
      ['range', `${r.range.from ?? 'beginning'} – ${r.range.to ?? 'end'}`],
      ['live records', r.counts.live],
      ['shadow records', r.counts.shadow],
      ['matched (by input lineage)', r.counts.matched],
      ['unmatched live (no shadow record)', r.counts.unmatchedLive],
      ['unmatched shadow (no live record)', r.counts.unmatchedShadow],
      ['duplicates (live / shadow)', `${r.counts.duplicateLive} / ${r.counts.duplicateShadow}`],
      ['feedback labels (unmatched)', `${r.counts.feedback} (${r.counts.feedbackUnmatched})`],
      ['agreement at the live threshold', `${pct(r.agreement.rate)} of ${r.agreement.n} (threshold ${fmt(r.agreement.liveThreshold)})`],
      [`agreement, last ${r.agreement.recent.window.toLocaleString('en-US')} (as drift's gauge)`, `${pct(r.agreement.recent.rate)} of ${r.agreement.recent.n}`],
      ['disagreements: live only / shadow only positive', `${r.agreement.liveOnly} / ${r.agreement.shadowOnly}`],
      ['score delta (shadow − live): mean / median / p05 / p95', `${fmt(r.scoreDelta.mean)} / ${fmt(r.scoreDelta.median)} / ${fmt(r.scoreDelta.p05)} / ${fmt(r.scoreDelta.p95)}`],
      ['mean |delta| / max |delta|', `${fmt(r.scoreDelta.meanAbs)} / ${fmt(r.scoreDelta.maxAbs)}`],
      ['PSI (shadow vs live scores)', fmt(r.divergence.psi)],
      ['Jensen–Shannon divergence (base 2)', fmt(r.divergence.jensenShannon)],
      ['shadow errors / timeouts', `${r.shadowOutcomes.error} (${pct(r.shadowOutcomes.errorRate)}) / ${r.shadowOutcomes.timeout} (${pct(r.shadowOutcomes.timeoutRate)})`],
      ['shadow catch-up (backlog at start)', catchUpText(r)],
    ],
    'summary',
  )}${r.shadowOutcomes.errors.length ? table(['shadow error', 'count'], r.shadowOutcomes.errors.map((e) => [e.message, e.count])) : ''}</section>`);

  sections.push(`<section id="distributions"><h2>Score distributions</h2><div class="plots">${chart('score-distribution', 'Score distribution (share of records per bin; log scale, so the tail stays visible)', [
    { name: 'live', color: COLORS.live, kind: 'bars', points: centers.map((c, i) => [c, ln[i]]) },
    { name: 'shadow', color: COLORS.shadow, kind: 'bars', points: centers.map((c, i) => [c, sn[i]]) },
  ], { x: [0, 1], y: [Math.min(...[...ln, ...sn].filter((v) => v > 0), 1), Math.max(...ln, ...sn, 0.01)], xLabel: 'score', yLabel: 'share (log scale)', logY: true })}${(() => {
    const h = r.scoreDelta.histogram;
    const n = h.counts.length;
    const step = (h.hi - h.lo) / n;
    return chart('score-delta', 'Score delta (shadow − live) per matched event', [{ name: 'delta', color: '#2ca02c', kind: 'bars', points: h.counts.map((c, i) => [h.lo + i * step, c]) }], { x: [h.lo, h.hi], y: [0, Math.max(...h.counts, 1)], xLabel: 'shadow − live', yLabel: 'events' });
  })()}</div></section>`);

  if (r.metrics) {
    const m = r.metrics;
    const names = ['rocAuc', 'precision', 'recall', 'f1', 'accuracy'] as const;
    sections.push(`<section id="metrics"><h2>Metrics on labelled events (${m.n}, ${m.positives} positive)</h2>${table(
      ['metric', 'live', 'shadow', 'delta', '95% CI (paired bootstrap)'],
      names.map((k) => [k, m.live[k], m.shadow[k], m.deltas[k].estimate, `[${fmt(m.deltas[k].low)}, ${fmt(m.deltas[k].high)}]`]),
      'metrics',
    )}</section>`);
  } else {
    sections.push(`<section id="metrics"><h2>Metrics on labelled events</h2><p class="note">${esc(NO_LABELS_NOTE)} (pass --feedback TOPIC with labels keyed like the predictions).</p></section>`);
  }
  if (r.calibration || r.roc) {
    const plots: string[] = [];
    if (r.calibration) {
      const pts = (c: typeof r.calibration.live) => c.filter((b) => b.n > 0).map((b) => [b.meanScore, b.positiveRate] as [number, number]);
      plots.push(chart('calibration', `Calibration (ECE live ${fmt(r.calibration.eceLive)}, shadow ${fmt(r.calibration.eceShadow)})`, [
        { name: 'ideal', color: COLORS.diag, kind: 'line', dashed: true, points: [[0, 0], [1, 1]] },
        { name: 'live', color: COLORS.live, kind: 'line', points: pts(r.calibration.live) },
        { name: 'shadow', color: COLORS.shadow, kind: 'line', points: pts(r.calibration.shadow) },
      ], { x: [0, 1], y: [0, 1], xLabel: 'mean predicted score', yLabel: 'observed positive rate' }));
    }
    if (r.roc) {
      plots.push(chart('roc', `ROC (AUC live ${fmt(r.metrics?.live.rocAuc)}, shadow ${fmt(r.metrics?.shadow.rocAuc)})`, [
        { name: 'chance', color: COLORS.diag, kind: 'line', dashed: true, points: [[0, 0], [1, 1]] },
        { name: 'live', color: COLORS.live, kind: 'line', points: r.roc.live.map((p) => [p.fpr, p.tpr]) },
        { name: 'shadow', color: COLORS.shadow, kind: 'line', points: r.roc.shadow.map((p) => [p.fpr, p.tpr]) },
      ], { x: [0, 1], y: [0, 1], xLabel: 'false positive rate', yLabel: 'true positive rate' }));
    }
    sections.push(`<section id="labels"><h2>Calibration and ROC</h2><div class="plots">${plots.join('')}</div></section>`);
  }

  const lat = r.latency;
  const maxLat = Math.max(lat.model.live.p99 || 0, lat.model.shadow.p99 || 0, 1);
  sections.push(`<section id="latency"><h2>Latency (ms)</h2>${table(['', 'n', 'mean', 'p50', 'p95', 'p99'], [
    quantRow('model call: live', lat.model.live),
    quantRow('model call: shadow', lat.model.shadow),
    quantRow('end to end: live', lat.endToEnd.live),
    quantRow('end to end: shadow (after catch-up)', lat.endToEnd.shadow),
  ], 'latency')}<p>Model latency delta (shadow − live): p50 ${ms(lat.model.deltaP50)}, p99 ${ms(lat.model.deltaP99)}. Shadow catch-up: ${esc(catchUpText(r))}.</p><div class="plots">${chart('latency', 'Model call latency by quantile', [
    { name: 'live', color: COLORS.live, kind: 'bars', points: [[0, lat.model.live.p50], [1, lat.model.live.p95], [2, lat.model.live.p99]] },
    { name: 'shadow', color: COLORS.shadow, kind: 'bars', points: [[0, lat.model.shadow.p50], [1, lat.model.shadow.p95], [2, lat.model.shadow.p99]] },
  ], { x: [0, 3], y: [0, maxLat], xLabel: 'quantile', yLabel: 'ms', xTicks: [{ x: 0.5, label: 'p50' }, { x: 1.5, label: 'p95' }, { x: 2.5, label: 'p99' }] })}</div></section>`);

  if (r.segments.length > 0) {
    sections.push(`<section id="segments"><h2>Per segment</h2>${table(
      ['segment', 'value', 'n', 'agreement', 'mean delta', 'live positive rate', 'shadow positive rate', 'labelled', 'live AUC', 'shadow AUC'],
      r.segments.map((s) => [s.by, s.value, s.n, pct(s.agreement), s.meanDelta, pct(s.livePositiveRate), pct(s.shadowPositiveRate), s.labelled, s.liveRocAuc, s.shadowRocAuc]),
      'segments',
    )}</section>`);
  }
  if (r.abTest) {
    sections.push(`<section id="ab-test"><h2>A/B between routes (control: ${esc(r.abTest.control)})</h2>${table(
      ['route', 'models', 'predictions', 'flagged', 'labelled', 'positives', 'true positives', 'precision', 'recall'],
      r.abTest.routes.map((x) => [x.route, x.models.join(', '), x.predictions, x.flagged, x.labelled, x.positives, x.truePositives, x.precision, x.recall]),
    )}${table(
      ['route vs control', 'metric', 'control', 'route', 'difference', 'z', 'p-value', `significant`],
      r.abTest.tests.map((t) => [t.route, t.metric, t.test.p1, t.test.p2, t.test.difference, t.test.z, t.test.pValue, t.test.significant ? `yes (α=${t.test.alpha})` : 'no']),
      'ab',
    )}</section>`);
  }

  sections.push(`<section id="glossary"><h2>Glossary</h2><dl>${GLOSSARY.map(([t, d]) => `<dt>${esc(t)}</dt><dd>${esc(d)}</dd>`).join('')}</dl></section>`);

  const sources = Object.entries(r.sources).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary shadow report: ${esc(r.models.shadow.join(', '))} vs ${esc(r.models.live.join(', '))}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f5f5f5}
figure{display:inline-block;margin:8px 16px 8px 0}figcaption{font-size:12px;color:#555;margin-bottom:2px}
.meta{color:#666;font-size:12px}
.verdict{font-size:15px;font-weight:600;padding:8px 12px;border-left:4px solid #999;background:#f7f7f7}
.verdict-promote{border-color:#2ca02c}.verdict-keep-live,.verdict-investigate{border-color:#d62728}
.note{color:#8a5a00}dt{font-weight:600;font-size:13px}dd{margin:0 0 6px 16px;font-size:13px}
</style></head>
<body data-plots-expected="__PLOTS__">
<h1>Shadow report: ${esc(r.models.shadow.join(', ') || '(no shadow)')} vs live ${esc(r.models.live.join(', '))}</h1>
<p class="meta">generated ${esc(r.generatedAt)}${sources ? ` · ${sources}` : ''}</p>
${sections.join('\n')}
<script>
(function () {
  var ok = 0;
  document.querySelectorAll('svg[data-plot]').forEach(function (svg) {
    var b = svg.getBBox();
    if (b.width > 0 && b.height > 0 && svg.querySelectorAll('path,rect').length > 0) { ok++; svg.setAttribute('data-rendered', 'true'); }
  });
  document.body.setAttribute('data-plots-rendered', String(ok));
})();
</script>
</body></html>
`.replace('__PLOTS__', String((sections.join('').match(/data-plot="/g) ?? []).length));
}
