import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Feedback, Prediction, ShadowPrediction } from '../../src/client/generated/avro-types';
import { renderHtml } from '../../src/shadow/html';
import { buildReport } from '../../src/shadow/report';
import { rng } from '../../src/shadow/stats';

/** Chromium from Debian's packages (`apt-get install -y chromium`; .ci/run installs it). */
function chromium(): string {
  for (const bin of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
    if (found) return found;
  }
  throw new Error('chromium is required for this test: apt-get install -y chromium');
}

function headless(args: string[], profile: string): string {
  return execFileSync(chromium(), ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, ...args], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'ignore'] });
}

/** A synthetic comparison: shadow = live score + noise, labels drawn from the live score, two countries, two routes. */
function syntheticReport(withLabels = true) {
  const r = rng(11);
  const live: Prediction[] = [];
  const shadow: ShadowPrediction[] = [];
  const feedback: Feedback[] = [];
  const segments = new Map<string, Record<string, string>>();
  for (let i = 0; i < 600; i++) {
    const key = `k${i}`;
    const lineage = { topic: 'tx', partition: i % 3, offset: i };
    const score = Math.min(0.999, Math.max(0.001, r() ** 2));
    const s = Math.min(0.999, Math.max(0.001, score + (r() - 0.5) * 0.2));
    live.push({ key, modelName: 'fraud', modelVersion: '1', score, label: score >= 0.5, threshold: 0.5, eventTime: i, ingestTime: 1000 + i, producedTime: 1020 + i + r() * 30, lineage, featureSetVersions: {}, route: i % 5 === 0 ? 'canary:candidate' : 'canary:stable', latencyMs: 1 + r() });
    const status = i % 97 === 0 ? 'TIMEOUT' : i % 89 === 0 ? 'ERROR' : 'OK';
    shadow.push({ key, shadow: 'shadow', modelName: 'fraud', modelVersion: '2', status, score: status === 'OK' ? s : null, label: status === 'OK' ? s >= 0.5 : null, threshold: 0.5, latencyMs: 10 + r() * 5, error: status === 'OK' ? null : status.toLowerCase(), eventTime: i, ingestTime: 1000 + i, producedTime: 1100 + i, lineage, featureSetVersions: {} });
    feedback.push({ key, label: r() < score, source: 'chargeback', labelTime: 9999 });
    segments.set(`tx/${i % 3}/${i}`, { country: i % 2 ? 'US' : 'GB' });
  }
  return buildReport({ live, shadow, feedback: withLabels ? feedback : [], segments, segmentBy: ['country'], options: { bootstrapIterations: 100 } });
}

describe('shadow report HTML in a real headless browser (Chromium)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-report-html-'));
  const file = path.join(dir, 'report.html');
  const report = syntheticReport();
  fs.writeFileSync(file, renderHtml(report));

  it('is self-contained (no external resources)', () => {
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('renders every section and plot: the in-page check finds non-empty SVG geometry for each plot', () => {
    const dom = headless(['--virtual-time-budget=5000', '--dump-dom', `file://${file}`], path.join(dir, 'profile-dom'));
    for (const id of ['verdict', 'summary', 'distributions', 'metrics', 'labels', 'latency', 'segments', 'ab-test', 'glossary']) expect(dom).toContain(`<section id="${id}">`);
    for (const plot of ['score-distribution', 'score-delta', 'calibration', 'roc', 'latency']) expect(dom).toMatch(new RegExp(`<svg data-plot="${plot}"[^>]*data-rendered="true"`));
    const expected = Number(/data-plots-expected="(\d+)"/.exec(dom)![1]);
    const rendered = Number(/data-plots-rendered="(\d+)"/.exec(dom)?.[1] ?? -1);
    expect(expected).toBe(5);
    expect(rendered).toBe(expected);
    expect(dom).toContain('Jensen–Shannon divergence');
    expect(dom).toMatch(/95% CI \(paired bootstrap\)/);
    // Readability: a verdict line, labelled latency groups, the score histogram on a log scale, a glossary.
    expect(dom).toMatch(/<p class="verdict verdict-[a-z-]+">[^<]{20,}<\/p>/);
    for (const q of ['p50', 'p95', 'p99']) expect(dom).toMatch(new RegExp(`<svg data-plot="latency"[^]*?>${q}</text>`));
    expect(dom).toContain('share (log scale)');
    expect(dom).toContain('<dt>PSI</dt>');
  }, 90000);

  it('without labels, renders every other section and says "no labels: quality metrics omitted"', () => {
    const bare = path.join(dir, 'report-nolabels.html');
    fs.writeFileSync(bare, renderHtml(syntheticReport(false)));
    const dom = headless(['--virtual-time-budget=5000', '--dump-dom', `file://${bare}`], path.join(dir, 'profile-nolabels'));
    for (const id of ['verdict', 'summary', 'distributions', 'metrics', 'latency', 'segments', 'glossary']) expect(dom).toContain(`<section id="${id}">`);
    expect(dom).not.toContain('<section id="labels">');
    expect(dom).toContain('no labels: quality metrics omitted');
    const expected = Number(/data-plots-expected="(\d+)"/.exec(dom)![1]);
    expect(expected).toBe(3);
    expect(Number(/data-plots-rendered="(\d+)"/.exec(dom)?.[1] ?? -1)).toBe(expected);
  }, 90000);

  it('takes a screenshot with real content', () => {
    const png = path.join(dir, 'report.png');
    headless([`--screenshot=${png}`, '--window-size=1200,2400', `file://${file}`], path.join(dir, 'profile-shot'));
    const bytes = fs.readFileSync(png);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    expect(bytes.length).toBeGreaterThan(20000); // a blank page is a few KB
  }, 90000);
});
