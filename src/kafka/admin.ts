import type { Admin, Kafka } from 'kafkajs';
import { kafkaErrorType } from './errors';
import type { TopicSpec } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';

const log = createLogger('kafka-admin');

export interface EnsureTopicsReport {
  created: string[];
  existing: string[];
  partitionsAdded: string[];
}

/**
 * Creates the topology's topics (the broker runs with auto-create disabled, on purpose: topics
 * are declared, not conjured by a typo). Existing topics with fewer partitions are grown.
 */
export async function ensureTopics(kafka: Kafka, topics: TopicSpec[]): Promise<EnsureTopicsReport> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      // Another process (a second instance, the gateway) may create the same topics at the same
      // moment: kafkajs then answers false for those. Leaders are waited for by waitUntilServed
      // below, for every topic: kafkajs' own wait (waitForLeaders) retries only LEADER_NOT_AVAILABLE,
      // and a KRaft broker can answer a topic created a moment ago with UNKNOWN_TOPIC_OR_PARTITION
      // ("This server does not host this topic-partition"), which failed a `tributary run` started
      // beside a gateway in CI.
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          replicationFactor: t.replicationFactor ?? 1,
          configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value: String(value) })),
        })),
      });
      log.info({ topics: missing.map((t) => t.name) }, 'created topics');
    }
    const present = topics.filter((t) => existing.has(t.name));
    const partitionsAdded: string[] = [];
    if (present.length > 0) {
      const names = present.map((t) => t.name);
      const meta = await whileNotServed(`metadata of ${names.join(', ')}`, () => admin.fetchTopicMetadata({ topics: names }));
      const grow = present.filter((t) => {
        const m = meta.topics.find((x) => x.name === t.name);
        return m !== undefined && m.partitions.length < t.partitions;
      });
      if (grow.length > 0) {
        await admin.createPartitions({ topicPartitions: grow.map((t) => ({ topic: t.name, count: t.partitions })) });
        partitionsAdded.push(...grow.map((t) => t.name));
        log.info({ topics: partitionsAdded }, 'added partitions');
      }
    }
    await waitUntilServed(admin, topics.map((t) => t.name));
    return { created: missing.map((t) => t.name), existing: present.map((t) => t.name), partitionsAdded };
  } finally {
    await admin.disconnect();
  }
}

const NOT_SERVED_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_FOR_PARTITION']);

/** A broker answer that only means "this topic is too new for me yet": worth asking again shortly. */
export function isNotServedYet(err: unknown): boolean {
  return NOT_SERVED_YET.has(kafkaErrorType(err) ?? '');
}

/**
 * Runs `request` (an admin request about topics) until the broker stops answering that a topic is
 * unknown or leaderless, for at most `timeoutMs`; other errors are thrown at once. A topic another
 * process (a second instance, the gateway) has just created is listed a moment before every broker
 * request about it answers: its metadata, its configs and its offsets each fail the start then with
 * "This server does not host this topic-partition" (seen in CI: `tributary run` and `tributary
 * gateway` started together, the gateway creating the topics).
 */
export async function whileNotServed<T>(what: string, request: () => Promise<T>, timeoutMs = 30000, retryMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await request();
    } catch (err) {
      if (!isNotServedYet(err)) throw err;
      if (Date.now() + retryMs > deadline) throw new TopicNotServedError(`${what}: not served by the broker within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

/** A topic the broker still did not serve when the wait for it ended. */
export class TopicNotServedError extends TributaryError {}

/**
 * Waits until the broker serves every partition of `topics` (a ListOffsets request for each topic
 * answers). A topic another process has just created is listed, and even has a leader in the
 * metadata, a moment before its leader serves it ("This server is not the leader for that
 * topic-partition", "does not host this topic-partition"); reading it then would fail the start.
 */
export async function waitUntilServed(admin: Admin, topics: string[], timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const topic of topics) await whileNotServed(`topic ${topic}`, () => admin.fetchTopicOffsets(topic), Math.max(0, deadline - Date.now()));
}
