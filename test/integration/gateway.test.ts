import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { GatewayClient, GatewayHttpError, type GatewayEvent } from '../../src/client/gateway-client';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { createKafka } from '../../src/kafka/client';
import { runGateway, type RunningGateway } from '../../src/gateway/run';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { loadTopologyFile } from '../../src/cli/topology-file';
import { CLI, suffixedTopologyFile } from '../helpers/processes';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';
import type { Transaction } from '../../examples/fraud/schemas';

/**
 * The gateway through the real stack (Kafka, registry, Redis): a fused extract+score pipeline
 * in this process, gateways as real `tributary gateway` processes (two behind a "load balancer",
 * one killed -9 between produce and response) and in-process ones for the limits.
 * The issue's scale: 1,000 requests from 50 concurrent clients.
 */
const REQUESTS = 1000;
const CLIENTS = 50;
const TOKEN = `test-${uniqueSuffix()}`;

function topologyFile(suffix: string): string {
  // A transaction with an absurd merchant id is dead-lettered (TOO_LARGE) by the extract stage.
  return suffixedTopologyFile(suffix, (doc) => (doc.stages[0].limits = { maxMessageBytes: 1024 }), 'tributary-gateway-');
}

class GatewayProcess {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  readonly exited: Promise<NodeJS.Signals | null>;

