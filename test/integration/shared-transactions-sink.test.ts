/**
 * SharedTransactions (src/engine/shared-transactions.ts) against the real broker and a real group
 * member: batches of several partitions commit in one transaction with the member's generation;
 * a record the broker refuses is dead-lettered without holding back the other lane's batch; and a
 * stale generation is refused (ProducerFencedError) with nothing of it visible or committed. One
 * sink shared by two consumer groups (a repartition hop and the chain behind it, in one process)
 * commits both groups' offsets in one transaction, writes staged records in staging order, and
 * when one group's generation is stale commits the other group's batches all the same. Its
 * TxnOffsetCommits go out while the Produce is in flight (fewer serial round trips), as the
 * broker's requests show, and commit what the one-after-the-other order commits. Staged records
 * are sent into an open transaction as they come (commit.sendAsProcessed): on the wire before the cut,
 * readable uncommitted but not committed until it, whose requests are then only the offsets and
 * EndTxn; an open transaction holding records of no cut batch (a lane that closed after staging)
 * is aborted, and records staged after the last cut are aborted at close.
 */
import { Kafka as KafkaClient, logLevel, type Consumer, type Kafka } from 'kafkajs';
import { ProducerFencedError, type CommitBatch } from '../../src/engine/commit-sink';
import { SHARED_PRODUCERS, SharedTransactions } from '../../src/engine/shared-transactions';
import { createKafka } from '../../src/kafka/client';
import { RecordRejection } from '../../src/kafka/dead-letter';
import { fetchStableOffset, groupMetadataOf, type ConsumerGroupMetadata } from '../../src/kafka/eos-v2';
import { createLogger } from '../../src/util/logger';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { sendRaw } from '../helpers/send-raw';

const endpoints = testEndpoints();

function batch(topic: string, partition: number, output: string, values: string[], nextOffset: string): CommitBatch {
  return {
    topic,
    partition,
    nextOffset,
    records: values.map((v) => ({ outputs: [{ topic: output, message: { key: v.slice(0, 20), value: v } }], toDeadLetter: (r: RecordRejection) => ({ key: v.slice(0, 20), value: `${r.kind}` }) })),
  };
}

/** The values of `topic` readable now (committed only, or also uncommitted and aborted), waiting up to `waitMs` for `expected`. */
async function readValues(kafka: Kafka, topic: string, expected: number, opts: { readUncommitted?: boolean; waitMs?: number } = {}): Promise<string[]> {
  const readUncommitted = opts.readUncommitted ?? false;
  const consumer = kafka.consumer({ groupId: `verify-${topic}-${Date.now()}-${readUncommitted}`, readUncommitted, maxWaitTimeInMs: 100 });
  const values: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
  const deadline = Date.now() + (opts.waitMs ?? 15000);
  while (values.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, opts.waitMs === undefined ? 1500 : 1000));
  await consumer.disconnect();
  return values;
}

function readCommitted(kafka: Kafka, topic: string, expected: number): Promise<string[]> {
  return readValues(kafka, topic, expected);
}

/** A client whose producers log every request and response they send (kafkajs debug lines: "Request Produce(…)"), in order. */
function wireLogged(clientId: string): { kafka: Kafka; wire: string[] } {
  const wire: string[] = [];
  const kafka = new KafkaClient({
    clientId,
    brokers: endpoints.brokers,
    logLevel: logLevel.DEBUG,
    logCreator: () => (entry) => {
      const m = /^(Request|Response) (\w+)\(/.exec(entry.log.message);
      if (m) wire.push(`${m[1]} ${m[2]}`);
    },
  });
  return { kafka, wire };
}

async function member(kafka: Kafka, groupId: string, topic: string, joins: ConsumerGroupMetadata[]): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => void joins.push(groupMetadataOf(payload)!));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  // The test commits for it: this member only holds the group membership (it is paused).
  await consumer.run({ autoCommit: false, eachMessage: async () => undefined });
  return consumer;
}

