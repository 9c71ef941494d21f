import { produceDemoEvents } from '../../examples/fraud/produce';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';
import { committedKeys, faultTopologyFile, generatedKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';

const endpoints = testEndpoints();

/**
 * At-least-once delivery (`delivery: at-least-once`, EagerSink): outputs are sent as soon as they
 * are computed and the input offset is committed apart, every 100 ms. A crash re-delivers what
 * follows the committed offset — duplicates are the price, a loss would be a bug.
 */
describe('at-least-once through crashes (real processes, real broker)', () => {
  it('kill -9 after a commit\'s outputs were acknowledged and before its offset commit, then 3 more at random: 0 lost, the crash\'s batch written again', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix, (doc) => {
      for (const s of doc.stages) s.delivery = 'at-least-once';
    });
    const count = 2000;
    const seed = 606;
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 150, seed });
    const group = `fraud-detection-${suffix}.extract`;
    // The chain's 6th commit dies after its batch's outputs were acknowledged, before OffsetCommit.
    const crashing = new StageProcess(file, [], { TRIBUTARY_FAULT_CRASH_AT: `alo-sent@${group}:6` });
    const exit = await crashing.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(crashing.output).toContain('chain started');
    let proc = new StageProcess(file);
    for (let kill = 0; kill < 3; kill++) {
      await proc.waitForLog('pipeline running', 60000);
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 2000));
      proc.kill('SIGKILL');
      await proc.exited;
      proc = new StageProcess(file);
    }
    await producing;
    const expected = generatedKeys(seed, count);
    const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 150000, suffix);
    expect((await proc.stop()).code).toBe(0);
    const { lost, duplicated } = lossAndDuplicates(expected, seen);
    recordFault({ scenario: 'at-least-once: kill -9 after acknowledged sends before the offset commit, then 3 at random', events: count, lost, duplicated, recoverySeconds: 0 });
    expect(lost).toBe(0);
    // The killed commit's outputs had been acknowledged and its offset not committed: they are written again.
    expect(duplicated).toBeGreaterThan(0);
  });
});
