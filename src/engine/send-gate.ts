/**
 * One produce request at a time for a group of producers, keeping each key's records in
 * submission order.
 *
 * Why: a repartition hop's lanes each own transactional producers, and one entity's records from
 * several input partitions meet in one repartition partition. Two producers' requests in flight at
 * once are appended in whatever order the broker takes them, so a record processed later (another
 * lane, an idle producer) can overtake one processed earlier whose producer is still busy with a
 * previous request. Passing every send of the hop through one gate makes each entity's write order
 * the order its records were processed in: a request is issued only once the previous one was
 * acknowledged (acks=all: appended).
 *
 * Throughput: requests are serial, so each carries as much as it may. A turn serves the oldest
 * submission's batch (one open transaction) and takes every record of that batch queued so far,
 * except those whose key also occurs in an older submission of another batch (they wait their
 * turn, and so do that batch's later records of the same key). Only records of one key must keep
 * their order, so this loses nothing of it.
 */
export class SendGate<R> {
  private readonly queue: Entry<R>[] = [];
  private running = false;
  /** Requests issued, for tests. */
  requests = 0;

  /** @param keyOf the ordering key of a record (records with other keys may overtake each other). */
  constructor(private readonly keyOf: (record: R) => string) {}

  /**
   * Queues `records` of `batch` to be sent by `send` (the batch's sender: one call sends records of
   * one batch only); resolves once all of them are sent, rejects with the error of a send that
   * carried any of them.
   */
  submit(batch: object, records: R[], send: (records: R[]) => Promise<void>): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ batch, records: [...records], send, resolve, reject, failed: undefined });
      if (!this.running) void this.drain();
    });
  }

  /** What the next request carries: the oldest submission's batch, minus records whose key an older other batch still holds. */
  private take(): { head: Entry<R>; records: R[]; from: Entry<R>[] } {
    const head = this.queue[0];
    const blocked = new Set<string>();
    const records: R[] = [];
    const from: Entry<R>[] = [];
    for (const e of this.queue) {
      if (e.batch !== head.batch) {
        for (const r of e.records) blocked.add(this.keyOf(r));
        continue;
      }
      const kept: R[] = [];
      for (const r of e.records) {
        const k = this.keyOf(r);
        if (blocked.has(k)) kept.push(r);
        else records.push(r);
      }
      if (kept.length < e.records.length) from.push(e);
      // A record held back holds back its batch's later records of the same key.
      for (const r of kept) blocked.add(this.keyOf(r));
      e.records = kept;
    }
    return { head, records, from };
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const { head, records, from } = this.take();
        this.requests += 1;
        try {
          await head.send(records);
        } catch (err) {
          for (const e of from) e.failed ??= err;
        }
        // Settle the submissions that have nothing left to send.
        for (let i = 0; i < this.queue.length; ) {
          const e = this.queue[i];
          if (e.records.length > 0) {
            i++;
            continue;
          }
          this.queue.splice(i, 1);
          if (e.failed === undefined) e.resolve();
          else e.reject(e.failed);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

interface Entry<R> {
  batch: object;
  records: R[];
  send: (records: R[]) => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  failed: unknown;
}
