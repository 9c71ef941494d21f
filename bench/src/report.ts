/** Writes the latency-vs-load SVG and the run's section of BENCHMARKS.md. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BenchResults, SystemResult } from './main';

const COLORS: Record<string, string> = { naive: '#d62728', 'naive-noredis': '#ff7f0e', tributary: '#1f77b4' };

/** Line chart: p50 (solid) and p99 (dashed) latency vs offered load, log-scale latency axis. */
export function latencySvg(systems: SystemResult[], title: string): string {
  const W = 760;
  const H = 440;
  const m = { l: 70, r: 230, t: 40, b: 55 };
  const pts = systems.flatMap((s) => s.loads.flatMap((l) => [l.latencyMs.p50, l.latencyMs.p99].filter((v) => Number.isFinite(v) && v > 0)));
  const xs = systems.flatMap((s) => s.loads.map((l) => l.offeredEps));
  if (pts.length === 0 || xs.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">no latency data</text></svg>`;
  const yMin = 10 ** Math.floor(Math.log10(Math.max(0.5, Math.min(...pts))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...pts) * 1.05));
  const xMax = niceCeil(Math.max(...xs) * 1.05);
  const px = (x: number) => m.l + (x / xMax) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - m.t - m.b);
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
  out.push(`<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">event-to-prediction latency (ms, log)</text>`);
  let ly = m.t + 10;
  for (const s of systems) {
    const color = COLORS[s.name] ?? '#555';
    for (const [key, dash] of [
      ['p50', ''],
      ['p99', ' stroke-dasharray="6 4"'],
    ] as const) {
      const p = s.loads.filter((l) => Number.isFinite(l.latencyMs[key]) && l.latencyMs[key] > 0).map((l) => [px(l.offeredEps), py(l.latencyMs[key])]);
      if (p.length === 0) continue;
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${p.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y] of p) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${key === 'p50' ? color : 'white'}" stroke="${color}" stroke-width="1.5"/>`);
      out.push(`<line x1="${W - m.r + 15}" x2="${W - m.r + 45}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
      out.push(`<text x="${W - m.r + 52}" y="${ly + 4}">${esc(s.name)} ${key}</text>`);
      ly += 20;
    }
  }
  out.push(`<text x="${W - m.r + 15}" y="${ly + 12}" fill="#555" font-size="11">loads = 25/50/75% of</text>`);
  out.push(`<text x="${W - m.r + 15}" y="${ly + 26}" fill="#555" font-size="11">each system's measured max</text>`);
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

const f = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

export function markdownSection(r: BenchResults, svgRel: string, jsonRel: string): string {
  const L: string[] = [];
  const mc = r.meta.machine;
  const o = r.meta.options;
  L.push(`### Run \`${r.meta.tag}\` — ${r.meta.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
  L.push('');
  L.push(`Code: ${r.meta.code.commit.slice(0, 10)}${r.meta.code.srcDirty ? ` + uncommitted changes in src/ (${r.meta.code.dirtyFiles.length} files)` : ''}. Machine: ${mc.cores} cores (${mc.cpuModel}), ${mc.memGiB} GiB, Node ${mc.node}, Kafka ${mc.kafkaVersion} (${mc.stackSource} stack), Linux ${mc.kernel}. ` + `Options: ${o.partitions} partitions, backlog ${o.messages} events, ${o.duration} s per load level, loads ${o.loads.map((x) => `${x * 100}%`).join('/')}, ${o.quick ? 'quick mode' : 'default mode'}${o.profile ? ', **Tributary profiled with --cpu-prof (slower)**' : ''}. Raw data: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push('**Raw limits** (same message size — ' + r.raw.messageBytes + ' B framed Avro — and partition count):');
  L.push('');
  L.push('| component | figure |');
  L.push('|---|---|');
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
  L.push('**Sustained throughput** (backlog drain, steady state) **and resources** (CPU % of one core, averaged over the steady state; RSS max):');
  L.push('');
  L.push('| system | events/s | its CPU % | its RSS MiB | broker CPU % | registry CPU % | redis CPU % | bench driver+probe CPU % |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of r.systems) {
    const p = s.max.processes;
    const me = p[`${s.name} (node)`];
    L.push(`| ${s.name} | **${f(s.max.sustainedEps)}**${s.max.complete ? '' : ' (time-boxed)'} | ${f(me?.cpuPercent)} | ${f(me?.rssMaxMiB)} | ${f(p['kafka broker (java)']?.cpuPercent)} | ${f(p['schema registry (java)']?.cpuPercent)} | ${f(p['redis-server']?.cpuPercent)} | ${f(p['bench (driver+probe)']?.cpuPercent)} |`);
  }
  L.push('');
  L.push('**Event-to-prediction latency at fixed offered loads** (fractions of each system\'s own max):');
  L.push('');
  L.push('| system | load | offered/s | achieved/s | p50 ms | p95 ms | p99 ms | max ms | its CPU % | its RSS MiB | broker CPU % |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of r.systems) {
    for (const l of s.loads) {
      const me = l.processes[`${s.name} (node)`];
      L.push(`| ${s.name} | ${Math.round(l.fraction * 100)}% | ${f(l.offeredEps)} | ${f(l.achievedEps)}${l.complete ? '' : ' (not drained)'} | ${f(l.latencyMs.p50)} | ${f(l.latencyMs.p95)} | ${f(l.latencyMs.p99)} | ${f(l.latencyMs.max)} | ${f(me?.cpuPercent)} | ${f(me?.rssMaxMiB)} | ${f(l.processes['kafka broker (java)']?.cpuPercent)} |`);
    }
  }
  L.push('');
  L.push(`![latency vs offered load](${svgRel})`);
  L.push('');
  L.push('**Ratios:**');
  L.push('');
  for (const [key, v] of Object.entries(r.ratios)) L.push(`- ${key}: **${v}**`);
  L.push('');
  for (const n of r.meta.notes) L.push(`> ${n}`);
  L.push('');
  for (const prof of r.systems.flatMap((s) => s.profiles ?? [])) {
    L.push(`**CPU profile** \`${prof.file}\` (${prof.totalMs} ms sampled), share of non-idle samples: ${prof.byArea.slice(0, 8).map((a) => `${a.area} ${a.percentOfBusy}%`).join(', ')}.`);
    L.push('');
    L.push('| self % | function | where |');
    L.push('|---:|---|---|');
    for (const t of prof.top.slice(0, 10)) L.push(`| ${t.percentOfBusy} | \`${t.fn}\` | ${t.where} |`);
    L.push('');
  }
  return L.join('\n');
}

export function writeReport(r: BenchResults, o: { resultsDir: string; stamp: string; updateMarkdown: boolean; markdownFile: string }): { svg: string } {
  const svgFile = path.join(o.resultsDir, `${o.stamp}-${r.meta.tag}.svg`);
  fs.writeFileSync(svgFile, latencySvg(r.systems, `Latency vs offered load — ${r.meta.tag} run ${r.meta.startedAt.slice(0, 10)}`));
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
