import { KafkaJSProtocolError } from 'kafkajs';
import { isNotServedYet, TopicNotServedError, whileNotServed } from '../../src/kafka/admin';

/** The error kafkajs raises for a broker's error code (as its protocol layer builds it). */
function brokerError(type: string, code: number): Error {
  return new KafkaJSProtocolError({ type, code, retriable: true, message: `broker says ${type}` } as never);
}

describe('whileNotServed (admin requests about a topic another process has just created)', () => {
  it('asks again while the broker answers that the topic is unknown or leaderless, then returns the answer', async () => {
    const answers = [brokerError('UNKNOWN_TOPIC_OR_PARTITION', 3), brokerError('LEADER_NOT_AVAILABLE', 5)];
    let calls = 0;
    const got = await whileNotServed('metadata of t', async () => {
      calls++;
      const next = answers.shift();
      if (next) throw next;
      return 'served';
    }, 5000, 5);
    expect(got).toBe('served');
    expect(calls).toBe(3);
  });

  it('throws any other error at once, unchanged', async () => {
    const denied = brokerError('TOPIC_AUTHORIZATION_FAILED', 29);
    let calls = 0;
    await expect(whileNotServed('metadata of t', async () => {
      calls++;
      throw denied;
    }, 5000, 5)).rejects.toBe(denied);
    expect(calls).toBe(1);
    expect(isNotServedYet(denied)).toBe(false);
    expect(isNotServedYet(new Error('plain'))).toBe(false);
  });

  it('gives up after its time with a named error that says what it waited for and keeps the broker\'s answer', async () => {
    const unknown = brokerError('UNKNOWN_TOPIC_OR_PARTITION', 3);
    const started = Date.now();
    const err = await whileNotServed('max.message.bytes of orders', async () => {
      throw unknown;
    }, 60, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TopicNotServedError);
    expect((err as Error).message).toMatch(/^max\.message\.bytes of orders: not served by the broker within 60 ms: broker says UNKNOWN_TOPIC_OR_PARTITION/);
    expect((err as Error & { cause?: unknown }).cause).toBe(unknown);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
  });
});
