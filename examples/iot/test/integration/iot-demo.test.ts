/**
 * The IoT demo (what `npm run demo:iot` runs, minus starting servers) against the test stack: every
 * produced reading is accounted for by a prediction, each malformed kind by one dead letter, and the
 * model finds most of the generator's planted anomalies with few false alarms.
 */
import { runIotDemo } from '../../demo';
import { testEndpoints, uniqueSuffix } from '../../../../test/helpers/topology';

describe('IoT demo', () => {
  it('accounts for every reading and scores the planted anomalies', async () => {
    const summary = await runIotDemo({ endpoints: testEndpoints(), count: 600, rate: 0, seed: 4711, malformed: 5, startTime: Date.UTC(2026, 0, 7, 15), suffix: `demo${uniqueSuffix()}` });
    expect(summary.predictions).toBe(600);
    expect(summary.deadLettered).toBe(5);
    expect(summary.deadLetterKinds).toEqual({ NOT_AVRO: 1, UNKNOWN_SCHEMA: 1, MISSING_FIELD: 1, WRONG_TYPE: 1, DECODE_ERROR: 1 });
    expect(summary.plantedAnomalies).toBeGreaterThan(5);
    expect(summary.recall).toBeGreaterThan(0.6);
    expect(summary.precision).toBeGreaterThan(0.8);
    expect(summary.latencyMs.p50).toBeGreaterThanOrEqual(0);
  });
});
