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

    for (const { track, result } of [five, one]) {
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
    // 1 ms ticks: several times as many requests for the same events
    expect(one.result.requests).toBeGreaterThan(2.5 * five.result.requests);
    // an event waits at most about one tick to be handed over (plus the machine's timer slack)
    expect(five.result.latenessMs.p50).toBeLessThanOrEqual(10);
  }, 60_000);
});
