import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../../src/stack/paths';
import { DedicatedKafka } from '../helpers/dedicated-kafka';
import { DedicatedRedis } from '../helpers/dedicated-redis';
import { CLI, faultTopologyFile } from '../helpers/processes';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

/**
 * Secrets scan: the pipeline, produce-demo, backfill, drift and the test harness run with credentials in every
 * supported form (REDIS_URL user:pass, REDIS_PASSWORD, REDIS_PASSWORD_FILE, SCHEMA_REGISTRY_USERNAME/PASSWORD,
 * KAFKA_SASL_PASSWORD, KAFKA_SASL_PASSWORD_FILE) against servers that enforce them, at debug level; nothing they
 * print may contain a secret in plain, URL-encoded or base64 `user:pass` form.
 */
const endpoints = testEndpoints();
const random = () => Math.random().toString(36).slice(2, 10);
// Characters that URL-encoding changes, so the encoded form differs from the plain one.
const redisPassword = `r3dis/${random()}+pw`;
const kafkaPassword = `kafka-${random()}`;
const registryPassword = `reg-${random()}`;

function forms(user: string, secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), Buffer.from(`${user}:${secret}`).toString('base64')];
}
const SECRETS = [...forms('default', redisPassword), ...forms('alice', kafkaPassword), ...forms('registry-user', registryPassword)];

function expectNoSecrets(what: string, output: string): void {
  for (const s of SECRETS) {
    if (output.includes(s)) throw new Error(`${what} printed a secret form (${s.slice(0, 3)}…): ${output.slice(Math.max(0, output.indexOf(s) - 200), output.indexOf(s) + 50)}`);
  }
}

describe('secrets never reach the output', () => {
  let redis: DedicatedRedis;
  let broker: DedicatedKafka;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    [redis, broker] = await Promise.all([DedicatedRedis.start(redisPassword), DedicatedKafka.start({ scramUsers: { admin: `admin-${random()}`, alice: kafkaPassword } })]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-secrets-'));
    fs.writeFileSync(path.join(dir, 'redis-password'), `${redisPassword}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'kafka-password'), `${kafkaPassword}\n`, { mode: 0o600 });
  }, 240000);
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all([redis?.stop(), broker?.destroy()]);
  });

  /** The three forms, each used by at least one command below. */
  const variants = () => {
    const base = { KAFKA_BROKERS: broker.brokers.join(','), SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'alice', SCHEMA_REGISTRY_USERNAME: 'registry-user', SCHEMA_REGISTRY_PASSWORD: registryPassword, TRIBUTARY_LOG_LEVEL: 'debug', TRIBUTARY_LOG_FORMAT: 'json' };
    return {
      urlCredentials: { ...base, REDIS_URL: `redis://default:${encodeURIComponent(redisPassword)}@127.0.0.1:${redis.port}`, KAFKA_SASL_PASSWORD: kafkaPassword },
      passwordVariables: { ...base, REDIS_URL: redis.url, REDIS_PASSWORD: redisPassword, KAFKA_SASL_PASSWORD_FILE: path.join(dir, 'kafka-password') },
      passwordFiles: { ...base, REDIS_URL: redis.url, REDIS_PASSWORD_FILE: path.join(dir, 'redis-password'), KAFKA_SASL_PASSWORD_FILE: path.join(dir, 'kafka-password') },
    };
  };

  function runCli(args: string[], env: NodeJS.ProcessEnv, timeout = 120000) {
    return spawnSync(process.execPath, [CLI, ...args], { cwd: repoRoot(), encoding: 'utf8', timeout, env: { ...process.env, ...env } });
  }

  it('run, produce-demo, backfill, drift and the harness endpoint line print no secret in any form', async () => {
    const v = variants();
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix);

    // The pipeline, credentials in the URL and a plain SASL password.
    const run = spawn(process.execPath, [CLI, 'run', '--topology', file, '--metrics-port', '0'], { cwd: repoRoot(), env: { ...process.env, ...v.urlCredentials }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(run);
    let runOut = '';
    run.stdout!.on('data', (d: Buffer) => (runOut += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (runOut += d.toString()));
    await waitFor(() => runOut.includes('"pipeline running"'), 120000, () => `pipeline did not start: ${runOut.slice(-2000)}`);

    // Events in, with the password variables.
    const produced = runCli(['produce-demo', '--topology', file, '--count', '200', '--rate', '0'], v.passwordVariables);
    expect(produced.status).toBe(0);
    expect(produced.stdout).toContain('produced 200 events');

    // Drift with password files, while the pipeline scores.
    const drift = spawn(process.execPath, [CLI, 'drift', '--topology', file, '--metrics-port', '0', '--from-beginning'], { cwd: repoRoot(), env: { ...process.env, ...v.passwordFiles }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(drift);
    let driftOut = '';
    drift.stdout!.on('data', (d: Buffer) => (driftOut += d.toString()));
    drift.stderr!.on('data', (d: Buffer) => (driftOut += d.toString()));
    await waitFor(() => /monitoring server listening/.test(driftOut) && /drift|window/i.test(driftOut), 90000, () => `drift did not start: ${driftOut.slice(-2000)}`);

    // Backfill of the same range, password files again (reads Redis for features, Kafka with SASL).
    const out = path.join(dir, 'backfill.jsonl');
    const backfill = runCli(['backfill', '--topology', file, '--from', 'earliest', '--to', 'latest', '--output', out, '--state-dir', path.join(dir, 'backfill-state')], v.passwordFiles, 180000);
    expect(backfill.status).toBe(0);
    expect(fs.readFileSync(out, 'utf8').trim().split('\n').length).toBeGreaterThan(0);

    for (const child of [run, drift]) {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    }
    expect(runOut).toContain('"pipeline running"');
    // The servers enforce the credentials, so these commands really used them.
    expect(runOut).not.toMatch(/WRONGPASS|NOAUTH|SASL authentication failed/);

    // The harness's endpoint line (test set-up, demo) with credentials in every endpoint URL.
    const harness = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(repoRoot(), 'dist/stack/test-harness.js'))}).startTestStack().then(() => process.exit(0))`], {
      encoding: 'utf8',
      env: { ...process.env, ...v.urlCredentials, SCHEMA_REGISTRY_URL: `http://registry-user:${registryPassword}@127.0.0.1:1/apis/ccompat/v7`, TRIBUTARY_LOG_LEVEL: 'info' },
    });
    expect(harness.stderr).toContain('using endpoints from the environment');
    expect(harness.stderr).toContain('redis://default:[redacted]@');

    expectNoSecrets('run', runOut);
    expectNoSecrets('produce-demo', produced.stdout + produced.stderr);
    expectNoSecrets('drift', driftOut);
    expectNoSecrets('backfill', backfill.stdout + backfill.stderr);
    expectNoSecrets('test harness', harness.stdout + harness.stderr);
  });

  it('a wrong Redis password fails with the reason and without printing either password', () => {
    const v = variants();
    const res = runCli(['features', 'versions', '--set', 'merchant_risk'], { ...v.urlCredentials, REDIS_URL: `redis://default:wrong-${random()}@127.0.0.1:${redis.port}` }, 60000);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/WRONGPASS|invalid username-password/);
    expect(res.stderr).not.toMatch(/wrong-[a-z0-9]+@/);
    expectNoSecrets('features versions', res.stdout + res.stderr);
  });
});
