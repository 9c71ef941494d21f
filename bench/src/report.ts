/**
 * Writes the run's latency plot (SVG) and its section of BENCHMARKS.md, both generated from the
 * results object only (so the section always matches the JSON it links to).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BenchResults, SystemOutcome } from './main';
import { acceptance } from './acceptance';
import type { StepResult } from './live';
import { STEAL } from './common';
import { interleavedRows } from './interleave';
import { describeCpu } from './machine';

const PALETTE = ['#1f77b4', '#2ca02c', '#9467bd', '#17becf', '#8c564b', '#e377c2', '#bcbd22', '#7f7f7f', '#d62728', '#ff7f0e', '#393b79', '#637939'];

/** p99 latency vs offered rate for every system (its rate and fraction steps), log latency axis. */
export function latencySvg(systems: SystemOutcome[], title: string): string {
  const W = 860;
  const H = 460;
  const m = { l: 70, r: 300, t: 40, b: 55 };
  const series = systems
    .map((s) => ({ name: s.name, pts: s.latency.filter((x) => !x.void && x.latencyMs.p99 !== null && x.latencyMs.p99 > 0).map((x) => [x.rate, x.latencyMs.p99!] as [number, number]).sort((a, b) => a[0] - b[0]) }))
    .filter((x) => x.pts.length > 0);
  const ys = series.flatMap((x) => x.pts.map((p) => p[1]));
  const xs = series.flatMap((x) => x.pts.map((p) => p[0]));
  if (ys.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">no latency data</text></svg>\n`;
  const yMin = 10 ** Math.floor(Math.log10(Math.max(0.5, Math.min(...ys))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys) * 1.05));
  const xMax = niceCeil(Math.max(...xs) * 1.05);
  const px = (x: number) => m.l + (x / xMax) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin) || 1)) * (H - m.t - m.b);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.l}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let d = yMin; d <= yMax; d *= 10) {
    for (const k of [1, 2, 5]) {
      const v = d * k;
      if (v > yMax) break;
      out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#ddd"/>`);
      out.push(`<text x="${m.l - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${v >= 1 ? v : v.toFixed(1)}</text>`);
    }
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xMax * i) / 5;
    out.push(`<line x1="${px(v).toFixed(1)}" x2="${px(v).toFixed(1)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/>`);
    out.push(`<text x="${px(v).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle">${Math.round(v)}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="black"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="black"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">offered load (events/s)</text>`);
  out.push(`<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">p99 event-to-prediction latency (ms, log)</text>`);
  let ly = m.t + 10;
  for (const [i, s] of series.entries()) {
    const color = PALETTE[i % PALETTE.length];
    const p = s.pts.map(([x, y]) => [px(x), py(y)]);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${p.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of p) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${color}"/>`);
    out.push(`<line x1="${W - m.r + 15}" x2="${W - m.r + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${W - m.r + 46}" y="${ly + 4}">${esc(s.name)}</text>`);
    ly += 18;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceCeil(x: number): number {
  const e = 10 ** Math.floor(Math.log10(x));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * e >= x) return k * e;
  return 10 * e;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const f = (x: number | undefined | null, d = 0) => (x === undefined || x === null || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const ms = (x: number | null) => (x === null ? '∞' : f(x));
/** A median or percentile that may be infinite (events left unpredicted) as ms() takes it: null = ∞. */
const fin = (x: number | null): number | null => (x === null || !Number.isFinite(x) ? null : Math.round(x));
const codeOf = (s: SystemOutcome) => `${s.code.commit.slice(0, 10)}${s.code.srcDirty ? '+dirty' : ''}${s.code.label ? ` (${s.code.label})` : ''}`;

/** The last try of a rate (earlier tries were void). */
const lastOf = <T>(xs: T[]): T | undefined => xs[xs.length - 1];

/** `p50/p99` of a step, with its verdict marks. */
function cell(x: StepResult | undefined): string {
  if (!x) return '';
  if (x.void) return `VOID${x.failsDespiteVoid ? `+✗ ${ms(x.latencyMs.p50)} / ${ms(x.latencyMs.p99)}` : ''} (driver late p99 ${x.driver.latenessMs.p99} ms)`;
  const mark = x.pass ? '' : ' ✗';
  return `${ms(x.latencyMs.p50)} / ${ms(x.latencyMs.p99)}${mark}`;
}

export function markdownSection(r: BenchResults, svgRel: string, jsonRel: string): string {
  const L: string[] = [];
  const mc = r.meta.machine;
  const o = r.meta.options;
  const lv = o.live;
  L.push(`### Run \`${r.meta.tag}\` (${r.meta.runId}) — ${r.meta.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
  L.push('');
  L.push(`Bench code: ${r.meta.code.commit.slice(0, 10)}${r.meta.code.srcDirty ? ` + uncommitted changes in src/ (${r.meta.code.dirtyFiles.length} files)` : ' (src/ clean)'}. Machine: ${mc.cores} cores (${describeCpu(mc)}), ${mc.memGiB} GiB, load average at start ${mc.loadAvgAtStart.join(' / ')}, Node ${mc.node}, Kafka ${mc.kafkaVersion} (${mc.stackSource} stack). ` +
    `${o.partitions} partitions; ${lv.stepSeconds} s per step${o.quick ? ' (**quick mode: indicative only**)' : ''}; ${r.meta.wallSeconds ?? '?'} s in all. Raw data: [\`${jsonRel}\`](${jsonRel}).${r.failures.length ? ` **${r.failures.length} failure(s)**, see the end.` : ''}`);
  L.push('');
  L.push('**Systems, live capacity and correctness** (capacity = highest offered rate passing a step: p99 < 1 s, lag not growing, all predicted; see the definitions below):');
  L.push('');
  L.push('| system | code | delivery | live capacity events/s | search | p99 ms at capacity | predicted / sent | dup | missing | DLQ | ERROR / WARN log lines | status |');
  L.push('|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|');
  for (const s of r.systems) {
    const cap = s.capacity;
    const atCap = cap?.steps.find((x) => x.rate === cap.eps && x.pass);
    const c = s.correctness;
    const search = cap ? cap.steps.map((x) => `${f(x.rate)}${x.void ? (x.failsDespiteVoid ? '∅✗' : '∅') : x.pass ? '✓' : '✗'}`).join(' ') : '';
    const status = s.status === 'ok' ? (c?.ok ? 'ok' : 'correctness FAILED') : `${s.status}: ${(s.error ?? '').split('\n')[0].slice(0, 200)}`;
    L.push(`| ${s.name} | ${codeOf(s)} | ${s.delivery ?? ''}${s.kind === 'tributary' ? `, ${s.fuse ? 'fused' : 'split'}${s.code.knowsFuse ? '' : ' (engine has no fuse option: ran as today)'}` : ''} | ${cap ? (cap.eps > 0 ? `**${f(cap.eps)}**${cap.resolved ? '' : ' (lower bound)'}` : `none ≥ ${f(lv.minRate)}/s`) : '–'} | ${search} | ${atCap ? ms(atCap.latencyMs.p99) : '–'} | ${c ? `${f(c.predicted)} / ${f(c.sent)}` : '–'} | ${c ? f(c.duplicates) : '–'} | ${c ? f(c.missing) : '–'} | ${c ? f(c.deadLettered) : '–'} | ${s.log ? `${s.log.errorLines} / ${s.log.warnLines}` : '–'} | ${status} |`);
  }
  L.push('');
  L.push('Search: each capacity step in order, ✓ pass, ✗ fail, ∅ void (driver behind schedule; retried), ∅✗ void but failed by more than the driver\'s delay explains (used as an upper bound).');
  L.push('');
  const rounds = o.interleave ?? 0;
  if (rounds > 0) {
    const sysNames = r.systems.filter((x) => x.latency.length).map((x) => x.name);
    L.push(`**Interleaved rounds** (\`--interleave ${rounds}\`: every system started and warmed up first, then in each round every rate once per system while the others idle, the order reversed every other round; p50 / p99 ms of each round, the machine's CPU steal % during the step in brackets (% of one core, summed over the cores); void steps shown as –${o.maxStealPct ? ` (a step is also void when the hypervisor stole more than ${o.maxStealPct}% of the machine's CPU: \`--max-steal-pct\`)` : ''}; the last column compares each system's p99 with ${sysNames[0] ? `\`${sysNames[0]}\`'s` : 'the first system\'s'} round by round):`);
    L.push('');
    L.push(`| offered/s | system | ${Array.from({ length: rounds }, (_, k) => `round ${k + 1}`).join(' | ')} | median p50 / p99 | p99 against the first system |`);
    L.push(`|---:|---|${Array.from({ length: rounds }, () => '---:').join('|')}|---:|---|`);
    for (const row of interleavedRows(r.systems.filter((x) => x.latency.length), rounds)) {
      row.systems.forEach((sys, k) => {
        const vs = k === 0 ? '' : row.versusFirst[k - 1];
        const cells = sys.p99.map((p99, i) => (p99 === null ? '–' : `${ms(fin(sys.p50[i]))} / ${ms(fin(p99))}${sys.steal[i] !== null ? ` (${f(sys.steal[i], 1)})` : ''}`));
        L.push(`| ${f(row.rate)} | ${sys.name} | ${cells.join(' | ')} | ${sys.medianP99 === null ? '–' : `${ms(fin(sys.medianP50))} / ${ms(fin(sys.medianP99))}`} | ${vs ? `lower in ${vs.lower} of ${vs.rounds} rounds; median ratio ${vs.medianRatio === null || !Number.isFinite(vs.medianRatio) ? '–' : f(vs.medianRatio, 2)}` : ''} |`);
      });
    }
    L.push('');
  }
  const rates = [...new Set(r.systems.flatMap((s) => s.latency.filter((x) => x.purpose === 'rate' && x.round === undefined).map((x) => x.rate)))].sort((a, b) => a - b);
  if (rates.length) {
    L.push('**Latency at the same offered rates** (p50 / p99 ms over every event of the step; ✗ = the step did not pass; blank = above 2× that system\'s capacity, not run):');
    L.push('');
    L.push(`| system | ${rates.map((x) => `${f(x)}/s`).join(' | ')} |`);
    L.push(`|---|${rates.map(() => '---:').join('|')}|`);
    for (const s of r.systems.filter((x) => x.latency.length)) L.push(`| ${s.name} | ${rates.map((x) => cell(lastOf(s.latency.filter((y) => y.purpose === 'rate' && y.rate === x)))).join(' | ')} |`);
    L.push('');
  }
  const fr = lv.fractions;
  if (r.systems.some((s) => s.latency.some((x) => x.purpose === 'fraction'))) {
    L.push('**Latency at fractions of each system\'s own live capacity** (offered rate: p50 / p99 ms):');
    L.push('');
    L.push(`| system | ${fr.map((x) => `${Math.round(x * 100)}%`).join(' | ')} |`);
    L.push(`|---|${fr.map(() => '---').join('|')}|`);
    for (const s of r.systems.filter((x) => x.latency.length)) {
      L.push(`| ${s.name} | ${fr.map((x) => {
        const st = lastOf(s.latency.filter((y) => y.purpose === 'fraction' && y.fraction === x));
        return st ? `${f(st.rate)}/s: ${cell(st)}` : '';
      }).join(' | ')} |`);
    }
    L.push('');
  }
  const labels = [...new Set(r.systems.filter((s) => s.kind === 'tributary').map((s) => s.code.label))];
  for (const label of labels) {
    L.push(`**Issue 12 acceptance, measured side**${label ? ` — Tributary code \`${label}\`` : ''} (✓ met, ✗ not met, – not measured in this run${o.quick ? '; quick mode: indicative only' : ''}):`);
    L.push('');
    L.push('| | criterion | measured |');
    L.push('|---|---|---|');
    for (const c of acceptance(r.systems, label ? `@${label}` : '')) L.push(`| ${c.ok === undefined ? '–' : c.ok ? '✓' : '✗'} | ${c.criterion} | ${c.measured} |`);
    L.push('');
  }
  L.push(`![p99 latency vs offered load](${svgRel})`);
  L.push('');
  L.push('**Resources at the latency steps** (CPU % of one core averaged over the step; the system\'s own process (summed over its processes for a tributary-x2 system), the broker, the bench, and the CPU the hypervisor stole from the machine — all cores, so up to 100 × cores; void steps left out):');
  L.push('');
  L.push('| system | offered/s | achieved/s | system CPU % | system RSS MiB | broker CPU % | bench CPU % | CPU steal % | driver lateness p99 ms |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of r.systems) {
    // A system of several processes (tributary-x2-...: "<name> (node)", "<name> (node #2)"): their sum.
    const mine = Object.keys(s.latency[0]?.processes ?? {}).filter((k) => k.startsWith(s.name + ' ('));
    const sum = (x: (typeof s.latency)[number], k: 'cpuPercent' | 'rssMaxMiB') => (mine.length === 0 || mine.some((m) => x.processes[m]?.[k] === undefined) ? undefined : mine.reduce((a, m) => a + x.processes[m]![k]!, 0));
    for (const x of s.latency.filter((y) => !y.void)) {
      L.push(`| ${s.name} | ${f(x.rate)} | ${f(x.achievedEps)} | ${f(sum(x, 'cpuPercent'))} | ${f(sum(x, 'rssMaxMiB'))} | ${f(x.processes['kafka broker (java)']?.cpuPercent)} | ${f(x.processes['bench (driver+probe)']?.cpuPercent)} | ${f(x.processes[STEAL]?.cpuPercent)} | ${f(x.driver.latenessMs.p99)} |`);
    }
  }
  L.push('');
  L.push('**What each system does differently from the demo topology** (computed from each topology\'s config and the baseline/peer definitions):');
  L.push('');
  for (const s of r.systems) L.push(`- \`${s.name}\`: ${s.label}.${s.differences.length ? ` Differences: ${s.differences.join('; ')}.` : ''}${s.status === 'not-servable' ? ` **Not servable**: the loader refuses it: ${(s.error ?? '').replace(/\s+/g, ' ').slice(0, 400)}` : ''}`);
  L.push('');
  L.push('**Raw limits** (same message size — ' + r.raw.messageBytes + ' B framed Avro — and partition count; tools run alone):');
  L.push('');
  L.push('| component | figure |');
  L.push('|---|---|');
  if (o.skipRaw) L.push('| (all) | skipped (--skip-raw) |');
  const k = r.raw.kafka;
  if (k && 'producer' in k) {
    L.push(`| Kafka ProducerPerformance, acks=all, ${f(k.producer.records)} records | **${f(k.producer.recordsPerSecond)} records/s** (avg latency ${k.producer.avgLatencyMs} ms) |`);
    L.push(`| Kafka ConsumerPerformance | **${f(k.consumer.recordsPerSecond)} records/s** (fetch-only ${f(k.consumer.fetchRecordsPerSecond)}) |`);
  } else if (k) L.push(`| Kafka perf tools | failed: ${k.error.split('\n')[0]} |`);
  const on = r.raw.onnx;
  if (on && 'rows' in on) {
    const configs = [...new Set(on.rows.map((x) => x.config))];
    for (const c of configs) {
      const rows = on.rows.filter((x) => x.config === c);
      L.push(`| onnxruntime, ${c} | ${rows.map((x) => `batch ${x.batch}: ${f(x.rowsPerSecond)} rows/s`).join('; ')} |`);
    }
    L.push(`| onnxruntime, worker pool | ${on.pool} |`);
  }
  const rd = r.raw.redis;
  if (rd && 'ioredisPipelinedReadsPerSecond' in rd) {
    L.push(`| Redis HGETALL, ioredis pipelined (500/pipeline) | ${f(rd.ioredisPipelinedReadsPerSecond)} reads/s |`);
    L.push(`| Redis HGETALL, ioredis one awaited read at a time | ${f(rd.ioredisSequentialReadsPerSecond)} reads/s |`);
    if (rd.redisBenchmark && 'pipelined16' in rd.redisBenchmark) L.push(`| redis-benchmark HGETALL, 50 clients -P 16 / 1 client -P 1 | ${f(rd.redisBenchmark.pipelined16)} / ${f(rd.redisBenchmark.unpipelined1Client)} requests/s |`);
  }
  L.push('');
  L.push('**Definitions** (from the code that measured this run):');
  L.push('');
  for (const [k, v] of Object.entries(r.meta.definitions)) L.push(`- *${k}*: ${v}.`);
  L.push('');
  for (const n of r.meta.notes) L.push(`> ${n}`);
  L.push('');
  if (r.failures.length) {
    L.push('**Failures** (the run exited non-zero):');
    L.push('');
    for (const x of r.failures) L.push(`- ${x.split('\n')[0].slice(0, 400)}`);
    L.push('');
  }
  return L.join('\n');
}

export function writeReport(r: BenchResults, o: { resultsDir: string; stamp: string; updateMarkdown: boolean; markdownFile: string }): { svg: string } {
  const svgFile = path.join(o.resultsDir, `${o.stamp}-${r.meta.tag}.svg`);
  fs.writeFileSync(svgFile, latencySvg(r.systems, `p99 latency vs offered load — ${r.meta.tag} run ${r.meta.runId} ${r.meta.startedAt.slice(0, 16)}`));
  const mdDir = path.dirname(o.markdownFile);
  const svgRel = path.relative(mdDir, svgFile);
  if (o.updateMarkdown) {
    const jsonRel = path.relative(mdDir, path.join(o.resultsDir, `${o.stamp}-${r.meta.tag}.json`));
    const section = markdownSection(r, svgRel, jsonRel);
    const start = `<!-- bench:${r.meta.tag}:start -->`;
    const end = `<!-- bench:${r.meta.tag}:end -->`;
    let md = fs.existsSync(o.markdownFile) ? fs.readFileSync(o.markdownFile, 'utf8') : '# Benchmarks\n\n## Latest results\n';
    const block = `${start}\n${section}\n${end}`;
    const i = md.indexOf(start);
    const j = md.indexOf(end);
    if (i >= 0 && j > i) md = md.slice(0, i) + block + md.slice(j + end.length);
    else if (md.includes('<!-- bench:results -->')) md = md.replace('<!-- bench:results -->', `<!-- bench:results -->\n\n${block}`);
    else md = `${md.trimEnd()}\n\n${block}\n`;
    fs.writeFileSync(o.markdownFile, md);
  }
  return { svg: path.relative(process.cwd(), svgFile) };
}

/** `node bench/dist/bench/src/report.js RESULTS.json [--no-markdown]`: re-renders a run's SVG and BENCHMARKS.md section. */
if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/dist/bench/src/report.js bench/results/<date>-<tag>.json [--no-markdown]');
    process.exit(2);
  }
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults;
  const stamp = path.basename(file).replace(new RegExp(`-${r.meta.tag}\\.json$`), '');
  const root = path.resolve(path.dirname(file), '..', '..');
  const updateMarkdown = !process.argv.includes('--no-markdown');
  writeReport(r, { resultsDir: path.dirname(path.resolve(file)), stamp, updateMarkdown, markdownFile: path.join(root, 'BENCHMARKS.md') });
  if (!updateMarkdown) console.log(markdownSection(r, `${stamp}-${r.meta.tag}.svg`, path.basename(file)));
}