/** Topics of a two-group test (input of 2 partitions, output, dead letters), created, and its two group names. */
async function twoGroupFixture(name: string) {
  const suffix = uniqueSuffix();
  const [input, output, dlq] = [`${name}-in.${suffix}`, `${name}-out.${suffix}`, `${name}-dlq.${suffix}`];
  const [g1, g2] = [`${name}-g1-${suffix}`, `${name}-g2-${suffix}`];
  const kafka = createKafka({ clientId: `${name}-test`, brokers: endpoints.brokers });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: input, numPartitions: 2 }, { topic: output, numPartitions: 1 }, { topic: dlq, numPartitions: 1 }] });
  return { suffix, input, output, dlq, g1, g2, kafka, admin };
}

/** One paused member of each group on the input (they hold the memberships; the test commits for them). */
async function pausedMembers(kafka: Kafka, groups: [string, string], input: string) {
  const joins1: ConsumerGroupMetadata[] = [];
  const joins2: ConsumerGroupMetadata[] = [];
  const m1 = await member(kafka, groups[0], input, joins1);
  const m2 = await member(kafka, groups[1], input, joins2);
  m1.pause([{ topic: input }]);
  m2.pause([{ topic: input }]);
  return { m1, m2, joins1, joins2 };
}

describe('SharedTransactions against the real broker', () => {
  it('commits several partitions in one transaction, dead-letters a refused record alone, and refuses a stale generation', async () => {
    const suffix = uniqueSuffix();
    const input = `shared-in.${suffix}`;
    const output = `shared-out.${suffix}`;
    const dlq = `shared-dlq.${suffix}`;
    const groupId = `shared-group-${suffix}`;
    const kafka = createKafka({ clientId: 'shared-sink-test', brokers: endpoints.brokers });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: input, numPartitions: 3 },
        // Small on purpose: the sink believes 1 MB (limits below), the broker refuses the large record.
        { topic: output, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '3000' }] },
        { topic: dlq, numPartitions: 1 },
      ],
    });
    // Input records for the offsets committed below (an offset past the log end would be reset).
    await sendRaw(kafka, ...[[0, 5], [1, 3], [2, 1]].map(([partition, n]) => ({ topic: input, messages: Array.from({ length: n }, (_, i) => ({ partition, value: `in-${i}` })) })));
    const joinsA: ConsumerGroupMetadata[] = [];
    const joinsB: ConsumerGroupMetadata[] = [];
    const a = await member(kafka, groupId, input, joinsA);
    a.pause([{ topic: input }]);
    let b: Consumer | undefined;
    const sink = new SharedTransactions({ kafka, groupId, deadLetterTopic: dlq, limits: { maxMessageBytes: () => 1024 * 1024 }, log: createLogger('shared-sink-test'), instanceId: `t${suffix}` });
    try {
      await waitFor(() => joinsA.length > 0, 30000, () => 'member never joined');
      const gen = sink.join(joinsA[joinsA.length - 1]);
      await Promise.all([sink.commit(batch(input, 0, output, ['p0-a', 'p0-b'], '2'), gen), sink.commit(batch(input, 1, output, ['p1-a'], '1'), gen)]);
      expect(sink.counters).toMatchObject({ batches: 2, generationRefusals: 0 });
      expect(sink.counters.transactions).toBeLessThanOrEqual(2);
      expect(await fetchStableOffset(admin, groupId, input, 0)).toBe('2');
      expect(await fetchStableOffset(admin, groupId, input, 1)).toBe('1');

      // One lane's record is refused by the broker (MESSAGE_TOO_LARGE) in a transaction shared with
      // another lane (partition 2's batch occupies the first transaction, so these two wait and share
      // the next): the record becomes a dead letter, the other lane's batch still commits.
      const big = 'x'.repeat(5000);
      const before = sink.counters.transactions;
      await Promise.all([sink.commit(batch(input, 2, output, ['p2-a'], '1'), gen), sink.commit(batch(input, 0, output, ['p0-c', big], '4'), gen), sink.commit(batch(input, 1, output, ['p1-b'], '2'), gen)]);
      expect(sink.counters.transactions - before).toBe(3); // p2 alone, then p0 and p1 each alone after the shared one was refused
      expect(await fetchStableOffset(admin, groupId, input, 0)).toBe('4');
      expect(await fetchStableOffset(admin, groupId, input, 1)).toBe('2');

      // A second member joins: the group moves to a new generation; the old one's commits are refused.
      b = await member(kafka, groupId, input, joinsB);
      await waitFor(() => joinsB.length > 0 && joinsA.some((m) => m.generationId > gen.metadata.generationId), 30000, () => 'no rebalance');
      await expect(sink.commit(batch(input, 0, output, ['zombie'], '5'), gen)).rejects.toBeInstanceOf(ProducerFencedError);
      expect(sink.counters.generationRefusals).toBe(1);
      await expect(sink.commit(batch(input, 1, output, ['zombie-2'], '3'), gen)).rejects.toBeInstanceOf(ProducerFencedError); // refused at once
      expect(await fetchStableOffset(admin, groupId, input, 0)).toBe('4');

      expect((await readCommitted(kafka, output, 6)).sort()).toEqual(['p0-a', 'p0-b', 'p0-c', 'p1-a', 'p1-b', 'p2-a']);
      expect(await readCommitted(kafka, dlq, 1)).toEqual(['TOO_LARGE']);
    } finally {
      await sink.close();
      await Promise.allSettled([a.disconnect(), b?.disconnect(), admin.disconnect()]);
    }
  });

  it('two groups in one sink: one transaction for both, records in staging order, a stale group refused while the other commits', async () => {
    const { suffix, input, output, dlq, g1, g2, kafka, admin } = await twoGroupFixture('shared2');
    await sendRaw(kafka, ...[0, 1].map((partition) => ({ topic: input, messages: Array.from({ length: 6 }, (_, i) => ({ partition, value: `in-${i}` })) })));
    const { m1, m2, joins1, joins2 } = await pausedMembers(kafka, [g1, g2], input);
    let m2b: Consumer | undefined;
    const sink = new SharedTransactions({ kafka, groupId: g1, idPrefix: g1, deadLetterTopic: dlq, limits: { maxMessageBytes: () => 1024 * 1024 }, log: createLogger('shared-sink-test'), instanceId: `t${suffix}` });
    const stable = (group: string) => (topic: string, partition: number) => fetchStableOffset(admin, group, topic, partition);
    const h1 = sink.group(g1, { readStable: stable(g1) });
    const h2 = sink.group(g2, { readStable: stable(g2) });
    try {
      await waitFor(() => joins1.length > 0 && joins2.length > 0, 30000, () => 'members never joined');
      const gen1 = h1.join(joins1[joins1.length - 1]);
      let gen2 = h2.join(joins2[joins2.length - 1]);

      // Both groups' batches, handed in in the same turn: one transaction, both offsets.
      const a = batch(input, 0, output, ['a1', 'a3'], '2');
      const b = batch(input, 1, output, ['b2', 'b4'], '2');
      // Staged (processing order across the groups' lanes): a1, b2, a3, b4 — not batch order.
      sink.stage([a.records[0]]);
      sink.stage([b.records[0]]);
      sink.stage([a.records[1]]);
      sink.stage([b.records[1]]);
      await Promise.all([sink.commit(a, gen1), sink.commit(b, gen2)]);
      expect(sink.counters).toMatchObject({ transactions: 1, batches: 2 });
      expect(await fetchStableOffset(admin, g1, input, 0)).toBe('2');
      expect(await fetchStableOffset(admin, g2, input, 1)).toBe('2');
      expect(await readCommitted(kafka, output, 4)).toEqual(['a1', 'b2', 'a3', 'b4']);

      // Group 2 rebalances behind this member's back: its batch is refused, group 1's commits.
      m2b = await member(kafka, g2, input, joins2);
      await waitFor(() => joins2.some((m) => m.generationId > gen2.metadata.generationId && m.memberId === joins2[0].memberId), 30000, () => 'no rebalance of group 2');
      const [ok, stale] = await Promise.allSettled([sink.commit(batch(input, 0, output, ['a5'], '4'), gen1), sink.commit(batch(input, 1, output, ['zombie'], '4'), gen2)]);
      expect(ok.status).toBe('fulfilled');
      expect(stale.status === 'rejected' && stale.reason).toBeInstanceOf(ProducerFencedError);
      expect(sink.counters.generationRefusals).toBe(1);
      expect(await fetchStableOffset(admin, g1, input, 0)).toBe('4');
      expect(await fetchStableOffset(admin, g2, input, 1)).toBe('2');
      gen2 = h2.join(joins2[joins2.length - 1]); // the member's new generation commits again
      await sink.commit(batch(input, 1, output, ['b6'], '3'), gen2);
      expect(await fetchStableOffset(admin, g2, input, 1)).toBe('3');
      expect(await readCommitted(kafka, output, 6)).toEqual(['a1', 'b2', 'a3', 'b4', 'a5', 'b6']);
    } finally {
      await sink.close();
      await Promise.allSettled([m1.disconnect(), m2.disconnect(), m2b?.disconnect(), admin.disconnect()]);
    }
  });

  it("overlapped offsets: AddOffsetsToTxn per group, the outputs' AddPartitionsToTxn, then Produce and both TxnOffsetCommits at once; the same commits as one request after the other", async () => {
    const { suffix, input, output, dlq, g1, g2, kafka, admin } = await twoGroupFixture('shared3');
    // The sink's producers log every request and response.
    const { kafka: logged, wire } = wireLogged('shared-sink-test-3-wire');
    const { m1, m2, joins1, joins2 } = await pausedMembers(kafka, [g1, g2], input);
    try {
      await waitFor(() => joins1.length > 0 && joins2.length > 0, 30000, () => 'members never joined');
      const expected: string[] = [];
      let next = 0;
      for (const overlapOffsets of [true, false]) {
        const sink = new SharedTransactions({ kafka: logged, groupId: g1, idPrefix: `${g1}-${overlapOffsets}`, deadLetterTopic: dlq, limits: { maxMessageBytes: () => 1024 * 1024 }, log: createLogger('shared-sink-test'), instanceId: `t${suffix}`, overlapOffsets });
        const stable = (group: string) => (topic: string, partition: number) => fetchStableOffset(admin, group, topic, partition);
        const gen1 = sink.group(g1, { readStable: stable(g1) }).join(joins1[joins1.length - 1]);
        const gen2 = sink.group(g2, { readStable: stable(g2) }).join(joins2[joins2.length - 1]);
        try {
          // Producers take turns (SHARED_PRODUCERS); each one's first transaction also looks up
          // its coordinators. The last round, on a producer used before, is measured.
          for (let round = 0; round <= SHARED_PRODUCERS; round++) {
            const [va, vb] = [`a${next}`, `b${next}`];
            next += 1;
            expected.push(va, vb);
            wire.length = 0;
            await Promise.all([sink.commit(batch(input, 0, output, [va], String(next)), gen1), sink.commit(batch(input, 1, output, [vb], String(next)), gen2)]);
            expect(await fetchStableOffset(admin, g1, input, 0)).toBe(String(next));
            expect(await fetchStableOffset(admin, g2, input, 1)).toBe(String(next));
          }
        } finally {
          await sink.close();
        }
        const at = (what: string) => wire.indexOf(what);
        const all = (what: string) => wire.flatMap((w, i) => (w === what ? [i] : []));
        expect(all('Request TxnOffsetCommit')).toHaveLength(2);
        expect(all('Request AddOffsetsToTxn').length).toBeGreaterThanOrEqual(2);
        if (overlapOffsets) {
          // Offsets partitions first, then the outputs' partitions; both TxnOffsetCommits are on the
          // wire before the Produce is answered.
          expect(Math.max(...all('Response AddOffsetsToTxn'))).toBeLessThan(at('Request AddPartitionsToTxn'));
          expect(Math.max(...all('Request TxnOffsetCommit'))).toBeLessThan(at('Response Produce'));
          expect(Math.min(...all('Request TxnOffsetCommit'))).toBeGreaterThan(at('Response AddPartitionsToTxn'));
        } else {
          expect(Math.min(...all('Request TxnOffsetCommit'))).toBeGreaterThan(at('Response Produce'));
          expect(Math.min(...all('Request AddOffsetsToTxn'))).toBeGreaterThan(at('Response Produce'));
        }
        expect(Math.max(...all('Response TxnOffsetCommit'))).toBeLessThan(at('Request EndTxn'));
      }
      expect(await readCommitted(kafka, output, expected.length)).toEqual(expected);
    } finally {
      await Promise.allSettled([m1.disconnect(), m2.disconnect(), admin.disconnect()]);
    }
  });

  it('sent as processed: staged records are produced before the cut, the commit adds only offsets and EndTxn; an open transaction holding an uncut lane\'s records is aborted, as is one left at close', async () => {
    const { suffix, input, output, dlq, g1, g2, kafka, admin } = await twoGroupFixture('shared4');
    const { kafka: logged, wire } = wireLogged('shared-sink-test-4-wire');
    const { m1, m2, joins1, joins2 } = await pausedMembers(kafka, [g1, g2], input);
    const sink = new SharedTransactions({ kafka: logged, groupId: g1, idPrefix: g1, deadLetterTopic: dlq, limits: { maxMessageBytes: () => 1024 * 1024 }, log: createLogger('shared-sink-test'), instanceId: `t${suffix}`, commit: { intervalMs: 10, maxRecords: 2000, sendAsProcessed: true } });
    const stable = (group: string) => (topic: string, partition: number) => fetchStableOffset(admin, group, topic, partition);
    const h1 = sink.group(g1, { readStable: stable(g1) });
    sink.group(g2, { readStable: stable(g2) });
    const readNow = (readUncommitted: boolean, expected: number) => readValues(kafka, output, expected, { readUncommitted, waitMs: 5000 });
    try {
      await waitFor(() => joins1.length > 0 && joins2.length > 0, 30000, () => 'members never joined');
      const gen1 = h1.join(joins1[joins1.length - 1]);
      // Warm every producer of the pool (each one's first transaction also finds its coordinators).
      let next = 0;
      for (let round = 0; round < SHARED_PRODUCERS; round++) {
        const b = batch(input, 0, output, [`w${round}`], String(++next));
        sink.stage(b.records);
        await sink.commit(b, gen1);
      }
      expect(sink.counters.eagerTransactions).toBe(SHARED_PRODUCERS);

      // Staged, not yet cut: on the wire and in the log, but not committed.
      const staged = batch(input, 0, output, ['s1', 's2'], String(++next));
      wire.length = 0;
      sink.stage(staged.records);
      await waitFor(() => wire.includes('Response Produce'), 10000, () => `no Produce before the cut: ${wire.join(', ')}`);
      expect(await readNow(true, SHARED_PRODUCERS + 2)).toEqual(expect.arrayContaining(['s1', 's2']));
      expect(await readNow(false, SHARED_PRODUCERS + 2)).not.toContain('s1');
      // The cut: the transaction already holds its records; committing it is the offsets and EndTxn.
      wire.length = 0;
      await sink.commit(staged, gen1);
      expect(wire.filter((w) => w.startsWith('Request'))).toEqual(['Request TxnOffsetCommit', 'Request EndTxn']);
      expect(sink.counters).toMatchObject({ eagerTransactions: SHARED_PRODUCERS + 1, eagerFallbacks: 0 });
      expect(await fetchStableOffset(admin, g1, input, 0)).toBe(String(next));

      // A lane staged records and closed before the cut (its partition revoked): the open
      // transaction holds records of no batch, so it is aborted and the batch cut written at commit.
      const orphan = batch(input, 1, output, ['orphan'], '1');
      const kept = batch(input, 0, output, ['k1'], String(++next));
      sink.stage(orphan.records);
      sink.stage(kept.records);
      await sink.commit(kept, gen1);
      expect(sink.counters.eagerFallbacks).toBe(1);
      expect(await fetchStableOffset(admin, g1, input, 0)).toBe(String(next));
      expect(await fetchStableOffset(admin, g1, input, 1)).toBeNull();

      // And sending as processed resumes with the next records.
      const after = batch(input, 0, output, ['a1'], String(++next));
      sink.stage(after.records);
      await sink.commit(after, gen1);
      expect(sink.counters).toMatchObject({ eagerTransactions: SHARED_PRODUCERS + 2, eagerFallbacks: 1 });

      // Records staged after the last cut are never committed: close aborts their transaction.
      sink.stage(batch(input, 0, output, ['left-open'], String(next + 1)).records);
      await waitFor(() => wire.includes('Response Produce'), 10000, () => 'the last staged records were never sent');
      await sink.close();
      const committed = await readNow(false, SHARED_PRODUCERS + 4);
      expect(committed).toEqual([...Array.from({ length: SHARED_PRODUCERS }, (_, i) => `w${i}`), 's1', 's2', 'k1', 'a1']);
      expect(await readNow(true, SHARED_PRODUCERS + 6)).toEqual(expect.arrayContaining(['orphan', 'left-open']));
    } finally {
      await sink.close();
      await Promise.allSettled([m1.disconnect(), m2.disconnect(), admin.disconnect()]);
    }
  });
});
