/**
 * CPU cost of the live path, A against B: CPU-seconds of the Tributary process per 1,000 events.
 *
 * Runs the stateless topology (model 1, exactly-once, `transactions: shared`, stages fused — the
 * bench's `tributary-stateless-eos2-fused`) in its own process on the running stack, offers a fixed
 * open-loop rate, waits until every event is predicted and reads that process's utime + stime from
 * /proc. CPU time moves less than wall time with other load on a shared machine, but not nothing:
 * a busier machine packs more events into each transaction and fetch, which lowers CPU per event.
 * So by default each round runs A and B side by side (same rate, own topics, same moment, same
 * load); `--sequential` runs them one after the other in ABBA order instead. Every round uses fresh
 * topics; the median of the per-round B/A ratios is reported.
 *
 *   npm run bench:cpu -- --a base=/path/to/other/checkout --b this --rate 3000 --seconds 20 --rounds 3
 *
 * `--a` / `--b` take what `npm run bench -- --tributary-dir` takes (LABEL=PATH of a built checkout,
 * or `this`); `--env-b K=V` sets an environment variable in B's process only (an env switch).
 * BENCH_CPU_PROF_DIR makes each process write a V8 CPU profile (summarise with profile.js).
 * Endpoints come from KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL; each system's log goes to the
 * OS temp folder. To compare a kafkajs patch, give A a checkout whose node_modules lack it (the
 * pipeline code of a checkout loads kafkajs from that checkout's node_modules).
 */
import * as os from 'node:os';
import { Command } from 'commander';
import { createKafka } from '../../src/kafka/client';
import { median, percentile, readProc, round, sleep, ProcSampler } from './common';
import { Progress } from './progress';
import { catalog, SystemSession, type SystemDef } from './systems';
import { parseCodeRefs } from './tributary-code';

const CLK_TCK = 100;

interface RoundResult {
  label: string;
  events: number;
  cpuS: number;
  cpuPer1k: number;
  wallS: number;
  p50: number;
  p99: number;
}