  constructor(file: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, 'gateway', '--topology', file, '--port', '0', ...args], { cwd: repoRoot(), env: { ...process.env, TRIBUTARY_GATEWAY_TOKEN: TOKEN, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
    this.exited = new Promise((r) => this.child.once('exit', (_c, s) => r(s)));
  }

  async started(timeoutMs = 60000): Promise<{ url: string; instance: string; replyPartition: number }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.includes('\n')) {
      if (this.child.exitCode !== null) throw new Error(`gateway exited: ${this.err.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`gateway did not start: ${this.err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return JSON.parse(this.out.split('\n')[0]) as { url: string; instance: string; replyPartition: number };
  }

  get logs(): string {
    return this.err;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Counter value of `name{labels}` in a Prometheus text page (0 when absent). */
function metric(page: string, name: string, labels = ''): number {
  const line = page.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

async function inputEnd(topic: string): Promise<number> {
  const admin = createKafka({ clientId: 'gateway-test', brokers: testEndpoints().brokers }).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Every committed prediction of the topic, by input offset (`partition/offset`). */
async function predictionsInTopic(topic: string, expected: number): Promise<Map<string, Prediction[]>> {
  const ep = testEndpoints();
  const byInput = new Map<string, Prediction[]>();
  let n = 0;
  const consumer = new TopicConsumer({ brokers: ep.brokers, schemaRegistryUrl: ep.schemaRegistryUrl, topic, schema: 'prediction', groupId: `verify-${uniqueSuffix()}` });
  await consumer.run((p) => {
    const k = `${p.lineage.partition}/${p.lineage.offset}`;
    byInput.set(k, [...(byInput.get(k) ?? []), p]);
    n += 1;
  });
  const deadline = Date.now() + 60000;
  while (n < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 1500)); // anything beyond `expected` (a duplicate) shows up too
  await consumer.stop();
  return byInput;
}

describe('tributary gateway through the real stack', () => {
  const suffix = `gw${uniqueSuffix()}`;
  const file = topologyFile(suffix);
  const topology = loadTopologyFile(file);
  const inputTopic = topology.spec.stages[0].input.topic;
  const predictionTopic = topology.spec.stages[1].output.topic;
  const gen = new TransactionGenerator({ seed: 4242, startTime: Date.now() - 3_600_000, eventsPerSecond: 50 });
  const next = (): Transaction => ({ ...gen.next().tx, eventTime: Date.now() });
  let pipeline: Pipeline;
  const a = new GatewayProcess(file, ['--partition-by', 'cardId', '--lease-ms', '2000', '--max-in-flight', '500']);
  const b = new GatewayProcess(file, ['--partition-by', 'cardId', '--lease-ms', '2000', '--max-in-flight', '500']);
  let A: { url: string; replyPartition: number };
  let B: { url: string; replyPartition: number };
  const answers: { event: Transaction; answer: Awaited<ReturnType<GatewayClient['predict']>> }[] = [];
  const inProcess: RunningGateway[] = [];

  beforeAll(async () => {
    pipeline = await Pipeline.start({ topology, endpoints: testEndpoints() });
    [A, B] = await Promise.all([a.started(), b.started()]);
  }, 120000);

  afterAll(async () => {
    await Promise.allSettled([a.stop(), b.stop(), ...inProcess.map((g) => g.stop())]);
    await pipeline?.stop();
  }, 60000);

  it(`${REQUESTS} requests from ${CLIENTS} concurrent clients over two instances: each answer is the prediction the topic holds, retried keys produce nothing twice, each instance fetches only its own replies`, async () => {
    expect(A.replyPartition).not.toBe(B.replyPartition);
    const before = await Promise.all([scrape(A.url), scrape(B.url)]);
    const clients = [new GatewayClient({ url: A.url, token: TOKEN }), new GatewayClient({ url: B.url, token: TOKEN })];
    const fresh = [0, 0];
    let cursor = 0;
    const replays: Promise<void>[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        while (cursor < REQUESTS) {
          const i = cursor++;
          const event = next();
          const which = (c + i) % 2;
          const key = `k-${suffix}-${i}`;
          const answer = await clients[which].predict(event, { idempotencyKey: key, timeoutMs: 20000 });
          expect(answer.replayed).toBe(false);
          fresh[which] += 1;
          answers.push({ event, answer });
          // Every 10th request is retried on the other instance: same answer, no second event.
          if (i % 10 === 0) {
            replays.push(
              clients[1 - which].predict(event, { idempotencyKey: key, timeoutMs: 20000 }).then((again) => {
                expect(again.replayed).toBe(true);
                expect(again.correlationId).toBe(answer.correlationId);
                expect(again.prediction).toEqual(answer.prediction);
              }),
            );
          }
        }
      }),
    );
    await Promise.all(replays);

    // Concurrent duplicates sent to both instances at once: one event, one answer.
    const dupEvents = Array.from({ length: 20 }, () => next());
    const dup = await Promise.all(dupEvents.map((event, i) => Promise.all(clients.map((cl) => cl.predict(event, { idempotencyKey: `dup-${suffix}-${i}`, timeoutMs: 20000 })))));
    dup.forEach(([x, y], i) => {
      expect(x.correlationId).toBe(y.correlationId);
      expect(x.prediction).toEqual(y.prediction);
      expect([x.replayed, y.replayed].sort()).toEqual([false, true]);
      answers.push({ event: dupEvents[i], answer: x.replayed ? y : x });
    });

    const topic = await predictionsInTopic(predictionTopic, answers.length);
    const total = [...topic.values()].reduce((n, l) => n + l.length, 0);
    expect(total).toBe(answers.length);
    for (const { answer } of answers) {
      const k = `${answer.input.partition}/${answer.input.offset}`;
      expect(topic.get(k)).toHaveLength(1);
      expect(topic.get(k)![0]).toEqual(answer.prediction);
    }
    for (const { event, answer } of answers) expect(answer.prediction.key).toBe(event.transactionId);
    // What the gateway adds to the pipeline's own event → prediction time (Kafka timestamp of the
    // input → the prediction's producedTime), on the same events, under this closed-loop load.
    const overhead = answers.slice(0, REQUESTS).map(({ answer: x }) => x.ms - (x.prediction.producedTime - x.prediction.ingestTime)).sort((p, q) => p - q);
    const pipelineMs = answers.slice(0, REQUESTS).map(({ answer: x }) => x.prediction.producedTime - x.prediction.ingestTime).sort((p, q) => p - q);
    const q = (xs: number[], f: number) => xs[Math.min(xs.length - 1, Math.floor(f * xs.length))];
    process.stdout.write(`gateway overhead over ${REQUESTS} requests / ${CLIENTS} clients: p50 ${q(overhead, 0.5)} ms, p99 ${q(overhead, 0.99)} ms (pipeline event→prediction p50 ${q(pipelineMs, 0.5)} ms, p99 ${q(pipelineMs, 0.99)} ms)\n`);

    // Replies fetched (kafkajs instrumentation): each instance only its own partition, and exactly
    // the copies of its own requests (features + prediction per fresh request; the duplicate
    // phase's fresh ones are counted from the non-replayed side).
    const after = await Promise.all([scrape(A.url), scrape(B.url)]);
    const dupFresh = [dup.filter(([x]) => !x.replayed).length, dup.filter(([, y]) => !y.replayed).length];
    for (const [i, g] of [A, B].entries()) {
      const other = i === 0 ? B : A;
      const own = metric(after[i], 'tributary_gateway_reply_records_fetched_total', `partition="${g.replyPartition}"`) - metric(before[i], 'tributary_gateway_reply_records_fetched_total', `partition="${g.replyPartition}"`);
      expect(own).toBe(2 * (fresh[i] + dupFresh[i]));
      expect(after[i]).not.toContain(`tributary_gateway_reply_records_fetched_total{partition="${other.replyPartition}"}`);
      expect(metric(after[i], 'tributary_gateway_requests_total', 'endpoint="predict",outcome="ok"')).toBeGreaterThan(0);
      expect(after[i]).toContain('tributary_gateway_event_latency_seconds_bucket{le="0.5",event="prediction"}');
    }
  }, 300000);

  it('the typed client streams accepted → features → prediction → end, in order, with timings', async () => {
    const client = new GatewayClient({ url: A.url, token: TOKEN });
    const events: GatewayEvent[] = [];
    for await (const e of client.stream(next(), { timeoutMs: 20000 })) events.push(e);
    expect(events.map((e) => e.type)).toEqual(['accepted', 'features', 'prediction', 'end']);
    const features = events[1] as Extract<GatewayEvent, { type: 'features' }>;
    // The batch set versions the vector was built from (whatever is loaded in the shared Redis).
    expect(Object.keys(features.featureSetVersions ?? {}).sort()).toEqual(['card_profile', 'merchant_risk']);
    expect((features.value as { values: number[] }).values.length).toBeGreaterThan(10);
    expect(events[3]).toMatchObject({ outcome: 'prediction' });
    for (let i = 1; i < events.length; i++) expect(events[i].ms).toBeGreaterThanOrEqual(events[i - 1].ms);
  }, 60000);

  it('a bad event gets 400 with the field path and nothing is produced; no token gets 401', async () => {
    const before = await inputEnd(inputTopic);
    const client = new GatewayClient<unknown>({ url: A.url, token: TOKEN });
    const bad = { ...next(), amount: 'twelve', country: undefined, extra: 1 };
    const err = (await client.predict(bad).catch((e: unknown) => e)) as GatewayHttpError;
    expect(err).toBeInstanceOf(GatewayHttpError);
    expect(err.status).toBe(400);
    expect((err.body.problems as { path: string }[]).map((p) => p.path).sort()).toEqual(['amount', 'country', 'extra']);
    const notJson = await fetch(`${A.url}/v1/stream`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '{"amount":' });
    expect(notJson.status).toBe(400);
    const noToken = await new GatewayClient({ url: B.url }).predict(next()).catch((e: unknown) => e);
    expect((noToken as GatewayHttpError).status).toBe(401);
    const wrongToken = await new GatewayClient({ url: B.url, token: 'nope' }).predict(next()).catch((e: unknown) => e);
    expect((wrongToken as GatewayHttpError).status).toBe(401);
    expect(await inputEnd(inputTopic)).toBe(before);
  }, 60000);

  it('a dead-lettered event: the stream says dead-letter (stage and reason), predict answers 422', async () => {
    const client = new GatewayClient({ url: B.url, token: TOKEN });
    const events: GatewayEvent[] = [];
    for await (const e of client.stream({ ...next(), merchantId: 'm'.repeat(2000) }, { timeoutMs: 20000 })) events.push(e);
    expect(events.map((e) => e.type)).toEqual(['accepted', 'dead-letter', 'end']);
    // The stage that rejected it, as the dead letter says: extract's repartition hop (it carries the stage's limits) when the engine inserted one.
    expect(events[1]).toMatchObject({ stage: expect.stringMatching(/^extract(-repartition)?$/), errorKind: 'TOO_LARGE' });
    const err = (await client.predict({ ...next(), merchantId: 'm'.repeat(2000) }, { timeoutMs: 20000 }).catch((e: unknown) => e)) as GatewayHttpError;
    expect(err.status).toBe(422);
    expect(err.body).toMatchObject({ error: 'dead-lettered', stage: expect.stringMatching(/^extract(-repartition)?$/), errorKind: 'TOO_LARGE' });
  }, 60000);

  it('a deadline answers 504 naming the stage; the retry with the same key gets the late prediction and nothing is produced twice', async () => {
    // A second topology with no pipeline running: the event waits at its first stage.
    const idle = loadTopologyFile(topologyFile(`${suffix}idle`));
    const g = await runGateway({ topology: idle, endpoints: testEndpoints(), port: 0, leaseMs: 2000 });
    inProcess.push(g);
    const client = new GatewayClient({ url: g.url });
    const event = next();
    const err = (await client.predict(event, { idempotencyKey: 'late-1', timeoutMs: 300 }).catch((e: unknown) => e)) as GatewayHttpError;
    expect(err.status).toBe(504);
    expect(err.body.stage).toBe('extract');
    expect(String(err.body.detail)).toMatch(/queued for stage extract/);
    const stream: GatewayEvent[] = [];
    for await (const e of client.stream(next(), { timeoutMs: 300 })) stream.push(e);
    expect(stream.map((e) => e.type)).toEqual(['accepted', 'timeout', 'end']);
    expect(stream[1]).toMatchObject({ stage: 'extract' });

    // Now the topology runs: the late prediction reaches the waiting instance, and the retry gets it.
    const late = await Pipeline.start({ topology: idle, endpoints: testEndpoints() });
    try {
      const answer = await client.predict(event, { idempotencyKey: 'late-1', timeoutMs: 20000 });
      expect(answer.replayed).toBe(true);
      expect(answer.prediction.key).toBe(event.transactionId);
      const topic = await predictionsInTopic(idle.spec.stages[1].output.topic, 2);
      expect([...topic.values()].every((l) => l.length === 1)).toBe(true);
      expect(topic.get(`${answer.input.partition}/${answer.input.offset}`)![0]).toEqual(answer.prediction);
    } finally {
      await late.stop();
    }
  }, 120000);

  it('overload: beyond max connections → 503, beyond max in-flight → 429 (both with Retry-After), too large → 413', async () => {
    const g = await runGateway({ topology, endpoints: testEndpoints(), port: 0, leaseMs: 2000, limits: { maxInFlight: 2, maxConnections: 3, maxBodyBytes: 2048 } });
    inProcess.push(g);
    const { port } = new URL(g.url);
    // Three idle connections take every slot: a request on a fourth is refused at once.
    const idle = await Promise.all(Array.from({ length: 3 }, () => new Promise<net.Socket>((resolve) => { const s = net.connect(Number(port), '127.0.0.1', () => resolve(s)); })));
    await new Promise((r) => setTimeout(r, 100));
    const refusedConn = await new GatewayClient({ url: g.url }).predict(next()).catch((e: unknown) => e);
    expect(refusedConn).toMatchObject({ status: 503 });
    expect((refusedConn as GatewayHttpError).retryAfter).toBeGreaterThan(0);
    idle.forEach((s) => s.destroy());
    await new Promise((r) => setTimeout(r, 200));

    const client = new GatewayClient({ url: g.url });
    const results = await Promise.all(Array.from({ length: 8 }, () => client.predict(next(), { timeoutMs: 20000 }).then((x) => x, (e: GatewayHttpError) => e)));
    const refused = results.filter((r): r is GatewayHttpError => r instanceof GatewayHttpError);
    const served = results.length - refused.length;
    expect(served).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect([429, 503]).toContain(r.status);
      expect(r.retryAfter).toBeGreaterThan(0);
    }
    expect(refused.some((r) => r.status === 429)).toBe(true);
    const big = await fetch(`${g.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...next(), merchantId: 'x'.repeat(4000) }) });
    expect(big.status).toBe(413);
    const page = await scrape(g.url);
    expect(metric(page, 'tributary_gateway_requests_total', 'endpoint="predict",outcome="overloaded"')).toBe(refused.length + 1);
  }, 60000);

  it('kill -9 of a gateway between produce and response: the retry on another instance gets the prediction, one event in the topic', async () => {
    const doomed = new GatewayProcess(file, ['--partition-by', 'cardId', '--lease-ms', '2000'], { TRIBUTARY_FAULT_CRASH_AT: 'gateway-produced:1' });
    const D = await doomed.started();
    const event = next();
    const first = await new GatewayClient({ url: D.url, token: TOKEN }).predict(event, { idempotencyKey: `crash-${suffix}`, timeoutMs: 20000 }).catch((e: unknown) => e);
    expect(String((first as Error).message)).toMatch(/fetch failed|terminated|socket/); // the connection died with the process
    expect(await doomed.exited).toBe('SIGKILL');
    const retry = await new GatewayClient({ url: A.url, token: TOKEN }).predict(event, { idempotencyKey: `crash-${suffix}`, timeoutMs: 20000 });
    expect(retry.replayed).toBe(true);
    expect(retry.prediction.key).toBe(event.transactionId);
    const topic = await predictionsInTopic(predictionTopic, answers.length + 1);
    const forEvent = [...topic.values()].flat().filter((p) => p.key === event.transactionId);
    expect(forEvent).toHaveLength(1);
    expect(forEvent[0]).toEqual(retry.prediction);
  }, 120000);

  it('serves /openapi.json generated from the schemas, and the playground page', async () => {
    const doc = (await (await fetch(`${A.url}/openapi.json`)).json()) as { components: { schemas: { Event: { required: string[]; properties: Record<string, unknown> } } }; paths: Record<string, unknown> };
    expect(doc.components.schemas.Event.required).toEqual(['transactionId', 'cardId', 'merchantId', 'amount', 'currency', 'merchantCategory', 'country', 'eventTime']);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/predict', '/v1/stream']));
    const html = await (await fetch(`${A.url}/`)).text();
    expect(html).toContain('Tributary gateway playground');
    expect(a.logs).not.toMatch(/"level":(40|50)/);
  }, 30000);
});
