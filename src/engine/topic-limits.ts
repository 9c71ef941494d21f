import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import type { TopicLimits } from './commit-sink';
import { whileNotServed } from '../kafka/admin';

const BROKER_DEFAULT = 1024 * 1024;

/** Reads the effective max.message.bytes of each topic from the broker (one request). */
export async function readTopicLimits(kafka: Kafka, topics: string[]): Promise<TopicLimits> {
  const unique = [...new Set(topics)];
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await whileNotServed(`max.message.bytes of ${unique.join(', ')}`, () => admin.describeConfigs({ includeSynonyms: false, resources: unique.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes'] })) }));
    const limits = new Map<string, number>();
    for (const r of res.resources) {
      const entry = r.configEntries.find((e) => e.configName === 'max.message.bytes');
      limits.set(r.resourceName, entry ? Number(entry.configValue) : BROKER_DEFAULT);
    }
    return { maxMessageBytes: (topic) => limits.get(topic) ?? BROKER_DEFAULT };
  } finally {
    await admin.disconnect();
  }
}

/** One topic's effective max.message.bytes. */
export async function topicMaxMessageBytes(kafka: Kafka, topic: string): Promise<number> {
  return (await readTopicLimits(kafka, [topic])).maxMessageBytes(topic);
}
