import type { Quantiles, ShadowReport } from './report';

/**
 * The report as one self-contained HTML file: inline CSS, inline SVG plots, no external resources.
 * A small inline script checks that every plot laid out (non-empty SVG geometry) and marks
 * <body data-plots-rendered="N">, which the headless-browser test reads back.
 */

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function fmt(x: number | undefined | null, digits = 4): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  if (Number.isInteger(x) && Math.abs(x) >= 1) return String(x);
  return Number(x.toFixed(digits)).toString();
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : '–');

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
function chart(id: string, title: string, series: Series[], opts: { x: [number, number]; y: [number, number]; xLabel: string; yLabel: string }): string {
  const [x0, x1] = opts.x;
  const [y0, y1raw] = opts.y;
  const y1 = y1raw > y0 ? y1raw : y0 + 1;
  const sx = (x: number) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const sy = (y: number) => H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    const yv = y0 + ((y1 - y0) * i) / 4;
    parts.push(`<line x1="${sx(xv)}" y1="${H - M.b}" x2="${sx(xv)}" y2="${H - M.b + 4}" stroke="#333"/><text x="${sx(xv)}" y="${H - M.b + 15}" font-size="10" text-anchor="middle">${fmt(xv, 2)}</text>`);
    parts.push(`<line x1="${M.l}" y1="${sy(yv)}" x2="${W - M.r}" y2="${sy(yv)}" stroke="#eee"/><text x="${M.l - 4}" y="${sy(yv) + 3}" font-size="10" text-anchor="end">${fmt(yv, 2)}</text>`);
  }
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
      for (const [x, y] of pts) parts.push(`<rect class="series-${esc(s.name)}" x="${(sx(x) + k * bw).toFixed(2)}" y="${sy(y).toFixed(2)}" width="${Math.max(0.5, bw - 0.5).toFixed(2)}" height="${Math.max(0, sy(y0) - sy(y)).toFixed(2)}" fill="${s.color}" fill-opacity="0.75"><title>${esc(s.name)} ${fmt(x, 3)}: ${fmt(y, 4)}</title></rect>`);
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
      ['agreement at threshold', `${pct(r.agreement.rate)} of ${r.agreement.n} (live ${fmt(r.agreement.liveThreshold)}, shadow ${fmt(r.agreement.shadowThreshold)})`],
      ['disagreements: live only / shadow only positive', `${r.agreement.liveOnly} / ${r.agreement.shadowOnly}`],
      ['score delta (shadow − live): mean / median / p05 / p95', `${fmt(r.scoreDelta.mean)} / ${fmt(r.scoreDelta.median)} / ${fmt(r.scoreDelta.p05)} / ${fmt(r.scoreDelta.p95)}`],
      ['mean |delta| / max |delta|', `${fmt(r.scoreDelta.meanAbs)} / ${fmt(r.scoreDelta.maxAbs)}`],
      ['PSI (shadow vs live scores)', fmt(r.divergence.psi)],
      ['Jensen–Shannon divergence (base 2)', fmt(r.divergence.jensenShannon)],
      ['shadow errors / timeouts', `${r.shadowOutcomes.error} (${pct(r.shadowOutcomes.errorRate)}) / ${r.shadowOutcomes.timeout} (${pct(r.shadowOutcomes.timeoutRate)})`],
    ],
    'summary',
  )}${r.shadowOutcomes.errors.length ? table(['shadow error', 'count'], r.shadowOutcomes.errors.map((e) => [e.message, e.count])) : ''}</section>`);

  sections.push(`<section id="distributions"><h2>Score distributions</h2><div class="plots">${chart('score-distribution', 'Score distribution (share of records per bin)', [
    { name: 'live', color: COLORS.live, kind: 'bars', points: centers.map((c, i) => [c, ln[i]]) },
    { name: 'shadow', color: COLORS.shadow, kind: 'bars', points: centers.map((c, i) => [c, sn[i]]) },
  ], { x: [0, 1], y: [0, Math.max(...ln, ...sn, 0.01)], xLabel: 'score', yLabel: 'share' })}${(() => {
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
    quantRow('model: live', lat.model.live),
    quantRow('model: shadow', lat.model.shadow),
    quantRow('end to end: live', lat.endToEnd.live),
    quantRow('end to end: shadow', lat.endToEnd.shadow),
  ], 'latency')}<p>Model latency delta (shadow − live): p50 ${fmt(lat.model.deltaP50, 2)} ms, p99 ${fmt(lat.model.deltaP99, 2)} ms.</p><div class="plots">${chart('latency', 'Model latency quantiles', [
    { name: 'live', color: COLORS.live, kind: 'bars', points: [[0, lat.model.live.p50], [1, lat.model.live.p95], [2, lat.model.live.p99]] },
    { name: 'shadow', color: COLORS.shadow, kind: 'bars', points: [[0, lat.model.shadow.p50], [1, lat.model.shadow.p95], [2, lat.model.shadow.p99]] },
  ], { x: [0, 3], y: [0, maxLat], xLabel: 'p50 | p95 | p99', yLabel: 'ms' })}</div></section>`);

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

  const sources = Object.entries(r.sources).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary shadow report: ${esc(r.models.shadow.join(', '))} vs ${esc(r.models.live.join(', '))}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f5f5f5}
figure{display:inline-block;margin:8px 16px 8px 0}figcaption{font-size:12px;color:#555;margin-bottom:2px}
.meta{color:#666;font-size:12px}
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
