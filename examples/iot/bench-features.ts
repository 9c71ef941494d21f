/**
 * Cost of the IoT example's stateless features on one core, no Kafka: the compiled
 * features/sensor_base.yaml over pre-generated readings (a year of local times), events per
 * CPU-second of this (single-threaded) process and ns per feature, median of rounds: measured as
 * bench/src/features.ts measures fraud_txn and random definitions, so the numbers compare, and less
 * sensitive than wall time to other load on a shared machine.
 *
 *   npx tsc -p examples/iot/tsconfig.json && node dist-examples/examples/iot/bench-features.js [--seconds 1] [--rounds 7]
 */
import * as path from 'node:path';
import { loadFeatureDefinitions } from '../../src/features/declarative/load';
import { sessionStart } from './generate';
import { SensorGenerator, type SensorReading } from './generator';
import { EXAMPLE_DIR, readingSchema } from './produce';

export interface IotFeaturesBench {
  features: number;
  events: number;
  eventsPerSec: number;
  nsPerFeature: number;
}

export function benchIotFeatures(o: { seconds?: number; rounds?: number; events?: number } = {}): IotFeaturesBench {
  const set = loadFeatureDefinitions(path.join(EXAMPLE_DIR, 'features', 'sensor_base.yaml'), { schema: readingSchema().type });
  const events: SensorReading[] = [];
  const n = o.events ?? 20_000;
  for (let k = 0; events.length < n; k++) events.push(...new SensorGenerator({ seed: 500 + k, startTime: sessionStart(5, k) }).take(Math.min(1000, n - events.length)).map((g) => g.event));
  const row = new Float64Array(set.size);
  const cpuMicros = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const rate = (seconds: number): number => {
    const start = cpuMicros();
    let done = 0;
    let elapsed = 0;
    do {
      for (let i = 0; i < events.length; i++) set.extractInto(events[i], row, 0);
      done += events.length;
      elapsed = cpuMicros() - start;
    } while (elapsed < seconds * 1e6);
    return done / (elapsed / 1e6);
  };
  rate(0.3); // JIT warm-up
  const rounds = Array.from({ length: o.rounds ?? 11 }, () => rate(o.seconds ?? 0.5)).sort((a, b) => a - b);
  const eventsPerSec = rounds[Math.floor(rounds.length / 2)];
  return { features: set.size, events: events.length, eventsPerSec: Math.round(eventsPerSec), nsPerFeature: Number((1e9 / eventsPerSec / set.size).toFixed(1)) };
}

if (require.main === module) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : undefined;
  };
  process.stdout.write(`${JSON.stringify(benchIotFeatures({ seconds: arg('seconds'), rounds: arg('rounds') }))}\n`);
}
