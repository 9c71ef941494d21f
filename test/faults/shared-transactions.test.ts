/**
 * Exactly-once v2 (`transactions: shared`) through crashes and zombies, judged by Kafka's own
 * read_committed console consumer (committedKeys). The kill -9 x10 loop runs for both transaction
 * modes in test/faults/exactly-once.test.ts; here are the scenarios only shared transactions have:
 * a dead process's open transaction is ended either by its successor re-initialising the same
 * transactional ids (a stable instance id) or by the coordinator's transaction timeout (a random
 * one), and a zombie is refused by the group coordinator (stale generation), not by a transactional id.
 * With `commit.sendAsProcessed` (outputs sent into the open transaction as computed) a crash after
 * the sends and a stop with records sent after the last cut lose and duplicate nothing either.
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

/** Lost and duplicated events of the demo producer's run (seed, count) in the committed predictions (p) and feature vectors (f). */
async function bothTopics(seed: number, count: number, suffix: string) {
  const expected = generatedKeys(seed, count);
  const predictions = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 120000, suffix);
  const features = await committedKeys(endpoints, `fraud.features.${suffix}`, count, 60000, suffix, 'feature-vector');
  return { p: lossAndDuplicates(expected, predictions), f: lossAndDuplicates(expected, features) };
}

/**
 * A process restarted after a crash inside a shared transaction of group `group`: seconds from
 * its group join until every lane owned its partition (ChainRunner logs it), and from the crash
 * until then. The crashed transaction's offsets are pending until it is aborted, and the lanes
 * read their offsets with require_stable: those of its partitions wait until then.
 */
async function restartStall(proc: StageProcess, group: string, crashedAt: number): Promise<{ fromJoin: number; fromCrash: number }> {
  const entry = await proc.waitFor(`its lanes of ${group} owning their partitions`, () => proc.entries('lanes own their partitions', { group })[0]);
  return { fromJoin: (entry.waitedMs as number) / 1000, fromCrash: (entry.time - crashedAt) / 1000 };
}

