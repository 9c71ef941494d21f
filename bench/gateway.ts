/**
 * Gateway bench (`npm run bench:gateway`): on the local stack (KAFKA_BROKERS / SCHEMA_REGISTRY_URL /
 * REDIS_URL, or the stack state), with the pipeline and the gateway as real processes:
 *
 * 1. Overhead at a fixed request rate: each event is sent to POST /v1/predict at `--rate` per second
 *    for `--seconds`; the same events' pipeline latency is what a downstream consumer of the
 *    prediction topic sees (arrival − the input record's Kafka timestamp). Added = the client's
 *    request → answer time − that pipeline latency, per event; p50/p99 reported.
 * 2. Open streams: `--streams` concurrent POST /v1/stream held open on a topology with no pipeline
 *    running (each waits for its deadline), the gateway's RSS before/while and its open-streams gauge.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { TopicConsumer } from '../src/client/topic-consumer';
import { TransactionGenerator } from '../examples/fraud/generator';
import { resolveEndpoints } from '../src/stack/endpoints';
import { repoRoot } from '../src/stack/paths';
import { suffixedTopologyFile } from '../test/helpers/processes';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const RATE = Number(args.get('rate') ?? 50);
const SECONDS = Number(args.get('seconds') ?? 20);
const STREAMS = Number(args.get('streams') ?? 2000);
const CLI = path.join(repoRoot(), 'dist/cli/main.js');

function start(cmd: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, [CLI, ...cmd], { cwd: repoRoot(), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

async function until(cond: () => boolean, what: string, timeoutMs = 90000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(f * xs.length))];

/** A POST over a keep-alive agent (plain http: the client's own cost stays small and predictable). */
function post(agent: http.Agent, url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const ep = resolveEndpoints();
  const env = { KAFKA_BROKERS: ep.brokers.join(','), SCHEMA_REGISTRY_URL: ep.schemaRegistryUrl, REDIS_URL: ep.redisUrl ?? '', TRIBUTARY_LOG_LEVEL: 'warn' };
  const suffix = `bgw${Date.now().toString(36)}`;
  const file = suffixedTopologyFile(suffix, undefined, 'tributary-bench-gw-');
  const predictions = `fraud.predictions.${suffix}`;
  const pipeline = start(['run', '--topology', file, '--metrics-port', '0'], { ...env, TRIBUTARY_LOG_LEVEL: 'info' });
  await until(() => pipeline.err().includes('pipeline running'), 'the pipeline');
  const gw = start(['gateway', '--topology', file, '--port', '0', '--partition-by', 'cardId', '--max-in-flight', String(STREAMS + 100), '--max-connections', String(STREAMS + 200)], env);
  await until(() => gw.out().includes('\n'), 'the gateway');
  const { url } = JSON.parse(gw.out().split('\n')[0]) as { url: string };

  const seen = new Map<string, number>();
  const consumer = new TopicConsumer({ brokers: ep.brokers, schemaRegistryUrl: ep.schemaRegistryUrl, topic: predictions, schema: 'prediction', groupId: `bench-${suffix}` });
  await consumer.run((p) => void seen.set(p.key, Date.now() - p.ingestTime));

  const gen = new TransactionGenerator({ seed: 7, startTime: Date.now() - 3_600_000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  // Warm-up: connections, JIT, first fetches.
  for (let i = 0; i < 50; i++) await post(agent, `${url}/v1/predict`, JSON.stringify({ ...gen.next().tx, eventTime: Date.now() }));

  const gateway: Map<string, number> = new Map();
  const pending: Promise<void>[] = [];
  const t0 = Date.now();
  const total = RATE * SECONDS;
  let failures = 0;
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const tx = { ...gen.next().tx, eventTime: Date.now() };
    const sent = performance.now();
    pending.push(post(agent, `${url}/v1/predict?timeoutMs=10000`, JSON.stringify(tx)).then((res) => {
      if (res.status === 200) gateway.set(tx.transactionId, performance.now() - sent);
      else failures += 1;
    }));
  }
  await Promise.all(pending);
  await until(() => [...gateway.keys()].every((k) => seen.has(k)), 'the consumer to see every prediction', 30000);
  await consumer.stop();
  const keys = [...gateway.keys()];
  const added = keys.map((k) => gateway.get(k)! - seen.get(k)!);
  const pipe = keys.map((k) => seen.get(k)!);
  const via = keys.map((k) => gateway.get(k)!);
  const fixed = { rate: RATE, seconds: SECONDS, answered: keys.length, failures, pipelineMs: { p50: q(pipe, 0.5), p99: q(pipe, 0.99) }, gatewayMs: { p50: q(via, 0.5), p99: q(via, 0.99) }, addedMs: { p50: q(added, 0.5), p99: q(added, 0.99) } };
  process.stdout.write(`${JSON.stringify({ fixedRate: fixed })}\n`);
  pipeline.child.kill('SIGTERM');
  await new Promise((r) => pipeline.child.once('exit', r));

  // Open streams: the pipeline is stopped, so every stream waits for its deadline.
  const before = rssMb(gw.child.pid!);
  const streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  let opened = 0;
  const streams = Array.from({ length: STREAMS }, () => new Promise<number>((resolve) => {
    const body = JSON.stringify({ ...gen.next().tx, eventTime: Date.now() });
    const req = http.request(`${url}/v1/stream?timeoutMs=30000`, { method: 'POST', agent: streamAgent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode === 200) opened += 1;
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
    req.end(body);
  }));
  await until(() => opened >= STREAMS, `${STREAMS} open streams`, 60000).catch(() => undefined);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const gauge = Number(/^tributary_gateway_open_streams (\d+)/m.exec(metrics)?.[1] ?? NaN);
  const during = rssMb(gw.child.pid!);
  const held = { streams: STREAMS, opened, openStreamsGauge: gauge, rssBeforeMb: Math.round(before), rssWhileOpenMb: Math.round(during), perStreamKb: Math.round(((during - before) * 1024) / Math.max(1, opened)), fdLimit: Number(fs.readFileSync(`/proc/${gw.child.pid}/limits`, 'utf8').match(/Max open files\s+(\d+)/)?.[1]) };
  process.stdout.write(`${JSON.stringify({ openStreams: held })}\n`);
  streamAgent.destroy();
  gw.child.kill('SIGTERM');
  await Promise.race([Promise.all(streams), new Promise((r) => setTimeout(r, 5000))]);
  await new Promise((r) => gw.child.once('exit', r));
  agent.destroy();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
