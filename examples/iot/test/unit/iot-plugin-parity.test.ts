/**
 * Parity of a plugin feature function, recomputed in this run (no stored file): the IoT example's
 * iot.vibrationSeverity (examples/iot/plugins/vibration-severity.ts, loaded by the plugin loader as a
 * topology would) called from declarative definitions in TypeScript, and its Python twin
 * (vibration_severity.py) called by python/tributary_features, over 10,000 generated readings plus
 * edge readings (null arguments, NaN/±∞/-0, negative and subnormal vibrations, unknown models).
 * The calls sit in arithmetic, conditions, coalesce and clip, and take a boolean computed by an
 * expression, so the boundary (SEMANTICS.md "Plugin feature functions") is exercised both ways.
 * Identical bits are required (the function uses IEEE operations only; ≤ 1 ulp is the general
 * tolerance). A servingOnly function is refused by the Python side, naming it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { pythonTwins } from '../../../../src/features/declarative/functions';
import { loadFeatureDefinitions } from '../../../../src/features/declarative/load';
import type { FeatureDefinitions } from '../../../../src/features/declarative/spec';
import { loadPlugins } from '../../../../src/stages/plugin-loader';
import { ProcessorRegistry } from '../../../../src/stages/registry';
import { ensurePythonEnv } from '../../../../src/stack/python-env';
import { SensorGenerator, type SensorReading } from '../../generator';
import { sessionStart } from '../../generate';
import { readingSchema } from '../../produce';
import { ulps } from '../vectors';

jest.setTimeout(600_000);

const PLUGIN = path.resolve(__dirname, '..', '..', 'plugins', 'vibration-severity.ts');

const DEFINITIONS: FeatureDefinitions = {
  featureSet: 'iot_severity',
  version: 1,
  input: 'sensor-reading',
  features: [
    { name: 'severity', expr: { 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel', 'location.indoor'] }, default: -1 },
    { name: 'severity_pct', expr: { clip: { mul: [{ 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel', 'location.indoor'] }, 100] }, lower: 0, upper: 400 } },
    // A nullable double argument (no pressure probe: null, no call) and a computed boolean.
    { name: 'pressure_severity', expr: { 'iot.vibrationSeverity': [{ div: ['pressureKpa', 100] }, 'deviceModel', { gt: ['temperatureC', 40] }] }, default: -2 },
    { name: 'alarm', expr: { ge: [{ 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel', { not: 'location.indoor' }] }, 1] } },
    { name: 'severity_or_battery', expr: { coalesce: [{ 'iot.vibrationSeverity': ['batteryPct', { str: 'PT7' }, true] }, { neg: 'vibrationMmS' }] } },
    { name: 'hot_branch', expr: { if: { gt: ['temperatureC', 60] }, then: { 'iot.vibrationSeverity': ['temperatureC', 'firmware', false] }, else: { sub: [0, { 'iot.vibrationSeverity': ['vibrationMmS', { str: 'VX200' }, 'location.indoor'] }] } } },
    { name: 'has_severity', expr: { isNull: { 'iot.vibrationSeverity': ['vibrationMmS', 'deviceModel', true] } } },
  ],
};

function encodeEvents(events: unknown[]): string {
  return JSON.stringify(events, (_k, v) => (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)) ? { $num: Object.is(v, -0) ? '-0' : String(v) } : v));
}

function edgeReadings(base: SensorReading): SensorReading[] {
  const out: SensorReading[] = [];
  const at = (patch: Partial<SensorReading>, loc: Partial<SensorReading['location']> = {}) => out.push({ ...base, ...patch, location: { ...base.location, ...loc } });
  for (const deviceModel of ['VX100', 'VX200', 'PT7', 'UNKNOWN'] as const) {
    for (const indoor of [true, false]) {
      for (const vibrationMmS of [NaN, Infinity, -Infinity, -0, 0, -1, 5e-324, 1e308, 4.5, 7.1 * 1.25, 2.8]) at({ vibrationMmS, deviceModel }, { indoor });
    }
  }
  for (const pressureKpa of [null, NaN, -0, Infinity, -Infinity, 1e-310]) at({ pressureKpa });
  for (const batteryPct of [null, NaN, -0, 100, Infinity]) at({ batteryPct });
  for (const temperatureC of [NaN, 40, 40.000000000000007, 60, 60.1, Infinity, -Infinity]) at({ temperatureC, firmware: 'VX100' });
  for (const firmware of ['VX100', 'PT7', 'é', '']) at({ firmware, temperatureC: 70 });
  return out;
}

describe('IoT plugin feature function: TypeScript ⇄ Python parity (computed in this run)', () => {
  let dir: string;
  let py: { python: string; pythonPath: string };
  const loaded = loadPlugins([PLUGIN], path.dirname(PLUGIN), new ProcessorRegistry());

  beforeAll(() => {
    py = ensurePythonEnv();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-fn-parity-'));
    fs.copyFileSync(readingSchema().file, path.join(dir, 'schema.avsc'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const runPython = (definitions: FeatureDefinitions, events: unknown[], functions: Record<string, unknown>) => {
    fs.writeFileSync(path.join(dir, 'defs.yaml'), stringify(definitions));
    fs.writeFileSync(path.join(dir, 'events.json'), encodeEvents(events));
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ cases: [{ definitions: 'defs.yaml', schema: 'schema.avsc', events: 'events.json', out: 'out.bin', functions }] }));
    return spawnSync(py.python, ['-m', 'tributary_features.parity', dir], { env: { ...process.env, PYTHONPATH: py.pythonPath }, encoding: 'utf8' });
  };

  it('10,000 generated readings + edge readings give identical vectors', () => {
    expect(loaded.errors).toEqual([]);
    const events: SensorReading[] = [];
    for (let k = 0; k < 10; k++) events.push(...new SensorGenerator({ seed: 7100 + k, startTime: sessionStart(7, k) }).take(1000).map((g) => g.event));
    events.push(...edgeReadings(events[0]));
    fs.writeFileSync(path.join(dir, 'defs.yaml'), stringify(DEFINITIONS));
    const set = loadFeatureDefinitions(path.join(dir, 'defs.yaml'), { schema: readingSchema().type, functions: loaded.functions });
    const res = runPython(DEFINITIONS, events, pythonTwins(loaded.functions));
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8')) as { cases: Array<{ hash: string; names: string[] }> };
    expect(result.cases[0].hash).toBe(set.hash);
    expect(result.cases[0].names).toEqual([...set.names]);
    const buf = fs.readFileSync(path.join(dir, 'out.bin'));
    const py64 = new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
    const w = set.size;
    expect(py64.length).toBe(events.length * w);
    const problems: string[] = [];
    let exact = 0;
    const seen = set.names.map(() => new Set<string>());
    events.forEach((ev, row) => {
      const ts = set.extract(ev);
      for (let j = 0; j < w; j++) {
        const d = ulps(ts[j], py64[row * w + j]);
        seen[j].add(Number.isNaN(ts[j]) ? 'NaN' : !Number.isFinite(ts[j]) ? 'inf' : ts[j] === -1 || ts[j] === -2 ? 'default' : 'value');
        if (d === 0) {
          exact++;
          continue;
        }
        if (d === 1 && !Number.isInteger(ts[j])) continue;
        if (problems.length < 5) problems.push(`row ${row} ${set.names[j]}: ts ${ts[j]} py ${py64[row * w + j]} event ${encodeEvents([ev])}`);
      }
    });
    expect(problems).toEqual([]);
    expect(events.length).toBeGreaterThan(10_000);
    // The function only divides: every value is bit-identical, not merely within an ulp.
    expect(exact).toBe(events.length * w);
    // The edge readings reached the boundary's cases: null results (the default), NaN and ±∞ passed through.
    expect(seen[0]).toEqual(new Set(['value', 'default', 'NaN', 'inf']));
    expect(seen[2].has('default')).toBe(true);
    process.stdout.write(`iot plugin parity: ${events.length} readings x ${w} features, all bit-identical\n`);
  });

  it('a servingOnly function is refused by the Python side, naming it; a missing twin too', () => {
    const servingOnly: FeatureDefinitions = { ...DEFINITIONS, servingOnly: ['iot.vibrationSeverity'] };
    const refused = runPython(servingOnly, [], pythonTwins(loaded.functions));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/feature function 'iot\.vibrationSeverity' is servingOnly in .*defs\.yaml: it has no Python twin, so this feature set cannot be computed for training/);
    const missing = runPython(DEFINITIONS, [], {});
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/no Python twin for feature function 'iot\.vibrationSeverity'/);
    // The TypeScript side serves it either way.
    fs.writeFileSync(path.join(dir, 'serving.yaml'), stringify(servingOnly));
    expect(() => loadFeatureDefinitions(path.join(dir, 'serving.yaml'), { schema: readingSchema().type, functions: loaded.functions })).not.toThrow();
  });
});