describe('exactly-once v2 (shared transactions) through crashes (real processes, real broker)', () => {
  it('kill -9 at a fixed point inside a shared transaction (outputs sent, offsets added, before EndTxn), twice: restarted with the same instance id the open transaction is aborted at once, with a fresh random id the successor waits for the transaction timeout; 0 lost, 0 duplicated in both topics', async () => {
    const suffix = uniqueSuffix();
    const file = sharedTopology(suffix);
    const count = 4500;
    const seed = 644;
    const instance = `fault-${suffix}`;
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 150, seed });
    // Each crashing process dies in a shared transaction of the extract+score chain (not the
    // repartition hop's) after its sends and TxnOffsetCommit, before EndTxn (the first in its 8th,
    // the second in its 40th: after its lanes took their partitions): its offsets stay pending
    // (require_stable readers wait) until someone ends it.
    const group = `fraud-detection-${suffix}.extract`;
    const first = new StageProcess(file, [], { TRIBUTARY_FAULT_CRASH_AT: `txn-sent@${group}:8`, TRIBUTARY_INSTANCE_ID: instance });
    const firstExit = await first.exited;
    const firstCrashedAt = Date.now();
    expect(firstExit.signal).toBe('SIGKILL');
    // Same instance id (the flag this time): its warm-up re-initialises the ids and aborts the open transaction.
    const second = new StageProcess(file, ['--instance-id', instance], { TRIBUTARY_FAULT_CRASH_AT: `txn-sent@${group}:40` });
    const secondExit = second.exited.then((e) => ({ ...e, at: Date.now() }));
    const sameId = await restartStall(second, group, firstCrashedAt);
    expect(second.output).toContain(`${instance}.0`);
    const crashed = await secondExit;
    expect(crashed.signal).toBe('SIGKILL');
    // A fresh random id: nobody ends the open transaction but the coordinator's timeout (10 s after it began).
    const third = new StageProcess(file);
    const randomId = await restartStall(third, group, crashed.at);
    await producing;
    const { p, f } = await bothTopics(seed, count, suffix);
    expect((await third.stop()).code).toBe(0);
    const waits = `every lane owned its partition ${sameId.fromJoin.toFixed(1)} s after joining (${sameId.fromCrash.toFixed(1)} s after the crash) with the same instance id, ${randomId.fromJoin.toFixed(1)} s after joining (${randomId.fromCrash.toFixed(1)} s after the crash) with a random one`;
    process.stdout.write(`shared transactions, crash inside a transaction: ${waits}\n`);
    recordFault({ scenario: `shared transactions: kill -9 inside a transaction (after sends and offsets, before commit), restarted with the same then a random instance id: ${waits}`, events: count, lost: p.lost + f.lost, duplicated: p.duplicated + f.duplicated, recoverySeconds: sameId.fromJoin });
    expect({ predictions: p, features: f }).toEqual({ predictions: { lost: 0, duplicated: 0 }, features: { lost: 0, duplicated: 0 } });
    // The same id aborts the predecessor's transaction before the lanes read their offsets; a
    // random one cannot, so the lanes of its partitions wait until the coordinator aborted it
    // (transaction timeout 10 s from its start, checked every 10 s).
    expect(sameId.fromJoin).toBeLessThan(5);
    expect(randomId.fromCrash).toBeGreaterThanOrEqual(8);
  });

  it('outputs sent as processed (commit.sendAsProcessed): kill -9 inside a transaction after its sends and offsets, before EndTxn, then a graceful stop with records staged after the last cut; 0 lost, 0 duplicated in both topics', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix, (doc) => {
      for (const s of doc.stages) {
        s.transactions = 'shared';
        s.commit = { ...(s.commit ?? {}), sendAsProcessed: true };
      }
    });
    const count = 3000;
    const seed = 655;
    const instance = `fault-${suffix}`;
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 150, seed });
    const group = `fraud-detection-${suffix}.extract`;
    // Dies in its 8th transaction of the extract+score chain, whose records went out as processed.
    const first = new StageProcess(file, ['--instance-id', instance], { TRIBUTARY_FAULT_CRASH_AT: `txn-sent@${group}:8` });
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(first.output).toContain('"sendAsProcessed":true');
    // The successor aborts the open transaction (same ids), runs a while and is stopped while events
    // still arrive: what it staged after its last cut is aborted at close, never committed.
    const second = new StageProcess(file, ['--instance-id', instance]);
    await second.waitForLog('pipeline running', 60000);
    await new Promise((r) => setTimeout(r, 4000));
    expect((await second.stop()).code).toBe(0);
    const third = new StageProcess(file, ['--instance-id', instance]);
    await producing;
    const { p, f } = await bothTopics(seed, count, suffix);
    expect((await third.stop()).code).toBe(0);
    recordFault({ scenario: 'shared transactions, outputs sent as processed: kill -9 inside a transaction (after sends and offsets, before commit), then SIGTERM mid-stream', events: count, lost: p.lost + f.lost, duplicated: p.duplicated + f.duplicated, recoverySeconds: 'n/a' });
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
    const how = [/group generation is stale/.test(a.output) && 'generation refused', /fenced: another instance owns/.test(a.output) && 'lanes fenced', /timed out|INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/.test(a.output) && 'transaction timed out', /rejoined the group at a new generation/.test(a.output) && 'rejoined'].filter(Boolean).join(', ');
    recordFault({ scenario: `shared transactions: paused past session timeout, resumed (zombie: ${how || 'no fencing logged'})`, events: count, lost, duplicated, recoverySeconds: 'n/a' });
    // The resumed zombie's lanes of the old generation were fenced (refused generation, or a
    // committed offset that moved under them) or, when its first word with the coordinator was a
    // heartbeat (nothing was mid-commit), dropped by the rejoin; either way not committed (0 duplicated).
    expect(a.output).toMatch(/group generation is stale|fenced: another instance owns|rejoined the group at a new generation/);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  });
});
