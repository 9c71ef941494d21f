/**
 * Seeded, deterministic stream of industrial sensor readings with planted anomalies: the ONE
 * generator of the IoT example. The demo and the tests produce its events to Kafka; the training
 * script (examples/iot/train/train_iot.py) reads the same events from `generate.ts`'s JSON-lines
 * output, so training and serving never see two implementations of the data.
 *
 * World: a fleet of sensor units (`fleet(seed)`) spread over six plants in six time zones. Machines
 * run on local shifts (Mon-Fri 06:00-22:00 local time), so a reading's normal vibration and
 * temperature depend on the *local* hour of its site. Units carry a nested location record, a
 * firmware version (an open category: pre-releases appear), an optional pressure probe (null
 * pressure otherwise) and an optional battery (null on mains power).
 *
 * Anomalies come in episodes of 1-4 consecutive readings of a unit (overheating, bearing wear,
 * pressure leak, machine running off-shift, stuck/saturated sensor), more often on the fleet's
 * "degrading" units. Confusers that are NOT anomalies: firmware 3.1.0 over-reports vibration by
 * 60%, low batteries make readings noisy, hot sites run hot.
 *
 * Event times: a pacing clock `startTime + floor(n * 1000 / eventsPerSecond)` (event time, the
 * generator never sleeps) plus up to 1.5 s of sampling jitter, so a unit's readings are nearly,
 * not strictly, in time order.
 */
import type { SensorReading } from './generated/avro-types';

/** mulberry32: a 32-bit-state PRNG, `next()` in [0, 1). */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal (Box-Muller, one draw pair per call). */
  normal(): number {
    const u1 = 1 - this.next();
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[], weights: readonly number[]): T {
    const total = weights.reduce((a, b) => a + b, 0);
    let u = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      u -= weights[i];
      if (u < 0) return items[i];
    }
    return items[items.length - 1];
  }
}

/** The event type of examples/iot/schemas/sensor-reading.avsc, generated from it (`npm run gen:types`). */
export type { SensorReading };

export type AnomalyKind = 'overheat' | 'bearing' | 'leak' | 'off_shift' | 'stuck';

export interface Site {
  siteId: string;
  timezone: string;
  /** Mean ambient temperature (deg C) and the half-amplitude of its daily cycle. */
  ambientC: number;
  ambientSwingC: number;
}

export interface Device {
  deviceId: string;
  site: Site;
  model: SensorReading['deviceModel'];
  firmware: string;
  location: SensorReading['location'];
  /** Housing temperature at rest (ambient offset, deg C) and vibration RMS when running (mm/s). */
  tempOffsetC: number;
  vibrationMmS: number;
  /** Line pressure when present (kPa); null without a probe. */
  pressureKpa: number | null;
  /** Battery level at the start of a stream; null on mains power. */
  batteryPct: number | null;
  degrading: boolean;
  /** Days since installation and since the last service (the maintenance system's batch data). */
  ageDays: number;
  daysSinceService: number;
}

export const SITES: readonly Site[] = [
  { siteId: 'site-chi', timezone: 'America/Chicago', ambientC: 21, ambientSwingC: 3 },
  { siteId: 'site-ber', timezone: 'Europe/Berlin', ambientC: 19, ambientSwingC: 2.5 },
  { siteId: 'site-tyo', timezone: 'Asia/Tokyo', ambientC: 23, ambientSwingC: 3 },
  { siteId: 'site-syd', timezone: 'Australia/Sydney', ambientC: 24, ambientSwingC: 4 },
  { siteId: 'site-sao', timezone: 'America/Sao_Paulo', ambientC: 27, ambientSwingC: 3.5 },
  { siteId: 'site-blr', timezone: 'Asia/Kolkata', ambientC: 29, ambientSwingC: 4.5 },
];

