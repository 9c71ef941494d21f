import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createKafka, idempotentProducer } from '../../src/kafka/client';
import { kafkaErrorType } from '../../src/kafka/errors';
import { ensureTopics } from '../../src/kafka/admin';
import { TopicProducer, UnknownTopicError } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { repoRoot } from '../../src/stack/paths';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';
import { fraudSchemas } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();
const run = promisify(execFile);

interface LogLine {
  level: number;
  msg?: string;
  namespace?: string;
  retriable?: string;
}

describe('kafkajs through createKafka, on the real broker', () => {
  it('a back-to-back transactional produce loop and idempotent sends log no ERROR or WARN line; retriable answers go to debug and are counted', async () => {
    const topic = `clientfix.txn-loop.${uniqueSuffix()}`;
    // Its own process (compiled dist/, built by `npm run build`), so every line it logs is read here; debug on, to see the demoted answers.
    const { stdout, stderr } = await run(process.execPath, [path.join(repoRoot(), 'test/helpers/transaction-loop.js'), endpoints.brokers.join(','), topic, '40'], {
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'debug' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { committed: number; sent: number; retriable: Record<string, number> };
    expect(result).toMatchObject({ committed: 40, sent: 5 });
    const lines = stderr
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as LogLine);
    // pino levels: 40 warn, 50 error.
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    // Each counted answer is one kafkajs "Response ..." entry that was demoted to debug.
    const demotedAnswers = lines.filter((l) => l.level === 20 && l.namespace === 'Connection' && l.retriable && l.msg?.startsWith('Response '));
    const byType: Record<string, number> = {};
    for (const l of demotedAnswers) byType[l.retriable!] = (byType[l.retriable!] ?? 0) + 1;
    expect(result.retriable).toEqual(byType);
    // What a back-to-back loop meets, for the record (depends on timing, so not asserted).
    console.log(`transactional loop: retriable answers ${JSON.stringify(result.retriable)}`);
  });

  it('an idempotent producer replaces itself after a send kafkajs gave up on, and the next send goes through', async () => {
    const topic = `clientfix.replace.${uniqueSuffix()}`;
    const kafka = createKafka({ clientId: 'clientfix-replace', brokers: endpoints.brokers });
    const admin = kafka.admin();
    await admin.connect();
    // A record over the topic's max.message.bytes: a non-retriable answer (MESSAGE_TOO_LARGE).
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }], waitForLeaders: true });
    const producer = idempotentProducer(kafka, { name: 'replace-test' });
    await producer.connect();
    try {
      await producer.send({ topic, messages: [{ key: 'a', value: 'first' }] });
      const first = producer.current;
      const failed = await producer.send({ topic, messages: [{ key: 'b', value: 'x'.repeat(10000) }] }).then(() => undefined, (err: unknown) => err);
      expect(kafkaErrorType(failed)).toBe('MESSAGE_TOO_LARGE');
      expect(producer.replacements).toBe(0);
      await producer.send({ topic, messages: [{ key: 'c', value: 'after' }] });
      expect(producer.replacements).toBe(1);
      expect(producer.current).not.toBe(first);
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.map((o) => Number(o.high))).toEqual([2]);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('TopicProducer publishes to an existing topic through its idempotent producer', async () => {
    const topic = `clientfix.topic-producer.${uniqueSuffix()}`;
    const kafka = createKafka({ clientId: 'clientfix-topic-producer', brokers: endpoints.brokers });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
    const producer = new TopicProducer({ ...endpoints, kafka, topic, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    try {
      await producer.connect();
      const g = new TransactionGenerator({ seed: 12, startTime: 0 });
      await producer.send(Array.from({ length: 30 }, () => g.next().tx));
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(30);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('TopicProducer fails fast with UnknownTopicError for a topic that does not exist (its sends retry without limit)', async () => {
    const producer = new TopicProducer({ ...endpoints, topic: `clientfix.missing.${uniqueSuffix()}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    await expect(producer.connect()).rejects.toBeInstanceOf(UnknownTopicError);
    await producer.disconnect();
  });
});

describe('ensureTopics on the real broker', () => {
  it('two processes creating the same topics at once both return only once every partition is served (the run + gateway start race)', async () => {
    const suffix = uniqueSuffix();
    const topics = Array.from({ length: 4 }, (_, i) => ({ name: `race-${i}.${suffix}`, partitions: 6, schema: 'prediction' }));
    // Two clients, as two processes would have: each lists, finds some or all missing, creates.
    const a = createKafka({ clientId: 'race-a', brokers: endpoints.brokers });
    const b = createKafka({ clientId: 'race-b', brokers: endpoints.brokers });
    const reports = await Promise.all([ensureTopics(a, topics), ensureTopics(b, topics)]);
    expect(reports.flatMap((r) => [...r.created, ...r.existing]).sort()).toEqual([...topics, ...topics].map((t) => t.name).sort());
    // Served at once: every partition has a leader and answers an offsets request.
    const admin = b.admin();
    await admin.connect();
    try {
      for (const t of topics) {
        const offsets = await admin.fetchTopicOffsets(t.name);
        expect(offsets).toHaveLength(6);
      }
      await admin.deleteTopics({ topics: topics.map((t) => t.name) });
    } finally {
      await admin.disconnect();
    }
  });
});
