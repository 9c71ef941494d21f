/**
 * Golden parity for the IoT domain, recomputed in this run (no stored file): the TypeScript compiler
 * (what the extraction stage runs) and python/tributary_features (what training runs) evaluate
 * examples/iot/features/sensor_base.yaml over 10,000 generated readings spread over a year of local
 * times in six zones, plus edge readings (nulls, NaN/±∞/-0, unknown and non-ASCII categories, an
 * unknown time zone, instants around every site's DST transitions). Identical bits are required,
 * except ≤ 1 ulp for non-integer values (libm log1p), as in test/unit/declarative-parity.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadFeatureDefinitions } from '../../../../src/features/declarative/load';
import { ensurePythonEnv } from '../../../../src/stack/python-env';
import { SensorGenerator, type SensorReading } from '../../generator';
import { sessionStart } from '../../generate';
import { readingSchema } from '../../produce';
import { ulps } from '../vectors';

jest.setTimeout(600_000);

const EXAMPLE = path.resolve(__dirname, '..', '..');
const DEFINITIONS = path.join(EXAMPLE, 'features', 'sensor_base.yaml');

function encodeEvents(events: unknown[]): string {
  return JSON.stringify(events, (_k, v) => (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)) ? { $num: Object.is(v, -0) ? '-0' : String(v) } : v));
}


/** Instants around the 2026 DST transitions of the example's zones (Tokyo and Kolkata have none; Sao Paulo none since 2019). */
const DST_EDGES = [
  Date.UTC(2026, 2, 8, 8), // Chicago spring forward (02:00 CST)
  Date.UTC(2026, 10, 1, 7), // Chicago fall back
  Date.UTC(2026, 2, 29, 1), // Berlin
  Date.UTC(2026, 9, 25, 1),
  Date.UTC(2026, 3, 4, 16), // Sydney fall back (03:00 AEDT)
  Date.UTC(2026, 9, 3, 16), // Sydney spring forward (02:00 AEST)
  Date.UTC(2018, 10, 4, 3), // Sao Paulo's last DST start (historical zone rules)
];

function edgeReadings(base: SensorReading): SensorReading[] {
  const out: SensorReading[] = [];
  const at = (patch: Partial<SensorReading>, loc: Partial<SensorReading['location']> = {}) => out.push({ ...base, ...patch, location: { ...base.location, ...loc } });
  for (const temperatureC of [NaN, Infinity, -Infinity, -0, 0, -50, 150, 150.0000001, -1e308, 1e308]) at({ temperatureC });
  for (const vibrationMmS of [NaN, -1, -0.5, -0, 0, Infinity, 5e-324]) at({ vibrationMmS });
  for (const pressureKpa of [null, NaN, -0, -Infinity]) at({ pressureKpa });
  for (const batteryPct of [null, NaN, 14.999999, 15, -0, 0]) at({ batteryPct });
  for (const firmware of ['', 'é', '3.1.0 ', '4.2.1', '😀']) at({ firmware });
  for (const deviceModel of ['VX100', 'VX200', 'PT7', 'UNKNOWN'] as const) at({ deviceModel });
  for (const timezone of ['', 'Mars/Olympus', 'europe/berlin', 'Asia/Kolkata']) at({}, { timezone });
  for (const zone of ['', '日本', '😀', 'line-1'.repeat(40)]) at({}, { zone });
  for (const floor of [0, -3, 2147483647]) at({}, { floor });
  for (const t of DST_EDGES) {
    for (const timezone of ['America/Chicago', 'Europe/Berlin', 'Australia/Sydney', 'America/Sao_Paulo', 'Asia/Tokyo', 'Asia/Kolkata']) {
      for (const d of [-3_600_001, -3_600_000, -1, 0, 1, 1_799_999, 3_600_000]) at({ eventTime: t + d }, { timezone });
    }
  }
  for (const eventTime of [0, -1, -62135596800000, 253402300799999, 253402300800000]) at({ eventTime });
  return out;
}

describe('IoT sensor_base: TypeScript ⇄ Python parity (computed in this run)', () => {
  it('10,000 generated readings + edge readings give identical vectors', () => {
    const py = ensurePythonEnv();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-parity-'));
    try {
      const events: SensorReading[] = [];
      for (let k = 0; k < 10; k++) events.push(...new SensorGenerator({ seed: 9000 + k, startTime: sessionStart(9, k) }).take(1000).map((g) => g.event));
      events.push(...edgeReadings(events[0]));
      const set = loadFeatureDefinitions(DEFINITIONS, { schema: readingSchema().type });
      fs.writeFileSync(path.join(dir, 'events.json'), encodeEvents(events));
      fs.copyFileSync(readingSchema().file, path.join(dir, 'schema.avsc'));
      fs.copyFileSync(DEFINITIONS, path.join(dir, 'sensor_base.yaml'));
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ cases: [{ definitions: 'sensor_base.yaml', schema: 'schema.avsc', events: 'events.json', out: 'out.bin' }] }));
      execFileSync(py.python, ['-m', 'tributary_features.parity', dir], { env: { ...process.env, PYTHONPATH: py.pythonPath }, stdio: 'pipe' });
      const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8')) as { tzdb: string; cases: Array<{ hash: string; names: string[]; rows: number }> };
      expect(result.tzdb).toBe(process.versions.tz);
      expect(result.cases[0].hash).toBe(set.hash);
      expect(result.cases[0].names).toEqual([...set.names]);
      const buf = fs.readFileSync(path.join(dir, 'out.bin'));
      const py64 = new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
      const w = set.size;
      expect(py64.length).toBe(events.length * w);
      const problems: string[] = [];
      let oneUlp = 0;
      events.forEach((ev, row) => {
        const ts = set.extract(ev);
        for (let j = 0; j < w; j++) {
          const d = ulps(ts[j], py64[row * w + j]);
          if (d === 0) continue;
          if (d === 1 && !Number.isInteger(ts[j])) {
            oneUlp++;
            continue;
          }
          if (problems.length < 5) problems.push(`row ${row} ${set.names[j]}: ts ${ts[j]} py ${py64[row * w + j]} event ${encodeEvents([ev])}`);
        }
      });
      expect(problems).toEqual([]);
      expect(events.length).toBeGreaterThan(10_000);
      // The generated readings cover every local hour and weekday in every zone, and both halves of the shift flag.
      const hour = set.names.indexOf('local_hour');
      const onShift = set.names.indexOf('on_shift');
      const hours = new Set(events.slice(0, 10_000).map((ev) => set.extract(ev)[hour]));
      expect(hours.size).toBe(24);
      expect(new Set(events.slice(0, 10_000).map((ev) => set.extract(ev)[onShift]))).toEqual(new Set([0, 1]));
      process.stdout.write(`iot parity: ${events.length} readings x ${w} features, ${oneUlp} values one ulp apart, tzdb ${result.tzdb}\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