async function measure(session: SystemSession, pid: () => number, rate: number, seconds: number, warmupSeconds: number): Promise<Omit<RoundResult, 'label'>> {
  const inst = session.current();
  const opts = { tickMs: 5, maxInFlight: 64 };
  // warm-up: JIT, connections, the first transactions' set-up stay out of the figure
  const warm = inst.probe.track('warm', Math.round(rate * warmupSeconds));
  await inst.driver.drive(warm, rate, opts);
  if (!(await inst.probe.drained(warm, 60_000))) throw new Error(`${session.system}: warm-up not drained`);
  await sleep(500);
  const before = readProc(pid());
  const t0 = Date.now();
  const track = inst.probe.track('m', Math.round(rate * seconds));
  await inst.driver.drive(track, rate, opts);
  if (!(await inst.probe.drained(track, 60_000))) throw new Error(`${session.system}: ${track.missing()} events not predicted within 60 s`);
  const after = readProc(pid());
  session.assertAlive();
  if (!before || !after) throw new Error(`${session.system}: process gone`);
  if (track.duplicates > 0 || track.deadLettered > 0) throw new Error(`${session.system}: ${track.duplicates} duplicates, ${track.deadLettered} dead letters`);
  const cpuS = (after.ticks - before.ticks) / CLK_TCK;
  const lat = Array.from(track.receivedAt, (r, i) => r - track.sentAt[i]).sort((x, y) => x - y);
  return { events: track.sent, cpuS, cpuPer1k: (1000 * cpuS) / track.sent, wallS: (Date.now() - t0) / 1000, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--a <ref>', 'build A (LABEL=PATH of a built checkout, or LABEL=this)', 'a=this')
    .option('--b <ref>', 'build B', 'b=this')
    .option('--env-a <kv...>', 'environment K=V for A only', [])
    .option('--env-b <kv...>', 'environment K=V for B only', [])
    .option('--rate <n>', 'offered events/s (each of A and B)', '2000')
    .option('--seconds <n>', 'measured seconds per round', '20')
    .option('--warmup-seconds <n>', 'warm-up seconds per round (not measured)', '4')
    .option('--rounds <n>', 'A/B rounds', '3')
    .option('--partitions <n>', 'partitions', '3')
    .option('--sequential', 'run A and B one after the other (ABBA) instead of side by side')
    .parse()
    .opts<{ a: string; b: string; envA: string[]; envB: string[]; rate: string; seconds: string; warmupSeconds: string; rounds: string; partitions: string; sequential?: boolean }>();
  const ep = { brokers: (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean), schemaRegistryUrl: process.env.SCHEMA_REGISTRY_URL ?? '', redisUrl: process.env.REDIS_URL ?? '' };
  if (!ep.brokers.length || !ep.schemaRegistryUrl || !ep.redisUrl) throw new Error('KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL must be set (source the stack env)');
  const envOf = (kvs: string[]) => Object.fromEntries(kvs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const sides = [
    { ref: parseCodeRefs(o.a)[0], env: envOf(o.envA) },
    { ref: parseCodeRefs(o.b)[0], env: envOf(o.envB) },
  ];
  const kafka = createKafka({ clientId: 'bench-cpu-ab', brokers: ep.brokers });
  const admin = kafka.admin();
  await admin.connect();
  const progress = new Progress();
  const sampler = new ProcSampler(1000);
  const runTag = `cpuab${Date.now().toString(36)}`;
  const results: RoundResult[][] = [[], []];
  const rate = Number(o.rate);
  const startSide = async (side: number, r: number): Promise<SystemSession> => {
    const { ref, env } = sides[side];
    const def: SystemDef = { ...catalog([ref]).find((d) => d.variant === 'stateless' && d.transactions === 'shared')!, name: `${side === 0 ? 'A' : 'B'}-${ref.label}-r${r}` };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    const session = new SystemSession(def, { ep, kafka, admin, sampler, progress, partitions: Number(o.partitions), runTag, logsDir: os.tmpdir(), baseProcesses: [] });
    try {
      await session.start();
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    return session;
  };
  const measureSide = async (session: SystemSession, side: number, r: number): Promise<void> => {
    const pid = () => (session as unknown as { running: { procs: Array<{ pid: number }> } }).running.procs[0].pid;
    const m = await measure(session, pid, rate, Number(o.seconds), Number(o.warmupSeconds));
    results[side].push({ label: sides[side].ref.label, ...m });
    progress.log(`round ${r} ${side === 0 ? 'A' : 'B'} (${sides[side].ref.label}): ${round(m.cpuPer1k, 3)} CPU-s / 1k events (${round(m.cpuS, 2)} CPU-s for ${m.events} events in ${round(m.wallS, 1)} s; p50/p99 ${m.p50}/${m.p99} ms)`);
  };
  const finish = async (session: SystemSession) => {
    await session.stop().catch(() => undefined);
    await session.cleanup(true).catch(() => undefined);
  };
  try {
    for (let r = 0; r < Number(o.rounds); r++) {
      if (o.sequential) {
        // ABBA: a slow drift of the machine's load cancels out over two rounds
        for (const side of r % 2 === 0 ? [0, 1] : [1, 0]) {
          const session = await startSide(side, r);
          try {
            await measureSide(session, side, r);
          } finally {
            await finish(session);
          }
        }
      } else {
        // A and B at the same time, each on its own topics at the full rate: whatever else loads the
        // machine (and how many events each transaction and fetch carries because of it) hits both alike
        const sessions: SystemSession[] = [];
        try {
          for (const side of [0, 1]) sessions.push(await startSide(side, r));
          await Promise.all(sessions.map((s, side) => measureSide(s, side, r)));
        } finally {
          for (const s of sessions) await finish(s);
        }
      }
    }
  } finally {
    await admin.disconnect();
  }
  const ratios = results[0].map((a, i) => results[1][i].cpuPer1k / a.cpuPer1k).sort((x, y) => x - y);
  const med = (xs: number[]) => median(xs) ?? NaN;
  const summary = {
    rate,
    seconds: Number(o.seconds),
    A: { label: sides[0].ref.label, env: sides[0].env, cpuPer1k: results[0].map((x) => round(x.cpuPer1k, 3)), median: round(med(results[0].map((x) => x.cpuPer1k)), 3) },
    B: { label: sides[1].ref.label, env: sides[1].env, cpuPer1k: results[1].map((x) => round(x.cpuPer1k, 3)), median: round(med(results[1].map((x) => x.cpuPer1k)), 3) },
    ratiosBoverA: ratios.map((x) => round(x, 3)),
    medianRatioBoverA: round(med(ratios), 3),
  };
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error((err as Error).stack ?? String(err));
    process.exit(1);
  },
);
