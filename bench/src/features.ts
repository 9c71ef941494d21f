/**
 * Feature-extraction microbenchmark (`npm run bench -- --features`, and part of every full run):
 * one core, no Kafka. The declarative fraud_txn (models/fraud/features/fraud_txn.yaml, compiled)
 * against the frozen hand-written extractor (bench/frozen/fraud-extractor.ts), in events/s, over the
 * same pre-generated events; and randomly generated definitions' cost per feature (ns per feature
 * per event) next to fraud_txn's, so no domain gets a special path.
 *
 * Rates are events per CPU-second of this (single-threaded) process, i.e. per core. Each
 * measurement alternates the contenders in rounds (which one goes first alternates too) and
 * reports the median round and the median of the per-round ratios, so that another process on a
 * shared machine slows both alike.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as avro from 'avsc';
import { cpuFacts, describeCpu, type CpuFacts } from './machine';
import { loadGeneratorSpec } from '../../examples/fraud/generator-spec';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { buildFeatureSet, loadFeatureDefinitions } from '../../src/features/declarative/load';
import { repoRoot } from '../../src/stack/paths';
import { randomDefinitions, randomEvent, rng, SCHEMA } from '../../test/helpers/random-definitions';
import { FraudFeatureExtractor } from '../frozen/fraud-extractor';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';

export interface FeaturesBenchResult {
  node: string;
  machine: CpuFacts & { cores: number; loadAvgAtStart: number[] };
  events: number;
  roundSeconds: number;
  rounds: number;
  fraudTxn: {
    features: number;
    declarativeEventsPerSec: number;
    frozenEventsPerSec: number;
    /** Median of the per-round ratios declarative / frozen (>= 1: at least as fast). */
    ratio: number;
    declarativeNsPerFeature: number;
    frozenNsPerFeature: number;
    /** Same check without the output buffer reuse: extract() allocating its row (what the extraction stage and the enricher call per event). */
    allocating: { declarativeEventsPerSec: number; frozenEventsPerSec: number; ratio: number };
  };
  random: { definitions: number; featuresMin: number; featuresMax: number; nsPerFeatureMedian: number; nsPerFeatureP90: number; nsPerFeatureMax: number };
}

type Loop = () => number;

/**
 * Events per CPU-second of `body` run over `events` for about `seconds` of CPU time (whole passes):
 * the process's own user+system time, so other processes on a shared machine disturb it less than
 * wall time; one thread, so it is events/s per core.
 */
function rate(events: readonly unknown[], seconds: number, body: (e: unknown) => void): number {
  const budget = seconds * 1e6;
  const start = process.cpuUsage();
  let done = 0;
  let used = 0;
  do {
    for (let i = 0; i < events.length; i++) body(events[i]);
    done += events.length;
    const u = process.cpuUsage(start);
    used = u.user + u.system;
  } while (used < budget);
  return done / (used / 1e6);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Alternates two loops for `rounds` rounds: the median rate of each and the median of the per-round ratios a/b. */
function alternate(a: Loop, b: Loop, rounds: number): { a: number; b: number; ratio: number } {
  const ra: number[] = [];
  const rb: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let x: number;
    let y: number;
    if (r % 2 === 0) {
      x = a();
      y = b();
    } else {
      y = b();
      x = a();
    }
    ra.push(x);
    rb.push(y);
    ratios.push(x / y);
  }
  return { a: median(ra), b: median(rb), ratio: median(ratios) };
}

