/**
 * The bench's open-loop driver against the real broker and registry: it hands what fell due to its
 * producer once per tick (one produce request per tick), keeps every event's schedule, and
 * `--tick-ms 1` gives the old cadence. Until 2026-12-06 it woke for the next due event instead of
 * the tick's end, so it sent ~700 produce requests/s at any rate above ~200/s — a third of the
 * co-located broker's requests in the live bench (BENCHMARKS.md item 43).
 */
import { OpenLoopDriver, PhaseTrack } from '../../bench/src/drive';
import { createKafka } from '../../src/kafka/client';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';

const RATE = 4000;
const EVENTS = 2000; // half a second

describe('bench open-loop driver (real Kafka and registry)', () => {
  const ep = testEndpoints();
  const topic = `bench-driver.${uniqueSuffix()}`;
  let driver: OpenLoopDriver;

  beforeAll(async () => {
    const admin = createKafka({ clientId: 'bench-driver-test', brokers: ep.brokers }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    driver = new OpenLoopDriver({ brokers: ep.brokers, schemaRegistryUrl: ep.schemaRegistryUrl }, topic);
    await driver.connect();
  }, 60_000);

  afterAll(async () => {
    await driver?.close();
  });

  async function drive(name: string, tickMs: number) {
    const track = new PhaseTrack(name, EVENTS);
    const result = await driver.drive(track, RATE, { tickMs, maxInFlight: 64 });
    return { track, result };
  }

  it('sends one produce request per tick, every event acked, each with its due time kept', async () => {
    const five = await drive('tick5', 5);
    const one = await drive('tick1', 1);
    const twenty = await drive('tick20', 20);

    for (const { track, result } of [five, one, twenty]) {
      expect(track.sent).toBe(EVENTS);
      expect(track.acked).toBe(EVENTS);
      for (let i = 0; i < EVENTS; i++) {
        expect(track.dueAt[i]).toBeCloseTo(result.start + (i * 1000) / RATE, 6);
        expect(track.sentAt[i]).toBeGreaterThanOrEqual(Math.floor(track.dueAt[i]));
      }
    }
    // 0.5 s in 5 ms ticks: ~100 requests (fewer when a busy machine stretches a tick, never many more)
    expect(five.result.requests).toBeGreaterThanOrEqual(20);
    expect(five.result.requests).toBeLessThanOrEqual(0.5 * 200 + 10);
    // 0.5 s in 20 ms ticks: ~25 requests, never many more
    expect(twenty.result.requests).toBeLessThanOrEqual(0.5 * 50 + 10);
    // the tick sets the cadence: 1 ms ticks send several times as many requests for the same events
    // as 20 ms ticks. (Against 5 ms ticks the margin is only what the machine's timer slack leaves: a
    // loaded CI host stretched 1 ms ticks to ~2.3 ms, 216 requests against ~95.)
    expect(one.result.requests).toBeGreaterThan(2.5 * twenty.result.requests);
    // an event waits about one tick to be handed over, plus the machine's timer slack (4 ticks'
    // allowance: a driver that held events back for a batch would be late by far more)
    expect(five.result.latenessMs.p50).toBeLessThanOrEqual(20);
  }, 60_000);
});
