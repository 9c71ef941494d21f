/**
 * kafkajs' read_committed filter, as patched by scripts/patch-kafkajs.js (npm ci runs it): records of
 * every aborted transaction that began before a fetch's first record are hidden, not just the first
 * one's. Without the patch the second producer's aborted record below is delivered.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages') as (a: { messages: unknown[]; abortedTransactions: { producerId: string; firstOffset: string }[] }) => { offset: string }[];

function record(offset: number, producerId: string, opts: { control?: boolean; inTransaction?: boolean } = {}) {
  return { offset: String(offset), isControlRecord: opts.control ?? false, batchContext: { producerId, inTransaction: opts.inTransaction ?? true }, key: opts.control ? Buffer.from([0, 0, 0, 0]) : Buffer.from('k') };
}

describe('kafkajs aborted-transaction filter (patched)', () => {
  it('hides records of several aborted transactions that began before the fetched range', () => {
    // Producers 1 and 2 both began (and later aborted) transactions at offsets 10 and 12; the fetch starts at 15.
    const messages = [record(15, '2'), record(16, '1'), record(17, '3', { inTransaction: false }), record(18, '1', { control: true }), record(19, '2', { control: true }), record(20, '4', { inTransaction: false })];
    const kept = filterAbortedMessages({ messages, abortedTransactions: [{ producerId: '1', firstOffset: '10' }, { producerId: '2', firstOffset: '12' }] });
    expect(kept.map((m) => m.offset)).toEqual(['17', '18', '19', '20']);
  });

  it('hides an aborted transaction that began before another but was aborted after it (the broker lists them in abort order)', () => {
    // Producer 2 began at 5 and was aborted at 13; producer 1 began at 10 and was aborted at 12. The
    // fetch answer lists producer 1 first (its abort marker came first); unpatched, 5 and 6 leaked.
    const messages = [record(5, '2'), record(6, '2'), record(10, '1'), record(11, '3', { inTransaction: false }), record(12, '1', { control: true }), record(13, '2', { control: true })];
    const kept = filterAbortedMessages({ messages, abortedTransactions: [{ producerId: '1', firstOffset: '10' }, { producerId: '2', firstOffset: '5' }] });
    expect(kept.map((m) => m.offset)).toEqual(['11', '12', '13']);
  });

  it('keeps a later transaction of the same producer once its aborted one ended', () => {
    const messages = [record(10, '1'), record(11, '1', { control: true }), record(12, '1'), record(13, '1', { control: true })];
    const kept = filterAbortedMessages({ messages, abortedTransactions: [{ producerId: '1', firstOffset: '10' }] });
    expect(kept.map((m) => m.offset)).toEqual(['11', '12', '13']);
  });
});