/** Firmware releases in the fleet; the model's vocabulary is the first four (others are "unknown"). */
export const FIRMWARE = ['3.1.0', '3.2.0', '4.0.1', '4.2.1', '4.3.0-rc1', '2.9.9'] as const;
const FIRMWARE_WEIGHTS = [0.18, 0.27, 0.3, 0.2, 0.03, 0.02];
const MODELS: readonly SensorReading['deviceModel'][] = ['VX100', 'VX200', 'PT7', 'UNKNOWN'];
const MODEL_WEIGHTS = [0.45, 0.3, 0.22, 0.03];
const ANOMALY_KINDS: readonly AnomalyKind[] = ['overheat', 'bearing', 'leak', 'off_shift', 'stuck'];
const ANOMALY_WEIGHTS = [0.3, 0.3, 0.15, 0.15, 0.1];

export const DEFAULT_FLEET_SEED = 2026;
export const DEFAULT_DEVICES = 240;
/** Anomaly episodes start on this fraction of readings (degrading units: DEGRADING_RATE). */
const EPISODE_RATE = 0.012;
const DEGRADING_RATE = 0.06;
const DEGRADING_FRACTION = 0.08;

/** The fleet: a pure function of (seed, devices); the batch feature tables are derived from it. */
export function fleet(seed = DEFAULT_FLEET_SEED, devices = DEFAULT_DEVICES): Device[] {
  const rng = new Prng(seed);
  const out: Device[] = [];
  for (let i = 0; i < devices; i++) {
    const site = SITES[i % SITES.length];
    const model = rng.pick(MODELS, MODEL_WEIGHTS);
    const firmware = rng.pick(FIRMWARE, FIRMWARE_WEIGHTS);
    const hasProbe = model === 'PT7' || rng.next() < 0.3;
    const onBattery = rng.next() < 0.4;
    out.push({
      deviceId: `dev-${String(i).padStart(5, '0')}`,
      site,
      model,
      firmware,
      location: {
        building: `B${1 + rng.int(3)}`,
        floor: rng.int(5),
        zone: `line-${1 + rng.int(12)}`,
        indoor: rng.next() < 0.85,
        timezone: site.timezone,
      },
      tempOffsetC: round(4 + 3 * rng.normal(), 2),
      vibrationMmS: round(Math.exp(Math.log(1.8) + 0.35 * rng.normal()), 3),
      pressureKpa: hasProbe ? round(300 + 40 * rng.normal(), 1) : null,
      batteryPct: onBattery ? round(rng.uniform(8, 100), 1) : null,
      degrading: rng.next() < DEGRADING_FRACTION,
      ageDays: Math.floor(rng.uniform(30, 2500)),
      daysSinceService: Math.floor(rng.uniform(0, 400)),
    });
  }
  return out;
}

export interface GeneratedReading {
  event: SensorReading;
  /** Planted ground truth (not part of the event). */
  anomaly: boolean;
  kind: AnomalyKind | null;
}

export interface SensorGeneratorOptions {
  seed: number;
  /** Pacing clock at event 0 (ms since epoch). Default 2026-01-05T00:00:00Z (fixed, for determinism). */
  startTime?: number;
  /** Readings per second of event time across the fleet (the clock's rate; default 2). */
  eventsPerSecond?: number;
  fleetSeed?: number;
  devices?: number;
}

export const DEFAULT_START_TIME = Date.UTC(2026, 0, 5);

/** Local hour (0-23) and day of week (0 = Monday) of `ms` in an IANA zone, from the runtime's tz database. */
const partsFormatters = new Map<string, Intl.DateTimeFormat>();
export function localParts(ms: number, timezone: string): { hour: number; dow: number } {
  let f = partsFormatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', hour: 'numeric', weekday: 'short' });
    partsFormatters.set(timezone, f);
  }
  let hour = 0;
  let dow = 0;
  for (const p of f.formatToParts(ms)) {
    if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'weekday') dow = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(p.value);
  }
  return { hour, dow };
}

interface DeviceState {
  battery: number | null;
  episode: { kind: AnomalyKind; left: number; magnitude: number } | null;
}

