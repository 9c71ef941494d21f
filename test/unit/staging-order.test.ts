import { StagingOrder, type OrderedLane } from '../../src/engine/staging-order';

const lane = (head: number | undefined) => ({ head, headTimestamp() { return this.head; } }) as OrderedLane & { head: number | undefined };

describe('StagingOrder (repartition hop: fetched records leave the lanes in timestamp order)', () => {
  it('holds a record back while another lane holds an older fetched one, and lets it go once that one moved', async () => {
    const order = new StagingOrder();
    const a = lane(200);
    const b = lane(150);
    order.add(a);
    order.add(b);
    expect(order.bound(a)).toBe(150);
    expect(order.bound(b)).toBe(200);
    let released = false;
    const waiting = order.waitFor(a, 200, () => false).then(() => (released = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(released).toBe(false);
    // b sends its 150 record; its next fetched one is newer than a's.
    b.head = 260;
    order.changed();
    await waiting;
    expect(released).toBe(true);
  });

  it('a lane with nothing fetched holds nobody back; the oldest head never waits; a removed lane is forgotten', async () => {
    const order = new StagingOrder();
    const a = lane(100);
    const idle = lane(undefined);
    const c = lane(50);
    [a, idle, c].forEach((l) => order.add(l));
    expect(order.bound(c)).toBe(100);
    await order.waitFor(c, 50, () => false); // resolves at once
    expect(order.bound(a)).toBe(50);
    order.remove(c);
    expect(order.bound(a)).toBe(Number.POSITIVE_INFINITY);
  });

  it('stops waiting when the waiting lane closes', async () => {
    const order = new StagingOrder();
    const a = lane(200);
    order.add(a);
    order.add(lane(100));
    let closed = false;
    const waiting = order.waitFor(a, 200, () => closed);
    closed = true;
    await waiting; // re-checks within its interval even without a signal
  });
});
