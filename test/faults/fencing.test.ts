import { createKafka } from '../../src/kafka/client';
import { ensureTopics } from '../../src/kafka/admin';
import { ProducerFencedError, TransactionalDelivery, type OutgoingBatch } from '../../src/stages/delivery';
import { createLogger } from '../../src/util/logger';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';

const endpoints = testEndpoints();

/** Reads every record of a topic visible to read_committed consumers. */
async function committedValues(topic: string, expected: number): Promise<string[]> {
  const kafka = createKafka({ clientId: 'fencing-verify', brokers: endpoints.brokers });
  const consumer = kafka.consumer({ groupId: `verify-${topic}-${Date.now()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  const values: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
  const deadline = Date.now() + 15000;
  while (values.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500));
  await consumer.disconnect();
  return values;
}

function batch(topic: string, values: string[], nextOffset: string): OutgoingBatch {
  return {
    topic,
    partition: 0,
    nextOffset,
    outputs: values.map((v) => ({ key: v, value: v })),
    reject: () => undefined,
    deadLetters: () => [],
    isStale: () => false,
  };
}

describe('transactional fencing (classic per-partition transactional ids)', () => {
  it('the instance that takes a partition over fences the previous owner: its late batch fails and nothing of it is visible or committed', async () => {
    const suffix = uniqueSuffix();
    const input = `fence-in.${suffix}`;
    const output = `fence-out.${suffix}`;
    const dlq = `fence-dlq.${suffix}`;
    const groupId = `fence-group-${suffix}`;
    const kafka = createKafka({ clientId: 'fencing-test', brokers: endpoints.brokers });
    await ensureTopics(kafka, [
      { name: input, partitions: 1, schema: 'transaction' },
      { name: output, partitions: 1, schema: 'prediction' },
      { name: dlq, partitions: 1, schema: 'dead-letter' },
    ]);
    const options = { kafka, consumer: kafka.consumer({ groupId }), groupId, outputTopic: output, deadLetterTopic: dlq, maxMessageBytes: 1024 * 1024, log: createLogger('fencing-test') };
    const a = new TransactionalDelivery(options);
    const b = new TransactionalDelivery(options);
    try {
      a.onAssignment({ [input]: [0] });
      expect(await a.startOffset(input, 0)).toBeNull();
      expect(await a.deliver(batch(input, ['a-1', 'a-2'], '2'))).toBe(true);

      // a stalls (GC pause, frozen process); the group gives partition 0 to b, whose producer init bumps the epoch.
      b.onAssignment({ [input]: [0] });
      expect(await b.startOffset(input, 0)).toBe('2'); // b resumes exactly after a's last committed batch

      // a wakes up and tries to commit a batch for the partition it lost.
      await expect(a.deliver(batch(input, ['a-3-late'], '3'))).rejects.toBeInstanceOf(ProducerFencedError);
      expect(await b.deliver(batch(input, ['b-3'], '3'))).toBe(true);

      expect((await committedValues(output, 3)).sort()).toEqual(['a-1', 'a-2', 'b-3']);
      const admin = kafka.admin();
      await admin.connect();
      const offsets = await admin.fetchOffsets({ groupId, topics: [input] });
      await admin.disconnect();
      expect(offsets[0].partitions[0].offset).toBe('3');
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });
});
