/**
 * Plugins: processors from the user's own .ts/.js files (test/fixtures/plugins, copied into a
 * pipeline folder outside the repository, with no node_modules), and a feature function called from
 * declarative definitions (the IoT example's plugin), validated and run by the built CLI
 * (`node dist/cli/main.js`, no build step for the TypeScript plugin) against the real stack.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { DeadLetter, FeatureVector } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { repoRoot } from '../../src/util/paths';
import { SensorGenerator, type SensorReading } from '../../examples/iot/generator';
import { produceReadings } from '../../examples/iot/produce';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, transactionSchema, type Transaction } from '../../examples/fraud/schemas';

const CLI = path.join(repoRoot(), 'dist/cli/main.js');
const FIXTURES = path.join(repoRoot(), 'test/fixtures/plugins');
const endpoints = testEndpoints();

function cli(args: string[], cwd: string) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60000, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn' } });
}

/** A pipeline folder in a temp dir: schemas/ (the input events' schema, a copy of the fraud example's; the package's schemas serve the rest), plugins/ with the given fixtures, topology.yaml. */
function pipelineFolder(suffix: string, plugins: string[], edit?: (doc: any) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-plugins-'));
  fs.mkdirSync(path.join(dir, 'schemas'));
  fs.copyFileSync(transactionSchema().file, path.join(dir, 'schemas', 'transaction.avsc'));
  fs.mkdirSync(path.join(dir, 'plugins'));
  for (const p of plugins) fs.copyFileSync(path.join(FIXTURES, p), path.join(dir, 'plugins', p));
  const t = (name: string) => `plug.${name}.${suffix}`;
  const doc = {
    name: `plugins-${suffix}`,
    plugins: plugins.map((p) => `./plugins/${p}`),
    topics: [
      { name: t('tx'), partitions: 2, schema: 'transaction' },
      { name: t('amounts'), partitions: 2, schema: 'feature-vector' },
      { name: t('scaled'), partitions: 2, schema: 'feature-vector' },
      { name: t('dlq'), partitions: 1, schema: 'dead-letter' },
    ],
    deadLetter: { topic: t('dlq') },
    stages: [
      { name: 'amount', processor: 'amount_features', input: { topic: t('tx'), fromBeginning: true }, output: { topic: t('amounts') }, config: { set: 'amounts', version: 1, rejectAbove: 5000 } },
      { name: 'scale', processor: 'scale_values', input: { topic: t('amounts'), fromBeginning: true }, output: { topic: t('scaled') }, config: { factor: 2 } },
    ],
  };
  edit?.(doc);
  fs.writeFileSync(path.join(dir, 'topology.yaml'), stringify(doc));
  return dir;
}

const USED = ['amount-features.ts', 'scale-values.js'];

