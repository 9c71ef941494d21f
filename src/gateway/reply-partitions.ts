import { AssignerProtocol, type Consumer, type Kafka, type KafkaMessage, type PartitionAssigner } from 'kafkajs';
import type { Redis, Cluster } from 'ioredis';
import { TributaryError } from '../util/errors';
import type { Logger } from '../util/logger';

/**
 * Which reply partitions a gateway instance owns, and reading only those.
 *
 * kafkajs has no manual assign(): a consumer reads what its group gives it. So each instance runs a
 * group of its own (one member) whose assigner hands that member exactly the partition the instance
 * leased in Redis (`SET NX PX`, renewed at a third of its TTL). Two instances never lease the same
 * partition, so each fetches only the replies to its own requests, never the whole stream.
 */

/** Hands the group's only member the partitions `owned()` names (whatever the group protocol proposes). */
export function ownedPartitionsAssigner(topic: string, owned: () => number[]): PartitionAssigner {
  return () => ({
    name: 'TributaryLeasedPartitions',
    version: 1,
    async assign({ members }) {
      return members.map((m, i) => ({
        memberId: m.memberId,
        // A second member (never expected: the group id is the instance's own) gets nothing.
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: i === 0 ? { [topic]: owned() } : {}, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return { name: 'TributaryLeasedPartitions', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
    },
  });
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

export class NoFreeReplyPartitionError extends TributaryError {}

/** A Redis lease on one reply partition. */
export class PartitionLease {
  private timer?: NodeJS.Timeout;
  private lost = false;

  private constructor(
    private readonly redis: Redis | Cluster,
    readonly key: string,
    readonly partition: number,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  static leaseKey(prefix: string, partition: number): string {
    return `${prefix}:lease:${partition}`;
  }

  /** Takes the first free partition, starting at a random one (instances spread without coordination). */
  static async acquire(redis: Redis | Cluster, prefix: string, partitions: number, owner: string, ttlMs: number, log: Logger): Promise<PartitionLease> {
    const start = Math.floor(Math.random() * partitions);
    for (let i = 0; i < partitions; i++) {
      const p = (start + i) % partitions;
      const key = PartitionLease.leaseKey(prefix, p);
      if ((await redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK') {
        const lease = new PartitionLease(redis, key, p, owner, ttlMs, log);
        lease.timer = setInterval(() => void lease.renew(), Math.max(50, Math.floor(ttlMs / 3)));
        lease.timer.unref();
        return lease;
      }
    }
    throw new NoFreeReplyPartitionError(`all ${partitions} reply partitions are leased by other gateway instances: give the reply topic more partitions or run fewer instances`);
  }

  get held(): boolean {
    return !this.lost;
  }

  private async renew(): Promise<void> {
    try {
      const ok = await this.redis.eval(RENEW, 1, this.key, this.owner, this.ttlMs);
      if (ok !== 1 && !this.lost) {
        this.lost = true;
        this.log.error({ partition: this.partition }, 'reply partition lease lost (Redis unreachable longer than its TTL, or taken over): this instance stops accepting requests');
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'lease renewal failed; retrying');
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.eval(RELEASE, 1, this.key, this.owner).catch(() => undefined);
  }
}

export interface ReplyConsumerOptions {
  kafka: Kafka;
  topic: string;
  partition: number;
  groupId: string;
  /** Start here (e.g. the partition's end when the instance starts, or an old position when a retry scans). */
  fromOffset: string;
  onMessage(message: KafkaMessage): void;
  /** Records fetched, from kafkajs' own instrumentation (each batch it hands over). */
  onFetched?(records: number): void;
}

/**
 * Reads one partition from a given offset through a one-member group with the leasing assigner
 * (read_committed: replies written in a stage's transaction appear when it commits). Offsets are
 * never committed: a reply consumer always starts where its caller says.
 */
export class ReplyConsumer {
  private consumer?: Consumer;
  private position: bigint;

  constructor(private readonly opts: ReplyConsumerOptions) {
    this.position = BigInt(opts.fromOffset);
  }

  /** Offset of the next record this consumer will hand over. */
  get nextOffset(): string {
    return this.position.toString();
  }

  /** Resolves once the group gave this member its partition and the consumer was moved to `fromOffset`. */
  async start(timeoutMs = 30000): Promise<void> {
    const { kafka, topic, partition, groupId } = this.opts;
    const consumer = kafka.consumer({ groupId, partitionAssigners: [ownedPartitionsAssigner(topic, () => [partition])], maxWaitTimeInMs: 250, sessionTimeout: 10000, heartbeatInterval: 3000, allowAutoTopicCreation: false });
    this.consumer = consumer;
    let joined: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => {
      consumer.seek({ topic, partition, offset: this.opts.fromOffset });
      joined();
    });
    consumer.on(consumer.events.START_BATCH_PROCESS, (e) => this.opts.onFetched?.(e.payload.batchSize));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (BigInt(m.offset) < this.position) continue; // fetched before the seek landed
          this.position = BigInt(m.offset) + 1n;
          this.opts.onMessage(m);
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TributaryError(`reply consumer for ${topic}[${partition}] got no assignment within ${timeoutMs} ms`)), timeoutMs)))]).finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    this.consumer = undefined;
  }
}

/** The end offset of one partition now. */
export async function partitionEnd(kafka: Kafka, topic: string, partition: number): Promise<string> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const p = offsets.find((o) => o.partition === partition);
    if (!p) throw new TributaryError(`topic ${topic} has no partition ${partition}`);
    return p.high;
  } finally {
    await admin.disconnect();
  }
}