export class SensorGenerator {
  readonly devices: Device[];
  private readonly rng: Prng;
  private readonly state: DeviceState[];
  private readonly startTime: number;
  private readonly eps: number;
  private n = 0;

  constructor(private readonly options: SensorGeneratorOptions) {
    this.devices = fleet(options.fleetSeed, options.devices);
    this.rng = new Prng(options.seed);
    this.startTime = options.startTime ?? DEFAULT_START_TIME;
    this.eps = options.eventsPerSecond ?? 2;
    this.state = this.devices.map((d) => ({ battery: d.batteryPct, episode: null }));
  }

  next(): GeneratedReading {
    const { rng } = this;
    const i = this.n++;
    const d = this.devices[rng.int(this.devices.length)];
    const st = this.state[this.devices.indexOf(d)];
    const eventTime = this.startTime + Math.floor((i * 1000) / this.eps) + Math.floor(rng.next() * 1500);
    const { hour, dow } = localParts(eventTime, d.site.timezone);
    const running = dow < 5 && hour >= 6 && hour < 22;

    if (!st.episode && rng.next() < (d.degrading ? DEGRADING_RATE : EPISODE_RATE)) {
      let kind = rng.pick(ANOMALY_KINDS, ANOMALY_WEIGHTS);
      if (kind === 'leak' && d.pressureKpa === null) kind = 'overheat';
      if (kind === 'off_shift' && running) kind = 'bearing';
      st.episode = { kind, left: 1 + rng.int(4), magnitude: rng.next() };
    }
    const ep = st.episode;

    // Normal physics: ambient daily cycle at the site (peak 15:00 local), machine heat and vibration while running.
    const ambient = d.site.ambientC + d.site.ambientSwingC * Math.sin((2 * Math.PI * (hour - 9)) / 24);
    const noisy = st.battery !== null && st.battery < 15 ? 3 : 1; // weak batteries: noisy ADC readings
    let temp = ambient + d.tempOffsetC + (running ? 6 : 0) + 0.6 * noisy * rng.normal();
    let vib = running ? d.vibrationMmS * Math.exp(0.15 * noisy * rng.normal()) : 0.08 * d.vibrationMmS * Math.exp(0.3 * rng.normal());
    if (d.firmware === '3.1.0') vib *= 1.6; // known firmware bug: over-reports vibration (not an anomaly)
    let pressure = d.pressureKpa === null ? null : d.pressureKpa + 4 * noisy * rng.normal();

    if (ep) {
      switch (ep.kind) {
        case 'overheat':
          temp += 9 + 16 * ep.magnitude;
          break;
        case 'bearing':
          vib *= 2.5 + 5 * ep.magnitude;
          temp += 2 * ep.magnitude;
          break;
        case 'leak':
          pressure = (pressure ?? 0) - (35 + 60 * ep.magnitude);
          break;
        case 'off_shift':
          vib = d.vibrationMmS * (0.8 + 0.7 * ep.magnitude);
          temp += 4;
          break;
        case 'stuck':
          temp = ep.magnitude < 0.5 ? -40 : 125; // a saturated ADC
          break;
      }
    }
    if (st.battery !== null) st.battery = st.battery <= 3 ? 100 : st.battery - 0.05;
    const event: SensorReading = {
      readingId: `r-${this.options.seed}-${i}`,
      deviceId: d.deviceId,
      siteId: d.site.siteId,
      deviceModel: d.model,
      firmware: d.firmware,
      eventTime,
      temperatureC: round(temp, 2),
      vibrationMmS: round(Math.max(0, vib), 3),
      pressureKpa: pressure === null ? null : round(pressure, 1),
      batteryPct: st.battery === null ? null : round(st.battery, 1),
      location: { ...d.location },
    };
    const kind = ep?.kind ?? null;
    if (ep && --ep.left === 0) st.episode = null;
    return { event, anomaly: kind !== null, kind };
  }

  take(n: number): GeneratedReading[] {
    const out: GeneratedReading[] = [];
    for (let k = 0; k < n; k++) out.push(this.next());
    return out;
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
