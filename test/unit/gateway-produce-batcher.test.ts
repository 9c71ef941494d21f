import type { Message, RecordMetadata } from 'kafkajs';
import { ProduceBatcher } from '../../src/gateway/produce-batcher';

describe('gateway produce batcher', () => {
  it('sends the first record at once, batches those arriving during a send, and tells each record its offset', async () => {
    const sends: Message[][] = [];
    const next = new Map<number, number>([[0, 10], [1, 100]]);
    let release: () => void = () => undefined;
    const batcher = new ProduceBatcher(async (messages) => {
      sends.push(messages);
      if (sends.length === 1) await new Promise<void>((r) => (release = r));
      const meta: RecordMetadata[] = [];
      for (const p of new Set(messages.map((m) => m.partition!))) {
        meta.push({ topicName: 't', partition: p, errorCode: 0, baseOffset: String(next.get(p)) });
        next.set(p, next.get(p)! + messages.filter((m) => m.partition === p).length);
      }
      return meta;
    });
    const first = batcher.produce({ value: 'a', partition: 0 });
    const later = [batcher.produce({ value: 'b', partition: 1 }), batcher.produce({ value: 'c', partition: 0 }), batcher.produce({ value: 'd', partition: 1 })];
    expect(sends).toHaveLength(1);
    release();
    expect(await first).toEqual({ partition: 0, offset: '10' });
    expect(await Promise.all(later)).toEqual([{ partition: 1, offset: '100' }, { partition: 0, offset: '11' }, { partition: 1, offset: '101' }]);
    expect(sends.map((s) => s.length)).toEqual([1, 3]);
  });

  it('fails every record of a failed send, and the next send goes on', async () => {
    let fail = true;
    const batcher = new ProduceBatcher(async (messages) => {
      if (fail) throw new Error('broker away');
      return [{ topicName: 't', partition: messages[0].partition!, errorCode: 0, baseOffset: '5' }];
    });
    await expect(batcher.produce({ value: 'a', partition: 2 })).rejects.toThrow('broker away');
    fail = false;
    await expect(batcher.produce({ value: 'b', partition: 2 })).resolves.toEqual({ partition: 2, offset: '5' });
  });
});
