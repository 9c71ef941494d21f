/**
 * Exactly-once v2 (`transactions: shared`) through crashes and zombies, judged by Kafka's own
 * read_committed console consumer (committedKeys), as test/faults/exactly-once.test.ts does for the
 * classic per-partition transactions. Here a dead process's open transaction is ended by the
 * coordinator's transaction timeout (its producer ids are its own), and a zombie is refused by the
 * group coordinator (stale generation), not by a transactional id.
 */
import { produceDemoEvents } from '../../examples/fraud/produce';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';
import { committedKeys, faultTopologyFile, generatedKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';

const endpoints = testEndpoints();

function sharedTopology(suffix: string): string {
  return faultTopologyFile(suffix, (doc) => {
    for (const s of doc.stages) s.transactions = 'shared';
  });
}

describe('exactly-once v2 (shared transactions) through crashes (real processes, real broker)', () => {
  it('kill -9 of the pipeline process 4 times under load: 0 lost, 0 duplicated', async () => {
    const suffix = uniqueSuffix();
    const file = sharedTopology(suffix);
    const count = 2000;
    const seed = 611;
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 120, seed });
    let proc = new StageProcess(file);
    await proc.waitForLog('pipeline running', 60000);
    expect(proc.output).toContain('"transactions":"shared"');
    for (let kill = 0; kill < 4; kill++) {
      await new Promise((r) => setTimeout(r, 2000 + Math.random() * 3000));
      proc.kill('SIGKILL');
      await proc.exited;
      proc = new StageProcess(file);
    }
    await producing;
    const recoveryStart = Date.now();
    const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 150000, suffix);
    const recoverySeconds = (Date.now() - recoveryStart) / 1000;
    expect((await proc.stop()).code).toBe(0);
    const { lost, duplicated } = lossAndDuplicates(generatedKeys(seed, count), seen);
    recordFault({ scenario: 'shared transactions: kill -9 x4 under load', events: count, lost, duplicated, recoverySeconds });
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  });

  it('kill -9 at a fixed point inside a shared transaction (outputs sent and offsets added, not committed; its offsets stay pending until the transaction timeout aborts it): 0 lost, 0 duplicated in both topics', async () => {
    const suffix = uniqueSuffix();
    const file = sharedTopology(suffix);
    const count = 1200;
    const seed = 644;
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 200, seed });
    // The 8th shared transaction dies after its sends and TxnOffsetCommit, before EndTxn: its offsets
    // are pending until the coordinator's transaction timeout aborts it.
    const crashing = new StageProcess(file, [], { TRIBUTARY_FAULT_CRASH_AT: 'txn-sent:8' });
    const exit = await crashing.exited;
    expect(exit.signal).toBe('SIGKILL');
    const proc = new StageProcess(file);
    await producing;
    const expected = generatedKeys(seed, count);
    const predictions = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 120000, suffix);
    const features = await committedKeys(endpoints, `fraud.features.${suffix}`, count, 60000, suffix, 'feature-vector');
    expect((await proc.stop()).code).toBe(0);
    const p = lossAndDuplicates(expected, predictions);
    const f = lossAndDuplicates(expected, features);
    recordFault({ scenario: 'shared transactions: kill -9 inside a transaction (after sends and offsets, before commit)', events: count, lost: p.lost + f.lost, duplicated: p.duplicated + f.duplicated, recoverySeconds: 0 });
    expect({ predictions: p, features: f }).toEqual({ predictions: { lost: 0, duplicated: 0 }, features: { lost: 0, duplicated: 0 } });
  });

  it('two instances in one group, one killed -9: the other takes its partitions once the dead one\'s transaction timed out, and the output is exact', async () => {
    const suffix = uniqueSuffix();
    const file = sharedTopology(suffix);
    const count = 1500;
    const seed = 633;
    const a = new StageProcess(file);
    const b = new StageProcess(file);
    await Promise.all([a.waitForLog('pipeline running', 60000), b.waitForLog('pipeline running', 60000)]);
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 150, seed });
    await new Promise((r) => setTimeout(r, 3000));
    a.kill('SIGKILL');
    const killedAt = Date.now();
    await producing;
    const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 120000, suffix);
    const { lost, duplicated } = lossAndDuplicates(generatedKeys(seed, count), seen);
    recordFault({ scenario: 'shared transactions: two instances, one kill -9', events: count, lost, duplicated, recoverySeconds: (Date.now() - killedAt) / 1000 });
    expect((await b.stop()).code).toBe(0);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  });

  it('an instance paused past its session timeout is fenced when it resumes (its stale generation refused, or its lanes fenced by the rejoin or by offsets that moved): it commits nothing for the generation it lost', async () => {
    const suffix = uniqueSuffix();
    const file = sharedTopology(suffix);
    const count = 1500;
    const seed = 622;
    const a = new StageProcess(file);
    await a.waitForLog('pipeline running', 60000);
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 150, seed });
    await new Promise((r) => setTimeout(r, 2500));
    a.kill('SIGSTOP'); // frozen mid-stream, most likely inside a shared transaction
    const b = new StageProcess(file);
    await b.waitForLog('pipeline running', 60000);
    await new Promise((r) => setTimeout(r, 9000)); // past a's session timeout: b owns every partition
    a.kill('SIGCONT');
    await producing;
    const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 120000, suffix);
    const { lost, duplicated } = lossAndDuplicates(generatedKeys(seed, count), seen);
    await Promise.all([a.stop(), b.stop()]);
    const how = [/group generation is stale/.test(a.output) && 'generation refused', /fenced: another instance owns/.test(a.output) && 'lanes fenced', /timed out|INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/.test(a.output) && 'transaction timed out'].filter(Boolean).join(', ');
    recordFault({ scenario: `shared transactions: paused past session timeout, resumed (zombie: ${how || 'no fencing logged'})`, events: count, lost, duplicated, recoverySeconds: 'n/a' });
    // The resumed zombie's lanes of the old generation were fenced (refused generation, or a
    // committed offset that moved under them), not committed.
    expect(a.output).toMatch(/group generation is stale|fenced: another instance owns/);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  });
});
