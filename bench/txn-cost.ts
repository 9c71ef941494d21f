/**
 * What an exactly-once commit costs, and what one transaction across all of a process's partitions
 * (the KIP-447 / "exactly_once_v2" shape Kafka Streams uses) would save against today's engine shape
 * (one transactional producer per input partition, as kafkajs' classic pattern needs for fencing).
 * Not a test: `npm run bench:txn` (local stack up, or KAFKA_BROKERS set). Prints a table and writes
 * bench/results/<time>-txn-cost.json.
 *
 * Both shapes offer the same records/s over the same partitions, in one run, alternating
 * (per-partition, shared, per-partition, shared) so machine noise hits both alike:
 *  - per-partition: P producers (`<run>.pp.<p>`), each in a loop: begin, send its partition's due
 *    records, sendOffsets (AddOffsetsToTxn + TxnOffsetCommit for its partition), commit; the next
 *    transaction starts `intervalMs` after the previous one started (or at once if that took longer);
 *  - shared: one producer, one loop, each transaction holding every partition's due records and all P
 *    offsets in one TxnOffsetCommit.
 * Measured per mode: transactions/s, commit time p50/p99 (begin to commit acknowledged), the broker's
 * CPU (from /proc of the local stack's Kafka pid) and this process's, each per second, per
 * transaction and per record.
 *
 * Limit, stated: kafkajs 2.2.4 sends TxnOffsetCommit v1 (no consumer-group generation), so the shared
 * shape here measures the protocol cost of sharing, not a fenced implementation of it (that needs
 * TxnOffsetCommit v3 and OffsetFetch with require_stable; see BENCHMARKS.md).
 *
 * TXN_RATES (records/s, default 1000,5000), TXN_INTERVALS (ms, default 10,30), TXN_PARTITIONS (3),
 * TXN_SECONDS per mode and round (12), TXN_ROUNDS (2).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Kafka, Producer } from 'kafkajs';
import { connectEngineProducer } from '../src/engine/commit-sink';
import { createKafka } from '../src/kafka/client';
import { resolveEndpoints } from '../src/stack/endpoints';
import { repoRoot } from '../src/stack/paths';
import { readState } from '../src/util/stack-state';
import { stateFilePath } from '../src/util/paths';

const list = (v: string | undefined, d: string) => (v ?? d).split(',').map(Number).filter((x) => x > 0);
const RATES = list(process.env.TXN_RATES, '1000,5000');
const INTERVALS = list(process.env.TXN_INTERVALS, '10,30');
const PARTITIONS = Number(process.env.TXN_PARTITIONS ?? 3);
const SECONDS = Number(process.env.TXN_SECONDS ?? 12);
const ROUNDS = Number(process.env.TXN_ROUNDS ?? 2);
const TICKS_PER_SEC = 100; // USER_HZ on Linux
const VALUE = Buffer.alloc(64, 7); // the bench's 64-byte framed Avro record size

type Shape = 'per-partition' | 'shared';

interface ModeResult {
  shape: Shape;
  rate: number;
  intervalMs: number;
  round: number;
  seconds: number;
  records: number;
  transactions: number;
  commitMs: { p50: number; p99: number };
  brokerCpuPercent: number;
  selfCpuPercent: number;
  brokerCpuMsPerTxn: number;
  selfCpuMsPerTxn: number;
  totalCpuUsPerRecord: number;
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The engine's own transactional producer (src/engine/commit-sink.ts), so the figures are the engine's. */
function transactionalProducer(kafka: Kafka, id: string): Promise<Producer> {
  return connectEngineProducer(kafka, id, 60000);
}

/**
 * One transaction loop over `partitions`: each transaction carries the records due since the
 * previous one started (rate × elapsed), for each of its partitions, and their offsets.
 */
