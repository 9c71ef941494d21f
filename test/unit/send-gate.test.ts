import { SendGate } from '../../src/engine/send-gate';

/** A record: its ordering key and a label. */
type R = { key: string; id: string };
const r = (key: string, id: string): R => ({ key, id });

/** A fake broker: requests are appended when they complete; at most one may be in flight. */
function broker(delays: number[] = []) {
  const log: string[] = [];
  const requests: string[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const send = (batch: string) => async (records: R[]) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    requests.push(records.map((x) => `${batch}:${x.id}`));
    await new Promise((res) => setTimeout(res, delays.shift() ?? 1));
    for (const x of records) log.push(x.id);
    inFlight--;
  };
  return { log, requests, send, maxInFlight: () => maxInFlight };
}

describe('SendGate (repartition hop: one request at a time, each key in submission order)', () => {
  it('keeps every key in submission order across batches, one request in flight', async () => {
    const b = broker([30, 1, 1, 1]);
    const gate = new SendGate<R>((x) => x.key);
    const A = {};
    const B = {};
    const X = {};
    // X's request is in flight (slow) while A, B and A again submit.
    const done = [
      gate.submit(X, [r('card-9', 'x0')], b.send('X')),
      gate.submit(A, [r('card-1', 'a1')], b.send('A')),
      gate.submit(B, [r('card-1', 'b1'), r('card-3', 'b3')], b.send('B')),
      gate.submit(A, [r('card-1', 'a3'), r('card-4', 'a4')], b.send('A')),
    ];
    await Promise.all(done);
    expect(b.log.filter((id) => ['a1', 'b1', 'a3'].includes(id))).toEqual(['a1', 'b1', 'a3']);
    expect(b.maxInFlight()).toBe(1);
    // A's later card-4 record rides along with A's first request; its card-1 record waits behind B's.
    expect(b.requests).toEqual([['X:x0'], ['A:a1', 'A:a4'], ['B:b1', 'B:b3'], ['A:a3']]);
  });

  it('merges a batch\'s queued submissions into one request when no other batch holds their keys', async () => {
    const b = broker([20]);
    const gate = new SendGate<R>((x) => x.key);
    const A = {};
    const first = gate.submit(A, [r('k1', '1')], b.send('A'));
    const rest = [gate.submit(A, [r('k2', '2')], b.send('A')), gate.submit(A, [r('k1', '3')], b.send('A'))];
    await Promise.all([first, ...rest]);
    expect(b.requests).toEqual([['A:1'], ['A:2', 'A:3']]);
    expect(b.log).toEqual(['1', '2', '3']);
  });

  it('rejects the submissions a failed request carried, and goes on with the others', async () => {
    const gate = new SendGate<R>((x) => x.key);
    const A = {};
    const B = {};
    const failing = gate.submit(A, [r('k1', '1')], async () => {
      await new Promise((res) => setTimeout(res, 5));
      throw new Error('NOT_LEADER');
    });
    const b = broker();
    const other = gate.submit(B, [r('k1', '2')], b.send('B'));
    await expect(failing).rejects.toThrow('NOT_LEADER');
    await expect(other).resolves.toBeUndefined();
    expect(b.log).toEqual(['2']);
  });
});
