/** TRIBUTARY_FAULT_CRASH_AT is read once at module load: each case loads the module afresh with its own value. */
function crashPointWith(spec: string): { crashPoint: (point: 'txn-sent' | 'gateway-produced', scope?: string) => void; kills: () => number } {
  const before = process.env.TRIBUTARY_FAULT_CRASH_AT;
  process.env.TRIBUTARY_FAULT_CRASH_AT = spec;
  let mod!: typeof import('../../src/engine/fault-injection');
  jest.isolateModules(() => {
    mod = require('../../src/engine/fault-injection');
  });
  if (before === undefined) delete process.env.TRIBUTARY_FAULT_CRASH_AT;
  else process.env.TRIBUTARY_FAULT_CRASH_AT = before;
  // The real SIGKILL would end the test runner: record it instead.
  const kill = jest.spyOn(process, 'kill').mockImplementation(() => true);
  return { crashPoint: mod.crashPoint, kills: () => kill.mock.calls.filter(([pid, sig]) => pid === process.pid && sig === 'SIGKILL').length };
}

afterEach(() => jest.restoreAllMocks());

describe('fault injection crash points', () => {
  it('point:n kills on the n-th pass of that point, whatever the scope, and never again', () => {
    const { crashPoint, kills } = crashPointWith('txn-sent:3');
    crashPoint('gateway-produced');
    crashPoint('txn-sent', 'group-a');
    crashPoint('txn-sent', 'group-b');
    expect(kills()).toBe(0);
    crashPoint('txn-sent');
    expect(kills()).toBe(1);
    crashPoint('txn-sent');
    expect(kills()).toBe(1);
  });

  it('point@scope:n counts only passes in that scope (one chain of a process running several)', () => {
    const { crashPoint, kills } = crashPointWith('txn-sent@app.extract:2');
    crashPoint('txn-sent', 'app.extract-repartition');
    crashPoint('txn-sent', 'app.extract');
    crashPoint('txn-sent', 'app.extract-repartition');
    crashPoint('txn-sent');
    expect(kills()).toBe(0);
    crashPoint('txn-sent', 'app.extract');
    expect(kills()).toBe(1);
  });
});