async function loop(producer: Producer, o: { out: string; input: string; group: string; partitions: number[]; ratePerPartition: number; intervalMs: number; until: number; offsets: number[]; durations: number[]; counts: { records: number; txns: number } }): Promise<void> {
  let last = Date.now();
  const owed = new Map(o.partitions.map((p) => [p, 0]));
  while (Date.now() < o.until) {
    const start = Date.now();
    for (const p of o.partitions) owed.set(p, owed.get(p)! + (o.ratePerPartition * (start - last)) / 1000);
    last = start;
    const perPartition = o.partitions.map((p) => {
      const n = Math.floor(owed.get(p)!);
      owed.set(p, owed.get(p)! - n);
      return { p, n };
    });
    const due = perPartition.filter((x) => x.n > 0);
    if (due.length > 0) {
      const t0 = process.hrtime.bigint();
      const txn = await producer.transaction();
      await txn.sendBatch({ topicMessages: [{ topic: o.out, messages: due.flatMap(({ p, n }) => Array.from({ length: n }, () => ({ partition: p, value: VALUE }))) }] });
      for (const { p, n } of due) o.offsets[p] += n;
      await txn.sendOffsets({ consumerGroupId: o.group, topics: [{ topic: o.input, partitions: due.map(({ p }) => ({ partition: p, offset: String(o.offsets[p]) })) }] });
      await txn.commit();
      o.durations.push(Number(process.hrtime.bigint() - t0) / 1e6);
      o.counts.records += due.reduce((s, x) => s + x.n, 0);
      o.counts.txns += 1;
    }
    const wait = start + o.intervalMs - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

async function runMode(kafka: Kafka, shape: Shape, rate: number, intervalMs: number, round: number, runId: string, brokerPid: number | undefined): Promise<ModeResult> {
  const tag = `${runId}.${shape}.${rate}.${intervalMs}.${round}`;
  const input = `txn-cost-in.${tag}`;
  const out = `txn-cost-out.${tag}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: input, numPartitions: PARTITIONS }, { topic: out, numPartitions: PARTITIONS }], waitForLeaders: true });
  const parts = Array.from({ length: PARTITIONS }, (_, p) => p);
  const producers = shape === 'shared' ? [await transactionalProducer(kafka, `${tag}.shared`)] : await Promise.all(parts.map((p) => transactionalProducer(kafka, `${tag}.pp.${p}`)));
  const durations: number[] = [];
  const counts = { records: 0, txns: 0 };
  const offsets = parts.map(() => 0);
  // Warm-up (connections, coordinator lookups, the first AddPartitionsToTxn) is not measured.
  const warm = { out, input, group: `${tag}.g`, ratePerPartition: rate / PARTITIONS, intervalMs, offsets, durations: [] as number[], counts: { records: 0, txns: 0 } };
  const warmUntil = Date.now() + 1500;
  await Promise.all(shape === 'shared' ? [loop(producers[0], { ...warm, partitions: parts, until: warmUntil })] : parts.map((p) => loop(producers[p], { ...warm, partitions: [p], until: warmUntil })));
  const b0 = brokerPid ? cpuTicks(brokerPid) : 0;
  const s0 = process.cpuUsage();
  const t0 = Date.now();
  const until = t0 + SECONDS * 1000;
  const common = { out, input, group: `${tag}.g`, ratePerPartition: rate / PARTITIONS, intervalMs, until, offsets, durations, counts };
  await Promise.all(shape === 'shared' ? [loop(producers[0], { ...common, partitions: parts })] : parts.map((p) => loop(producers[p], { ...common, partitions: [p] })));
  const secs = (Date.now() - t0) / 1000;
  const brokerCpu = brokerPid ? (cpuTicks(brokerPid) - b0) / TICKS_PER_SEC : NaN;
  const su = process.cpuUsage(s0);
  const selfCpu = (su.user + su.system) / 1e6;
  await Promise.all(producers.map((p) => p.disconnect()));
  await admin.deleteTopics({ topics: [input, out] }).catch(() => undefined);
  await admin.disconnect();
  durations.sort((a, b) => a - b);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return {
    shape,
    rate,
    intervalMs,
    round,
    seconds: r1(secs),
    records: counts.records,
    transactions: counts.txns,
    commitMs: { p50: r1(quantile(durations, 0.5)), p99: r1(quantile(durations, 0.99)) },
    brokerCpuPercent: r1((100 * brokerCpu) / secs),
    selfCpuPercent: r1((100 * selfCpu) / secs),
    brokerCpuMsPerTxn: r1((1000 * brokerCpu) / counts.txns),
    selfCpuMsPerTxn: r1((1000 * selfCpu) / counts.txns),
    totalCpuUsPerRecord: r1((1e6 * (brokerCpu + selfCpu)) / counts.records),
  };
}

async function main(): Promise<void> {
  const ep = resolveEndpoints();
  const state = readState(stateFilePath());
  const brokerPid = state?.kafka.pid;
  if (!brokerPid) process.stderr.write('no local stack state: broker CPU is not measured (start it with `tributary stack up`)\n');
  const kafka = createKafka({ clientId: 'bench-txn-cost', brokers: ep.brokers });
  const runId = `txn${Date.now().toString(36)}`;
  const results: ModeResult[] = [];
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' / ');
  for (const rate of RATES) {
    for (const intervalMs of INTERVALS) {
      for (let round = 1; round <= ROUNDS; round++) {
        for (const shape of ['per-partition', 'shared'] as Shape[]) {
          const r = await runMode(kafka, shape, rate, intervalMs, round, runId, brokerPid);
          results.push(r);
          process.stderr.write(`${JSON.stringify(r)}\n`);
        }
      }
    }
  }
  // One row per (rate, interval, shape): the rounds' transactions and CPU summed, commit time median of the rounds.
  const rows: string[] = [
    `| records/s | interval ms | shape | txn/s | commit p50 / p99 ms | broker CPU % | client CPU % | broker CPU ms/txn | client CPU ms/txn | total CPU µs/record |`,
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const rate of RATES) {
    for (const intervalMs of INTERVALS) {
      for (const shape of ['per-partition', 'shared'] as Shape[]) {
        const rs = results.filter((r) => r.rate === rate && r.intervalMs === intervalMs && r.shape === shape);
        const secs = rs.reduce((s, r) => s + r.seconds, 0);
        const txns = rs.reduce((s, r) => s + r.transactions, 0);
        const avg = (f: (r: ModeResult) => number) => Math.round((rs.reduce((s, r) => s + f(r) * r.seconds, 0) / secs) * 10) / 10;
        const med = (f: (r: ModeResult) => number) => rs.map(f).sort((a, b) => a - b)[Math.floor((rs.length - 1) / 2)];
        rows.push(`| ${rate.toLocaleString('en-US')} | ${intervalMs} | ${shape} | ${Math.round(txns / secs)} | ${med((r) => r.commitMs.p50)} / ${med((r) => r.commitMs.p99)} | ${avg((r) => r.brokerCpuPercent)} | ${avg((r) => r.selfCpuPercent)} | ${avg((r) => r.brokerCpuMsPerTxn)} | ${avg((r) => r.selfCpuMsPerTxn)} | ${avg((r) => r.totalCpuUsPerRecord)} |`);
      }
    }
  }
  const table = rows.join('\n');
  process.stdout.write(`\nTransaction cost (${PARTITIONS} partitions, ${SECONDS} s per mode x ${ROUNDS} rounds, load average at start ${load}):\n\n${table}\n`);
  const dir = path.join(repoRoot(), 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}-txn-cost.json`);
  fs.writeFileSync(file, JSON.stringify({ partitions: PARTITIONS, seconds: SECONDS, rounds: ROUNDS, loadAverageAtStart: load, node: process.version, results, table }, null, 2));
  process.stdout.write(`\nwritten: ${path.relative(repoRoot(), file)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
