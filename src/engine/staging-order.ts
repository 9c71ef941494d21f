/**
 * Timestamp order across a runner's lanes for records already fetched (a repartition hop).
 *
 * Why: records of one entity from two input partitions that arrive in the same fetch (or while one
 * lane is still busy with earlier records) would otherwise be handed to the SendGate in whatever
 * order the lanes happen to finish processing them. A lane about to send a processed record first
 * waits until no other lane still holds an older one it has fetched but not yet sent — Kafka
 * Streams' choice of the partition with the oldest buffered head, without its idle wait: a lane
 * with nothing fetched holds nobody back.
 *
 * Progress: heads only are compared (timestamps within one partition need not be monotonic), so the
 * lane holding the oldest head never waits, and every wait ends when another lane's head moves.
 */
export interface OrderedLane {
  /** Kafka timestamp of the oldest record this lane fetched and has not yet sent (its head); undefined: none, or closed. */
  headTimestamp(): number | undefined;
}

/** Re-check interval of a waiting lane, in case a change was not signalled (a lane closed elsewhere). */
const RECHECK_MS = 50;

export class StagingOrder {
  private readonly lanes = new Set<OrderedLane>();
  private waiters: Array<() => void> = [];

  add(lane: OrderedLane): void {
    this.lanes.add(lane);
  }

  remove(lane: OrderedLane): void {
    this.lanes.delete(lane);
    this.changed();
  }

  /** The newest timestamp `lane` may send now: the oldest head of every other lane (Infinity: none). */
  bound(lane: OrderedLane): number {
    let min = Number.POSITIVE_INFINITY;
    for (const l of this.lanes) {
      if (l === lane) continue;
      const t = l.headTimestamp();
      if (t !== undefined && t < min) min = t;
    }
    return min;
  }

  /** Resolves once `timestamp` is within `lane`'s bound, or `cancelled()` says to stop waiting. */
  async waitFor(lane: OrderedLane, timestamp: number, cancelled: () => boolean): Promise<void> {
    while (timestamp > this.bound(lane) && !cancelled()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, RECHECK_MS);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
    }
  }

  /** A lane's head moved (records sent, fetched, dropped): waiting lanes re-check. */
  changed(): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
