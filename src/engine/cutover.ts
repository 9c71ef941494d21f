import type { Kafka } from 'kafkajs';
import { whileNotServed } from '../kafka/admin';
import type { Logger } from '../util/logger';
import type { ChainRunner } from './chain-runner';

/**
 * Cut-over between split and fused deployments of two stages A -> B joined by topic T.
 *
 * Fused, A and B run in A's group; B's outputs and T's records (a side output) commit in one
 * transaction, and every T record carries a header naming B (DONE_HEADER in chain.ts).
 *  - fused -> split: B, in its own group again, skips T records that name it, so nothing is scored
 *    twice whatever its committed offset is.
 *  - split -> fused: T may still hold records the split A wrote and the split B had not consumed.
 *    Before trusting the fused chain alone, a drain runs B apart in B's group until its committed
 *    offsets reach T's end as seen at the start (records the fused chain writes meanwhile are
 *    skipped) and no other member (a split B still running) is in the group.
 * After a drain, and when a fused deployment stops gracefully, B's group is moved to T's end (only
 * while the group is empty) so that the next start or cut-over does not re-read what was skipped.
 * Rolling mixes of split and fused instances stay exact as long as a split B keeps running until the
 * last split A is gone (each record is either named by the header or left for B's group).
 */
export class CutoverDrain {
  private timer?: NodeJS.Timeout;
  private finished = false;
  /** True once the drain reached its end (not merely stopped). */
  completed = false;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  private constructor(
    private readonly kafka: Kafka,
    private readonly runner: ChainRunner,
    private readonly topic: string,
    private readonly ends: Map<number, bigint>,
    private readonly closeProcessors: () => Promise<void>,
    private readonly log: Logger,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Starts a drain of B's group on T when T holds records B's group has not passed; undefined when there is nothing to drain. */
  static async startIfNeeded(args: { kafka: Kafka; groupId: string; topic: string; log: Logger; makeRunner: () => Promise<{ runner: ChainRunner; close: () => Promise<void> }> }): Promise<CutoverDrain | undefined> {
    const { kafka, groupId, topic, log } = args;
    const { ends, behind } = await groupPosition(kafka, groupId, topic);
    if (behind.length === 0) return undefined;
    const { runner, close } = await args.makeRunner();
    const drain = new CutoverDrain(kafka, runner, topic, ends, close, log);
    log.info({ group: groupId, topic, partitions: behind }, 'cut-over: draining records written before this deployment fused its stages');
    await runner.start();
    drain.poll();
    return drain;
  }

  private poll(): void {
    this.timer = setTimeout(() => {
      void this.check()
        .then((caughtUp) => (caughtUp ? this.finish() : this.poll()))
        .catch((err: Error) => {
          this.log.debug({ err: err.message }, 'cut-over drain check failed; retrying');
          this.poll();
        });
    }, 1000);
  }

  private async check(): Promise<boolean> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const [committed, groups] = await Promise.all([admin.fetchOffsets({ groupId: this.runner.groupId, topics: [this.topic] }), admin.describeGroups([this.runner.groupId])]);
      const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
      const caughtUp = [...this.ends].every(([p, end]) => (byPartition.get(p) ?? -1n) >= end - 1n);
      const others = (groups.groups[0]?.members.length ?? 0) > 1;
      return caughtUp && !others;
    } finally {
      await admin.disconnect();
    }
  }

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.runner.stop();
    await this.closeProcessors();
    await fastForward(this.kafka, this.runner.groupId, this.topic, this.log);
    this.completed = true;
    this.log.info({ group: this.runner.groupId, topic: this.topic }, 'cut-over drain complete');
    this.resolveDone();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    if (this.finished) return;
    this.finished = true;
    await this.runner.stop();
    await this.closeProcessors();
    this.resolveDone();
  }

  get isFinished(): boolean {
    return this.finished;
  }
}

/** T's end offsets, and the partitions where the group has not reached them (more than a trailing marker behind). */
async function groupPosition(kafka: Kafka, groupId: string, topic: string): Promise<{ ends: Map<number, bigint>; behind: number[] }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, committed] = await whileNotServed(`offsets of ${topic}`, () => Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]));
    const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
    const endMap = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
    const behind = ends
      .filter((e) => {
        const c = byPartition.get(e.partition) ?? -1n;
        const from = c >= 0n ? c : BigInt(e.low);
        return BigInt(e.high) - from > 1n;
      })
      .map((e) => e.partition);
    return { ends: endMap, behind };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Moves an empty group to the topic's end: every record of T below it is either named by the fused
 * header or was consumed by the group already. Nothing happens while the group has members. The
 * offsets are written with a short transaction (TxnOffsetCommit needs no group membership), not
 * with kafkajs' admin setOffsets, which joins the group and waits out the broker's initial
 * rebalance delay (~3 s).
 */
export async function fastForward(kafka: Kafka, groupId: string, topic: string, log: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groups = await admin.describeGroups([groupId]);
    if ((groups.groups[0]?.members.length ?? 0) > 0) {
      log.debug({ group: groupId, topic }, 'cut-over: group not moved (it has members)');
      return;
    }
    const ends = await whileNotServed(`offsets of ${topic}`, () => admin.fetchTopicOffsets(topic));
    const producer = kafka.producer({ transactionalId: `${groupId}.fast-forward`, maxInFlightRequests: 1, idempotent: true, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 1000 } });
    await producer.connect();
    try {
      const txn = await producer.transaction();
      await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) }] });
      await txn.commit();
    } finally {
      await producer.disconnect();
    }
    log.debug({ group: groupId, topic }, 'cut-over: group moved to the end of the fused topic');
  } catch (err) {
    log.debug({ group: groupId, topic, err: (err as Error).message }, 'cut-over: group not moved');
  } finally {
    await admin.disconnect();
  }
}
