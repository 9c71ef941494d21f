/**
 * The local stack through real servers. It runs its own, separate stack (own state dir, own ports) so the
 * shared stack from global setup is never touched.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import Redis from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { LocalStack } from '../../src/stack/local-stack';
import type { StackState } from '../../src/stack/state';

/** `ps` is the judge of liveness here, independent of the code under test. */
function psArgs(pid: number): string | undefined {
  try {
    return execFileSync('ps', ['-o', 'stat=,args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined; // ps exits 1 when the pid does not exist
  }
}

function running(pid: number): boolean {
  const line = psArgs(pid);
  return line !== undefined && !line.startsWith('Z');
}

/** Pids of live processes whose command line has every needle as a whole argument (scans /proc). */
function pidsMatching(...needles: string[]): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const args = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split(/[\0 ]+/);
        return needles.every((n) => args.includes(n));
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter(running);
}

function pids(state: StackState): number[] {
  return [state.kafka.pid, state.registry.pid, state.redis.pid];
}

function expectOneSetOfProcesses(state: StackState, stateDir: string): void {
  expect(pidsMatching('kafka.Kafka', path.join(stateDir, 'kafka', 'server.properties'))).toEqual([state.kafka.pid]);
  expect(pidsMatching('-jar', `-Dquarkus.http.port=${state.registry.port}`)).toEqual([state.registry.pid]);
  expect(pidsMatching(`127.0.0.1:${state.redis.port}`)).toEqual([state.redis.pid]);
}

// Starting JVMs on a small machine takes a while; the project-level testTimeout is not applied to projects.
const STACK_TIMEOUT_MS = 240_000;

describe('LocalStack (real servers, isolated state dir)', () => {
  let stateDir: string;
  let stack: LocalStack;
  let state: StackState;
  const everStarted = new Set<number>();

  beforeAll(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-stack-test-'));
    // TRIBUTARY_KAFKA_JVM_OPTS reaches the broker's JVM: a GC log, as a latency probe would ask for.
    stack = new LocalStack({ stateDir, env: { ...process.env, TRIBUTARY_KAFKA_JVM_OPTS: ` -Xlog:gc:file=${path.join(stateDir, 'kafka-gc.log')}  -Dtributary.test=1 ` } });
  });

  afterAll(async () => {
    await stack.down().catch(() => undefined);
    const leftovers = [...everStarted].filter(running);
    fs.rmSync(stateDir, { recursive: true, force: true });
    expect(leftovers).toEqual([]);
  }, STACK_TIMEOUT_MS);

  test('up is idempotent: a second up returns the same processes, and only one set runs', async () => {
    state = await stack.up();
    pids(state).forEach((p) => everStarted.add(p));
    expect(state.version).toBe(1);
    expect(state.kafka.brokers).toEqual([`127.0.0.1:${state.kafka.port}`]);
    expect(state.registry.url).toBe(`http://127.0.0.1:${state.registry.port}/apis/ccompat/v7`);
    expect(state.redis.url).toBe(`redis://127.0.0.1:${state.redis.port}`);
    expect(new Set([state.kafka.port, state.kafka.controllerPort, state.registry.port, state.redis.port]).size).toBe(4);
    for (const pid of pids(state)) expect(running(pid)).toBe(true);
    // Recorded pids are the servers themselves (no shell in between).
    expect(psArgs(state.kafka.pid)).toContain('java');
    expect(psArgs(state.registry.pid)).toContain('java');
    expect(psArgs(state.redis.pid)).toContain('redis-server');
    // the broker's extra JVM options, each its own argument, took effect: its collector logs to the file
    const brokerArgs = fs.readFileSync(`/proc/${state.kafka.pid}/cmdline`, 'utf8').split('\0');
    expect(brokerArgs).toContain(`-Xlog:gc:file=${path.join(stateDir, 'kafka-gc.log')}`);
    expect(brokerArgs).toContain('-Dtributary.test=1');
    expect(brokerArgs.indexOf('-Dtributary.test=1')).toBeLessThan(brokerArgs.indexOf('kafka.Kafka'));
    expect(fs.readFileSync(path.join(stateDir, 'kafka-gc.log'), 'utf8')).toMatch(/Using \w+/);

    const again = await stack.up();
    expect(pids(again)).toEqual(pids(state));
    expect(again.startedAt).toBe(state.startedAt);
    expectOneSetOfProcesses(state, stateDir);
    expect((await stack.status()).state).toBe('running');
  }, STACK_TIMEOUT_MS);

  test('the servers work: Kafka topics, Redis PING, registry subjects', async () => {
    const kafka = new Kafka({ clientId: 'stack-test', brokers: state.kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topic = `stack-test-${Date.now()}`;
      await expect(admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })).resolves.toBe(true);
      expect(await admin.listTopics()).toContain(topic);
    } finally {
      await admin.disconnect();
    }

    const redis = new Redis(state.redis.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }

    const subjects = await fetch(`${state.registry.url}/subjects`);
    expect(subjects.status).toBe(200);
    expect(await subjects.json()).toEqual([]);
    const registered = await fetch(`${state.registry.url}/subjects/stack-test-value/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify({ type: 'record', name: 'T', fields: [{ name: 'a', type: 'string' }] }) }),
    });
    expect(registered.status).toBe(200);
    expect(typeof ((await registered.json()) as { id: unknown }).id).toBe('number');
  }, STACK_TIMEOUT_MS);

  test('a partially dead stack is replaced by a fresh one on up', async () => {
    process.kill(state.redis.pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (running(state.redis.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await stack.status()).state).toBe('degraded');

    const fresh = await stack.up();
    pids(fresh).forEach((p) => everStarted.add(p));
    for (const old of pids(state)) expect(running(old)).toBe(false);
    for (const pid of pids(fresh)) expect(running(pid)).toBe(true);
    expect(fresh.startedAt).not.toBe(state.startedAt);
    expectOneSetOfProcesses(fresh, stateDir);
    state = fresh;
  }, STACK_TIMEOUT_MS);

  test('down stops exactly the recorded pids and removes the state file', async () => {
    const report = await stack.down();
    expect(report.stateFound).toBe(true);
    expect(report.servers.map((s) => [s.name, s.pid])).toEqual([
      ['kafka', state.kafka.pid],
      ['registry', state.registry.pid],
      ['redis', state.redis.pid],
    ]);
    for (const s of report.servers) expect(['stopped', 'killed']).toContain(s.result);
    for (const pid of pids(state)) expect(running(pid)).toBe(false);
    expect(fs.existsSync(stack.stateFile)).toBe(false);
    expect((await stack.status()).state).toBe('stopped');
    expect((await stack.down()).stateFound).toBe(false);
  }, STACK_TIMEOUT_MS);
});
