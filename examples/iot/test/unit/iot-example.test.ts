/**
 * The IoT example's artefacts, without servers: the one generator (deterministic, schema-valid,
 * realistic structure, the same events the training script read for the golden stream), the model
 * card against the committed .onnx, the golden scores through onnxruntime-node, the gate, and the
 * batch files against the topology's declared sets.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import * as ort from 'onnxruntime-node';
import { runGate } from '../../../../src/inference/gate';
import { readModelCard } from '../../../../src/inference/model-card';
import { createLogger } from '../../../../src/util/logger';
import type { TopologySpec } from '../../../../src/topology/spec';
import { DEFAULT_START_TIME, SensorGenerator, fleet, localParts, type SensorReading } from '../../generator';
import { readingSchema } from '../../produce';
import { loadIotTopology } from '../../topology';
import { vectorDifferences } from '../vectors';
import { extractionBase, extractionVector, type ExtractionConfig } from '../../../../src/stages/extraction';

const EXAMPLE = path.resolve(__dirname, '..', '..');
const MODEL_DIR = path.join(EXAMPLE, 'models', 'sensor_anomaly', '1');
const card = readModelCard(MODEL_DIR);
const golden = fs.readFileSync(path.join(MODEL_DIR, 'golden.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: SensorReading; features: number[]; score: number; anomaly: boolean });

describe('IoT generator', () => {
  it('is a pure function of its seed and start time', () => {
    const a = new SensorGenerator({ seed: 5, startTime: DEFAULT_START_TIME }).take(300);
    const b = new SensorGenerator({ seed: 5, startTime: DEFAULT_START_TIME }).take(300);
    const c = new SensorGenerator({ seed: 6, startTime: DEFAULT_START_TIME }).take(300);
    expect(b).toEqual(a);
    expect(c.map((g) => g.event.temperatureC)).not.toEqual(a.map((g) => g.event.temperatureC));
  });

  it('produces schema-valid readings with nulls, nested records, open firmware values and planted anomalies of every kind', () => {
    const type = readingSchema().type;
    const gens = new SensorGenerator({ seed: 11, startTime: Date.UTC(2026, 5, 1) }).take(10000);
    for (const g of gens.slice(0, 2000)) expect(type.isValid(g.event)).toBe(true);
    const events = gens.map((g) => g.event);
    expect(events.some((e) => e.pressureKpa === null) && events.some((e) => e.pressureKpa !== null)).toBe(true);
    expect(events.some((e) => e.batteryPct === null) && events.some((e) => e.batteryPct !== null)).toBe(true);
    expect(new Set(events.map((e) => e.location.timezone)).size).toBe(6);
    expect(events.some((e) => !['3.1.0', '3.2.0', '4.0.1', '4.2.1'].includes(e.firmware))).toBe(true);
    const rate = gens.filter((g) => g.anomaly).length / gens.length;
    expect(rate).toBeGreaterThan(0.01);
    expect(rate).toBeLessThan(0.08);
    expect(new Set(gens.filter((g) => g.anomaly).map((g) => g.kind))).toEqual(new Set(['overheat', 'bearing', 'leak', 'off_shift', 'stuck']));
    // Readings of a unit are (almost) in time order: jitter stays far inside the streaming set's allowed lateness (1 h).
    const last = new Map<string, number>();
    for (const e of events) {
      expect(e.eventTime).toBeGreaterThan((last.get(e.deviceId) ?? 0) - 2000);
      last.set(e.deviceId, Math.max(last.get(e.deviceId) ?? 0, e.eventTime));
    }
  });

  it('reads local time with the zone rules (DST edges), Monday = 0', () => {
    expect(localParts(Date.UTC(2026, 2, 29, 0, 59), 'Europe/Berlin')).toEqual({ hour: 1, dow: 6 }); // CET, Sunday
    expect(localParts(Date.UTC(2026, 2, 29, 1, 0), 'Europe/Berlin')).toEqual({ hour: 3, dow: 6 }); // CEST from 01:00 UTC
    expect(localParts(Date.UTC(2026, 3, 4, 15, 59), 'Australia/Sydney')).toEqual({ hour: 2, dow: 6 }); // AEDT until 16:00 UTC
    expect(localParts(Date.UTC(2026, 3, 4, 16, 0), 'Australia/Sydney')).toEqual({ hour: 2, dow: 6 }); // 03:00 AEDT -> 02:00 AEST
    expect(localParts(DEFAULT_START_TIME, 'UTC')).toEqual({ hour: 0, dow: 0 });
  });

  it('the golden stream is exactly what the generator produces today for its seed (training read the same events)', () => {
    const seed = (card.goldenSet as { seed: number }).seed;
    const events = new SensorGenerator({ seed: seed * 100_003, startTime: DEFAULT_START_TIME }).take(golden.length);
    expect(events.map((g) => g.event)).toEqual(golden.map((g) => g.event));
    expect(events.map((g) => g.anomaly)).toEqual(golden.map((g) => g.anomaly));
  });
});

describe('examples/iot/topology.yaml', () => {
  it('validates with the engine\'s loader and built-in processors, and assembles exactly the vector the card asks for', () => {
    const topology = loadIotTopology();
    const config = topology.spec.stages[0].config as unknown as ExtractionConfig;
    const vector = extractionVector(config, { topology });
    expect(vector.names).toEqual(card.features.names);
    expect({ set: vector.set, version: vector.version }).toEqual({ set: card.features.set, version: card.features.version });
    expect(vector.base).toMatchObject({ set: 'sensor_base', version: 1 });
  });

  it('a definitions file naming a field the schema lacks, or of the wrong type, fails validation with both paths', () => {
    const copy = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'iot-defs-')), 'sensor_base.yaml');
    const text = fs.readFileSync(path.join(EXAMPLE, 'features', 'sensor_base.yaml'), 'utf8');
    fs.writeFileSync(copy, text.replace('expr: location.floor', 'expr: location.flor').replace('{ log1p: vibrationMmS }', '{ log1p: firmware }'));
    let message = '';
    try {
      loadIotTopology({ edit: (spec) => ((spec.stages[0].config as { featureSet: { file: string } }).featureSet.file = copy) });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/stages\[0\]\.config\.featureSet\.file: .*features\[8\]\.expr.*location\.flor/);
    expect(message).toMatch(/stages\[0\]\.config\.featureSet\.file: .*features\[2\]\.expr\.log1p/);
  });

  it('refuses to serve the model with definitions other than those it was trained with (the card pins their hash)', () => {
    const copy = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'iot-defs-')), 'sensor_base.yaml');
    fs.writeFileSync(copy, fs.readFileSync(path.join(EXAMPLE, 'features', 'sensor_base.yaml'), 'utf8').replace('values: { VX100: 70, VX200: 85, PT7: 60 }', 'values: { VX100: 75, VX200: 85, PT7: 60 }'));
    expect(() => loadIotTopology({ edit: (spec) => ((spec.stages[0].config as { featureSet: { file: string } }).featureSet.file = copy) })).toThrow(/stages\[1\]\.config.*card was trained with/s);
    expect((card.features as { definitionsHash?: string }).definitionsHash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('the declarative sensor_base definitions give the golden stateless columns for every golden reading (bit for bit; 1 ulp for libm values)', () => {
    const topology = loadIotTopology();
    const base = extractionBase(topology.spec.stages[0].config as unknown as ExtractionConfig, { topology });
    const diffs = golden.flatMap((g) => vectorDifferences(base.extract(g.event), g.features.slice(0, base.names.length), base.names).map((d) => `${g.event.readingId} ${d}`));
    expect(diffs).toEqual([]);
  });
});

describe('sensor_anomaly@1', () => {
  it('model.onnx matches its card (sha256, signature, vector width)', async () => {
    const bytes = fs.readFileSync(path.join(MODEL_DIR, 'model.onnx'));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(card.sha256);
    const session = await ort.InferenceSession.create(path.join(MODEL_DIR, 'model.onnx'));
    expect(session.inputNames).toEqual(['float_input']);
    expect(session.outputNames).toEqual(['label', 'probabilities']);
    expect(card.inputs[0].shape).toEqual([-1, card.features.names.length]);
    expect(card.features).toMatchObject({ set: 'sensor_online', version: 1 });
    await session.release();
  });

  it('scores every golden vector as Python did, in one batch', async () => {
    const session = await ort.InferenceSession.create(path.join(MODEL_DIR, 'model.onnx'));
    const width = card.features.names.length;
    const out = await session.run({ float_input: new ort.Tensor('float32', Float32Array.from(golden.flatMap((g) => g.features)), [golden.length, width]) });
    const probs = out.probabilities.data as Float32Array;
    golden.forEach((g, i) => expect(Math.abs(probs[i * 2 + 1] - g.score)).toBeLessThan(1e-5));
    expect(golden.filter((g) => g.anomaly).length).toBeGreaterThan(0);
    await session.release();
  });

  it('passes its gate (golden, confidence metrics per site, latency)', async () => {
    const report = await runGate(MODEL_DIR, { logger: createLogger('iot-gate-test') });
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.checks.filter((c) => c.name.startsWith('confidence[siteId=')).length).toBe(6);
  });

  it('the batch files carry exactly the fields the topology declares, and the card names the topology sets in vector order', () => {
    const spec = parse(fs.readFileSync(path.join(EXAMPLE, 'topology.yaml'), 'utf8')) as TopologySpec;
    const batch = spec.features!.sets.filter((s) => s.kind === 'redis_batch');
    const header = fs.readFileSync(path.join(MODEL_DIR, 'features', 'device_profile.csv'), 'utf8').split('\n')[0].split(',');
    expect(header).toEqual(['deviceId', 'ts', ...batch[0].fields.map((f) => f.name)]);
    const site = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'features', 'site_climate.jsonl'), 'utf8').split('\n')[0]) as Record<string, unknown>;
    expect(Object.keys(site)).toEqual(['siteId', 'ts', ...batch[1].fields.map((f) => f.name)]);
    const extract = spec.stages[0].config as { features: string[] };
    const tail = extract.features.flatMap((n) => {
      const s = spec.features!.sets.find((x) => x.name === n)!;
      return [...s.fields.map((f) => f.name), ...(s.kind === 'redis_batch' && s.config.missingIndicator ? [s.config.missingIndicator] : [])];
    });
    expect(card.features.names.slice(-tail.length)).toEqual(tail);
    expect(fleet().length).toBe(240);
  });
});
