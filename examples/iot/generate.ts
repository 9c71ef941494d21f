/**
 * Writes generated sensor readings as JSON lines, for the training script (examples/iot/train/
 * train_iot.py reads them: one generator serves training and serving).
 *
 *   node dist-examples/examples/iot/generate.js --out FILE --seed S [--sessions K] [--session-events N]
 *        [--start MS] [--fleet-out FILE]
 *
 * Session k is a fresh `SensorGenerator` (seed S * 100003 + k) whose clock starts at a time drawn
 * uniformly over the year after DEFAULT_START_TIME (so every local hour, weekday and DST edge
 * appears), like a demo run that starts "now" with fresh streaming state. Each line:
 * {"session": k, "start": clock start ms, "event": {...}, "anomaly": bool, "kind": "overheat" | ... | null}.
 * --start fixes every session's clock start instead (the golden stream starts at DEFAULT_START_TIME).
 * --fleet-out writes the fleet (devices and sites) the batch feature tables are derived from.
 */
import * as fs from 'node:fs';
import { DEFAULT_START_TIME, Prng, SensorGenerator, fleet } from './generator';

const YEAR_MS = 365 * 86_400_000;

export function sessionStart(seed: number, session: number): number {
  return DEFAULT_START_TIME + Math.floor(new Prng(seed * 7919 + session).next() * YEAR_MS);
}

function main(argv: string[]): void {
  const arg = (name: string, dflt?: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : dflt;
  };
  const out = arg('out');
  const seed = Number(arg('seed', '7'));
  const sessions = Number(arg('sessions', '1'));
  const perSession = Number(arg('session-events', '1000'));
  if (!out || !Number.isInteger(seed) || !(sessions > 0) || !(perSession > 0)) {
    process.stderr.write('usage: generate --out FILE --seed INT [--sessions K] [--session-events N] [--fleet-out FILE]\n');
    process.exit(2);
  }
  const fixedStart = arg('start');
  const fd = fs.openSync(out, 'w');
  for (let k = 0; k < sessions; k++) {
    const start = fixedStart !== undefined ? Number(fixedStart) : sessionStart(seed, k);
    const gen = new SensorGenerator({ seed: seed * 100_003 + k, startTime: start });
    const lines: string[] = [];
    for (let i = 0; i < perSession; i++) {
      const g = gen.next();
      lines.push(JSON.stringify({ session: k, start, event: g.event, anomaly: g.anomaly, kind: g.kind }));
    }
    fs.writeSync(fd, lines.join('\n') + '\n');
  }
  fs.closeSync(fd);
  const fleetOut = arg('fleet-out');
  if (fleetOut) fs.writeFileSync(fleetOut, JSON.stringify(fleet(), null, 0) + '\n');
}

if (require.main === module) main(process.argv.slice(2));