describe('plugins (built CLI, real stack)', () => {
  beforeAll(() => {
    if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  });

  it('validates a topology using a .ts and a .js plugin processor and reports their guarantees', () => {
    const dir = pipelineFolder(uniqueSuffix(), [...USED, 'webhook-notify.ts']);
    const res = cli(['--json', 'validate', 'topology.yaml'], dir);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const out = JSON.parse(res.stdout) as { ok: boolean; plugins: { plugin: string; processors: { name: string; exactlyOnce: boolean; stages: string[] }[] }[] };
    expect(out.ok).toBe(true);
    const procs = out.plugins.flatMap((p) => p.processors.map((x) => ({ plugin: p.plugin, ...x })));
    expect(procs).toEqual([
      expect.objectContaining({ plugin: './plugins/amount-features.ts', name: 'amount_features', exactlyOnce: true, stages: ['amount'] }),
      expect.objectContaining({ plugin: './plugins/scale-values.js', name: 'scale_values', exactlyOnce: true, stages: ['scale'] }),
      expect.objectContaining({ plugin: './plugins/webhook-notify.ts', name: 'webhook_notify', exactlyOnce: false, stages: [] }),
    ]);
    const human = cli(['validate', 'topology.yaml'], dir);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/processor webhook_notify \(deterministic, HAS outside side effects; not used\): exactly-once covers only its Kafka outputs/);
  });

  it.each([
    ['a bad plugin config field', USED, (d: any) => (d.stages[0].config.rejectAbove = 'high'), /stages\[0\]\.config\.rejectAbove: must be number/],
    ['a missing plugin config field', USED, (d: any) => delete d.stages[1].config.factor, /stages\[1\]\.config\.factor: is required/],
    ['a plugin check failing', USED, (d: any) => (d.stages[0].config.scale = 0), /stages\[0\]\.config\.scale: must not be 0/],
    ['a missing plugin file', USED, (d: any) => d.plugins.push('./plugins/nope.ts'), /plugins\[2\]: plugin file not found: .*nope\.ts/],
    ['a module that registers nothing', [...USED, 'registers-nothing.js'], undefined, /plugins\[2\]: plugin '\.\/plugins\/registers-nothing\.js' registers no processor/],
    ['a duplicate processor name', [...USED, 'duplicate-amount.mjs'], undefined, /plugins\[2\]: processor 'amount_features' is already registered by plugins\[0\] \(\.\/plugins\/amount-features\.ts\)/],
    ['a built-in name taken again', [...USED, 'builtin-name.js'], undefined, /plugins\[2\]: processor 'onnx_inference' is already registered by the built-in processors/],
    ['a processor without declared guarantees', [...USED, 'no-guarantees.ts'], undefined, /plugins\[2\]: processor 'vague': deterministic: must be declared true or false/],
  ])('fails validation on %s, naming the path', (_what, plugins, edit, expected) => {
    const dir = pipelineFolder(uniqueSuffix(), plugins as string[], edit as ((d: any) => void) | undefined);
    const res = cli(['validate', 'topology.yaml'], dir);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(expected as RegExp);
  });

  it('runs the plugin stages end to end: produce -> .ts plugin -> .js plugin -> output topic, rejections dead-lettered', async () => {
    const suffix = uniqueSuffix();
    const dir = pipelineFolder(suffix, USED);
    const t = (name: string) => `plug.${name}.${suffix}`;
    const child = spawn(process.execPath, [CLI, 'run', 'topology.yaml', '--metrics-port', '0'], { cwd: dir, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const logs: string[] = [];
    child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const out: FeatureVector[] = [];
    const dead: DeadLetter[] = [];
    const consumers = [
      new TopicConsumer({ ...endpoints, topic: t('scaled'), schema: 'feature-vector', groupId: `plug-out-${suffix}`, fromBeginning: true }),
      new TopicConsumer({ ...endpoints, topic: t('dlq'), schema: 'dead-letter', groupId: `plug-dlq-${suffix}`, fromBeginning: true }),
    ] as const;
    try {
      await waitFor(() => logs.join('').includes('"pipeline running"'), 90000, () => `pipeline did not start: ${logs.join('').slice(-3000)}`);
      await consumers[0].run((v) => {
        out.push(v);
      });
      await consumers[1].run((v) => {
        dead.push(v);
      });
      const producer = new TopicProducer({ ...endpoints, topic: t('tx'), schema: 'transaction', schemas: fraudSchemas, key: (e) => e.transactionId });
      await producer.connect();
      const events: Transaction[] = Array.from({ length: 40 }, (_, i) => ({
        transactionId: `tx-${i}`,
        cardId: `card-${i % 7}`,
        merchantId: `m-${i % 3}`,
        amount: i % 10 === 9 ? 9000 + i : 10 * i + 0.5,
        currency: 'EUR',
        merchantCategory: 'grocery',
        country: 'DE',
        eventTime: 1_700_000_000_000 + i * 1000,
      }));
      await producer.send(events);
      await producer.disconnect();
      await waitFor(() => out.length >= 36 && dead.length >= 4, 60000, () => `${out.length} outputs, ${dead.length} dead letters; logs: ${logs.join('').slice(-2000)}`);
      const byKey = new Map(out.map((v) => [v.key, v]));
      expect(byKey.size).toBe(36);
      for (const e of events.filter((x) => x.amount <= 5000)) {
        const v = byKey.get(e.transactionId)!;
        expect(v.featureSet).toBe('amounts');
        expect(v.names).toEqual(['amount', 'log1p_amount']);
        // the .ts plugin's features, then the .js plugin's factor 2, fused in one chain
        expect(v.values).toEqual([2 * e.amount, 2 * Math.log1p(e.amount)]);
      }
      expect(dead.map((d) => d.stage).every((s) => s === 'amount')).toBe(true);
      expect(dead.map((d) => d.errorKind)).toEqual(['PROCESSING_ERROR', 'PROCESSING_ERROR', 'PROCESSING_ERROR', 'PROCESSING_ERROR']);
      expect(dead.map((d) => d.errorMessage).sort()).toEqual(['amount 9009 above 5000', 'amount 9019 above 5000', 'amount 9029 above 5000', 'amount 9039 above 5000']);
    } finally {
      await Promise.allSettled(consumers.map((c) => c.stop()));
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // A clean run: no ERROR lines (the dead letters' WARN is the dead-letter path working).
    expect(logs.join('')).not.toMatch(/"level":"?(error|50)/i);
  });
});

/**
 * A plugin feature function (examples/iot/plugins/vibration-severity.ts and its Python twin, copied
 * into a pipeline folder outside the repository) called by the declarative definitions of a
 * feature_extraction stage: validated and run by the built CLI against the real stack.
 */
describe('plugin feature functions (built CLI, real stack)', () => {
  const IOT = path.join(repoRoot(), 'examples/iot');
  const severity = (v: number, model: string, indoor: boolean): number | null => {
    const limit = ({ VX100: 4.5, VX200: 7.1, PT7: 2.8 } as Record<string, number>)[model];
    if (limit === undefined) return null;
    return (v < 0 ? 0 : v) / (indoor ? limit : limit * 1.25);
  };

  function iotFolder(suffix: string, severityExpr: unknown = { 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel', 'location.indoor'] }): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fn-'));
    for (const sub of ['schemas', 'plugins', 'features']) fs.mkdirSync(path.join(dir, sub));
    fs.copyFileSync(path.join(IOT, 'schemas/sensor-reading.avsc'), path.join(dir, 'schemas/sensor-reading.avsc'));
    for (const f of ['vibration-severity.ts', 'vibration_severity.py']) fs.copyFileSync(path.join(IOT, 'plugins', f), path.join(dir, 'plugins', f));
    fs.writeFileSync(
      path.join(dir, 'features/severity.yaml'),
      stringify({
        featureSet: 'severity',
        version: 1,
        input: 'sensor-reading',
        key: 'readingId',
        features: [
          { name: 'severity', expr: severityExpr, default: -1 },
          { name: 'alarm', expr: { ge: [{ 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel', 'location.indoor'] }, 1] } },
          { name: 'temperature_c', expr: 'temperatureC' },
        ],
      }),
    );
    const t = (name: string) => `fn.${name}.${suffix}`;
    fs.writeFileSync(
      path.join(dir, 'topology.yaml'),
      stringify({
        name: `fn-${suffix}`,
        plugins: ['./plugins/vibration-severity.ts'],
        topics: [
          { name: t('readings'), partitions: 2, schema: 'sensor-reading' },
          { name: t('features'), partitions: 2, schema: 'feature-vector' },
          { name: t('dlq'), partitions: 1, schema: 'dead-letter' },
        ],
        deadLetter: { topic: t('dlq') },
        stages: [{ name: 'features', processor: 'feature_extraction', input: { topic: t('readings'), fromBeginning: true }, output: { topic: t('features') }, config: { featureSet: { file: 'features/severity.yaml' } } }],
      }),
    );
    return dir;
  }

  it('validates, reporting the function, its twin and its guarantees; a bad call fails with the path of the feature', () => {
    const dir = iotFolder(uniqueSuffix());
    const res = cli(['--json', 'validate', 'topology.yaml'], dir);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const out = JSON.parse(res.stdout) as { plugins: { functions: { name: string; exactlyOnce: boolean; python?: string }[] }[] };
    expect(out.plugins[0].functions).toEqual([expect.objectContaining({ name: 'iot.vibrationSeverity', exactlyOnce: true, python: `${path.join(dir, 'plugins/vibration_severity.py')}:vibration_severity` })]);
    expect(cli(['validate', 'topology.yaml'], dir).stdout).toMatch(/feature function iot\.vibrationSeverity \(deterministic, no outside side effects; Python twin .*vibration_severity\.py:vibration_severity\): exactly-once applies/);

    const arity = cli(['validate', 'topology.yaml'], iotFolder(uniqueSuffix(), { 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel'] }));
    expect(arity.status).toBe(1);
    expect(arity.stderr).toMatch(/stages\[0\]\.config\.featureSet\.file: features\/severity\.yaml: features\[0\]\.expr\.iot\.vibrationSeverity: takes 3 arguments/);
    const argType = cli(['validate', 'topology.yaml'], iotFolder(uniqueSuffix(), { 'iot.vibrationSeverity': ['firmware', 'deviceModel', 'location.indoor'] }));
    expect(argType.status).toBe(1);
    expect(argType.stderr).toMatch(/features\[0\]\.expr\.iot\.vibrationSeverity\[0\]: is a string; argument 'vibrationMmS' of iot\.vibrationSeverity\(vibrationMmS: double, deviceModel: string, indoor: boolean\) is a double/);
    const unknown = cli(['validate', 'topology.yaml'], iotFolder(uniqueSuffix(), { 'iot.vibrationSeverty': ['vibrationMmS', 'deviceModel', 'location.indoor'] }));
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/features\[0\]\.expr\.iot\.vibrationSeverty: unknown feature function 'iot\.vibrationSeverty' \(registered by the topology's plugins: iot\.vibrationSeverity\)/);
  });

  it('runs end to end: readings -> extraction calling the .ts plugin function -> expected vectors; a non-finite result dead-lettered', async () => {
    const suffix = uniqueSuffix();
    const dir = iotFolder(suffix);
    const t = (name: string) => `fn.${name}.${suffix}`;
    const child = spawn(process.execPath, [CLI, 'run', 'topology.yaml', '--metrics-port', '0'], { cwd: dir, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const logs: string[] = [];
    child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const out: FeatureVector[] = [];
    const dead: DeadLetter[] = [];
    const consumers = [
      new TopicConsumer({ ...endpoints, topic: t('features'), schema: 'feature-vector', groupId: `fn-out-${suffix}`, fromBeginning: true }),
      new TopicConsumer({ ...endpoints, topic: t('dlq'), schema: 'dead-letter', groupId: `fn-dlq-${suffix}`, fromBeginning: true }),
    ] as const;
    try {
      await waitFor(() => logs.join('').includes('"pipeline running"'), 90000, () => `pipeline did not start: ${logs.join('').slice(-3000)}`);
      await consumers[0].run((v) => {
        out.push(v);
      });
      await consumers[1].run((v) => {
        dead.push(v);
      });
      const readings: SensorReading[] = new SensorGenerator({ seed: 4242 }).take(60).map((g) => g.event);
      readings[5] = { ...readings[5], deviceModel: 'UNKNOWN' };
      readings[7] = { ...readings[7], vibrationMmS: -0 };
      readings[11] = { ...readings[11], vibrationMmS: Infinity };
      await produceReadings(readings, { brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: t('readings'), rate: 0 });
      await waitFor(() => out.length >= 59 && dead.length >= 1, 60000, () => `${out.length} vectors, ${dead.length} dead letters; logs: ${logs.join('').slice(-2000)}`);
      const byKey = new Map(out.map((v) => [v.key, v]));
      expect(byKey.size).toBe(59);
      for (const r of readings.filter((_, i) => i !== 11)) {
        const v = byKey.get(r.readingId)!;
        expect(v.names).toEqual(['severity', 'alarm', 'temperature_c']);
        const s = severity(r.vibrationMmS, r.deviceModel, r.location.indoor);
        expect(v.values).toEqual([s === null ? -1 : s + 0, s !== null && s >= 1 ? 1 : 0, r.temperatureC]);
      }
      expect(byKey.get(readings[5].readingId)!.values[0]).toBe(-1);
      expect(Object.is(byKey.get(readings[7].readingId)!.values[0], 0)).toBe(true);
      expect(dead.map((d) => [d.stage, d.errorKind, d.errorMessage])).toEqual([['features', 'PROCESSING_ERROR', 'feature extraction produced a non-finite value for severity']]);
    } finally {
      await Promise.allSettled(consumers.map((c) => c.stop()));
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(logs.join('')).not.toMatch(/"level":"?(error|50)/i);
  });
});