export function runFeaturesBench(o: { seconds?: number; rounds?: number; events?: number; randomDefinitions?: number } = {}): FeaturesBenchResult {
  const loadAvgAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const seconds = o.seconds ?? 0.5;
  const rounds = o.rounds ?? 21;
  const n = o.events ?? 50_000;
  const spec = loadGeneratorSpec();
  const frozen = new FraudFeatureExtractor(spec);
  const declarative = loadFeatureDefinitions(path.join(repoRoot(), 'models/fraud/features/fraud_txn.yaml'), { schemaSources: [FRAUD_SCHEMAS_DIR] });
  const events = new TransactionGenerator({ seed: 11 }).take(n).map((g) => g.tx);
  const width = declarative.size;
  const rowD = new Float64Array(width);
  const rowF = new Float64Array(width);
  let sink = 0;
  // warm-up (JIT) of both
  rate(events, 0.3, (e) => declarative.extractInto(e, rowD, 0));
  rate(events, 0.3, (e) => frozen.extractInto(e as never, rowF, 0));
  const reused = alternate(
    () => rate(events, seconds, (e) => declarative.extractInto(e, rowD, 0)),
    () => rate(events, seconds, (e) => frozen.extractInto(e as never, rowF, 0)),
    rounds,
  );
  const allocating = alternate(
    () => rate(events, seconds, (e) => (sink += declarative.extract(e)[0])),
    () => rate(events, seconds, (e) => (sink += frozen.extract(e as never)[0])),
    Math.max(5, Math.floor(rounds / 2)),
  );
  const d = reused.a;
  const f = reused.b;

  const type = avro.Type.forSchema(SCHEMA as avro.Schema);
  const r = rng(99);
  const randomEvents = Array.from({ length: 5000 }, () => randomEvent(r));
  const perFeature: number[] = [];
  const widths: number[] = [];
  for (let k = 0; k < (o.randomDefinitions ?? 30); k++) {
    const set = buildFeatureSet(randomDefinitions(r, k), type, `random-${k}`, '0'.repeat(16));
    const row = new Float64Array(set.size);
    rate(randomEvents, 0.1, (e) => set.extractInto(e, row, 0));
    const eps = median(Array.from({ length: 3 }, () => rate(randomEvents, seconds / 4, (e) => set.extractInto(e, row, 0))));
    perFeature.push(1e9 / (eps * set.size));
    widths.push(set.size);
  }
  if (sink === 42) process.stdout.write(''); // keep `sink` observable
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    node: process.version,
    machine: { cores: os.cpus().length, ...cpuFacts(), loadAvgAtStart },
    events: n,
    roundSeconds: seconds,
    rounds,
    fraudTxn: {
      features: width,
      declarativeEventsPerSec: Math.round(d),
      frozenEventsPerSec: Math.round(f),
      ratio: r3(reused.ratio),
      declarativeNsPerFeature: r3(1e9 / (d * width)),
      frozenNsPerFeature: r3(1e9 / (f * width)),
      allocating: { declarativeEventsPerSec: Math.round(allocating.a), frozenEventsPerSec: Math.round(allocating.b), ratio: r3(allocating.ratio) },
    },
    random: { definitions: perFeature.length, featuresMin: Math.min(...widths), featuresMax: Math.max(...widths), nsPerFeatureMedian: r3(median(perFeature)), nsPerFeatureP90: r3(quantile(perFeature, 0.9)), nsPerFeatureMax: r3(Math.max(...perFeature)) },
  };
}

/** The BENCHMARKS.md section of a features run. */
export function featuresMarkdown(res: FeaturesBenchResult, when: string, jsonRel: string): string {
  const t = res.fraudTxn;
  const fmt = (x: number) => x.toLocaleString('en-US');
  return [
    `### Feature extraction microbenchmark (${when}, ${res.node}, one core; [json](${jsonRel}))`,
    '',
    `Machine: ${res.machine?.cores ?? '?'} cores (${res.machine ? describeCpu(res.machine) : '?'}), load average ${res.machine?.loadAvgAtStart?.join(' / ') ?? '?'} at the start (CPU-time rates are less sensitive to other load than wall time, not immune).`,
    '',
    `Declarative \`fraud_txn\` (models/fraud/features/fraud_txn.yaml, compiled) vs the frozen hand-written extractor (bench/frozen/fraud-extractor.ts), ${fmt(res.events)} generated transactions, events per CPU-second of one thread, median of ${res.rounds} alternating rounds of ${res.roundSeconds} CPU-s each (ratio: median of the per-round ratios):`,
    '',
    '| extractor | events/s per core (row reused) | ns per feature | events/s (allocating row) |',
    '|---|---|---|---|',
    `| declarative (${t.features} features) | ${fmt(t.declarativeEventsPerSec)} | ${t.declarativeNsPerFeature} | ${fmt(t.allocating.declarativeEventsPerSec)} |`,
    `| frozen hand-written | ${fmt(t.frozenEventsPerSec)} | ${t.frozenNsPerFeature} | ${fmt(t.allocating.frozenEventsPerSec)} |`,
    `| **declarative / frozen** | **${t.ratio}** | | **${t.allocating.ratio}** |`,
    '',
    `Randomly generated definitions (${res.random.definitions} sets of ${res.random.featuresMin}–${res.random.featuresMax} columns: nested nullable fields, arithmetic, libm, buckets, hashing, lookups, time parts in 7 zones, one-hots) over random edge-value events: ${res.random.nsPerFeatureMedian} ns per feature per event (median; p90 ${res.random.nsPerFeatureP90}, max ${res.random.nsPerFeatureMax}) — the same compiler, no per-domain path.`,
  ].join('\n');
}
