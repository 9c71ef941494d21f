import { createKafka } from '../../src/kafka/client';
import { ensureTopics } from '../../src/kafka/admin';
import { PartitionTransactions, ProducerFencedError, type CommitBatch } from '../../src/engine/commit-sink';
import { RecordRejection } from '../../src/kafka/dead-letter';
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

function batch(topic: string, output: string, values: string[], nextOffset: string): CommitBatch {
  return {
    topic,
    partition: 0,
    nextOffset,
    records: values.map((v) => ({ outputs: [{ topic: output, message: { key: v, value: v } }], toDeadLetter: (r: RecordRejection) => ({ key: v, value: r.message }) })),
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
    const admin0 = kafka.admin();
    await admin0.connect();
    const fetchCommitted = async (topic: string, partition: number) => {
      const res = await admin0.fetchOffsets({ groupId, topics: [topic] });
      const o = res[0]?.partitions.find((p) => p.partition === partition)?.offset;
      return o !== undefined && Number(o) >= 0 ? o : null;
    };
    const options = { kafka, groupId, deadLetterTopic: dlq, limits: { maxMessageBytes: () => 1024 * 1024 }, log: createLogger('fencing-test'), topic: input, partition: 0, fetchCommitted };
    const a = new PartitionTransactions(options);
    const b = new PartitionTransactions(options);
    try {
      expect(await a.init()).toBeNull();
      await a.commit(batch(input, output, ['a-1', 'a-2'], '2'));

      // a stalls (GC pause, frozen process); the group gives partition 0 to b, whose producer init bumps the epoch.
      expect(await b.init()).toBe('2'); // b resumes exactly after a's last committed batch

      // a wakes up and tries to commit a batch for the partition it lost.
      await expect(a.commit(batch(input, output, ['a-3-late'], '3'))).rejects.toBeInstanceOf(ProducerFencedError);
      await b.commit(batch(input, output, ['b-3'], '3'));

      expect((await committedValues(output, 3)).sort()).toEqual(['a-1', 'a-2', 'b-3']);
      const admin = kafka.admin();
      await admin.connect();
      const offsets = await admin.fetchOffsets({ groupId, topics: [input] });
      await admin.disconnect();
      expect(offsets[0].partitions[0].offset).toBe('3');
    } finally {
      await Promise.allSettled([a.close(), b.close(), admin0.disconnect()]);
    }
  });
});
