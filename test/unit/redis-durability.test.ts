import { stateDurability } from '../../src/features/streaming';
import { redisKeySlot } from '../../src/util/redis-slot';
import { activitySet } from '../helpers/streaming-sets';

describe('Redis Cluster helpers of the streaming state', () => {
  it('computes key slots as the Cluster specification defines them (CRC16 of the hash tag mod 16384)', () => {
    // Values from the Redis Cluster specification and CLUSTER KEYSLOT (test/integration/redis-durability.test.ts compares many more with a real Cluster).
    expect(redisKeySlot('123456789')).toBe(0x31c3);
    expect(redisKeySlot('foo')).toBe(12182);
    expect(redisKeySlot('{user1000}.following')).toBe(redisKeySlot('user1000'));
    expect(redisKeySlot('foo{}{bar}')).toBe(redisKeySlot('foo{}{bar}'.replace(/x/g, ''))); // empty tag: the whole key
    expect(redisKeySlot('foo{}{bar}')).not.toBe(redisKeySlot('bar'));
    expect(redisKeySlot('foo{{bar}}zap')).toBe(redisKeySlot('{bar'));
  });

  it('a stage\'s durability is its strictest set\'s; none when no set asks', () => {
    const set = (durability?: { replicas: number; timeoutMs?: number }) => ({ ...activitySet(0), config: { ...activitySet(0).config, durability } });
    expect(stateDurability([set(), set()])).toBeUndefined();
    expect(stateDurability([set({ replicas: 1 })])).toEqual({ replicas: 1, timeoutMs: 100 });
    expect(stateDurability([set({ replicas: 1, timeoutMs: 500 }), set(), set({ replicas: 2, timeoutMs: 50 })])).toEqual({ replicas: 2, timeoutMs: 500 });
  });
});
