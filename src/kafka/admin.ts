import type { Kafka } from 'kafkajs';
import type { TopicSpec } from '../topology/spec';
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
      await admin.createTopics({
        waitForLeaders: true,
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
      const meta = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
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
    return { created: missing.map((t) => t.name), existing: present.map((t) => t.name), partitionsAdded };
  } finally {
    await admin.disconnect();
  }
}
