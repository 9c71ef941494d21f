import type { Transaction } from '../client/generated/avro-types';
import { TopicProducer } from '../client/topic-producer';
import { TransactionGenerator } from './generator';

export interface ProduceDemoOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  count: number;
  /** Events per second; 0 = as fast as possible. */
  rate: number;
  seed: number;
  /** Keep retrying a failed send (broker restart, leader change) for this long; default 60 s. */
  retryForMs?: number;
  /** Called with each produced event and its planted ground truth. */
  onEvent?: (tx: Transaction, isFraud: boolean) => void;
}

/** Publishes generated transactions at a steady rate, in small batches (one send per 20 ms tick). */
export async function produceDemoEvents(options: ProduceDemoOptions): Promise<{ produced: number; seconds: number }> {
  const producer = new TopicProducer({
    brokers: options.brokers,
    schemaRegistryUrl: options.schemaRegistryUrl,
    topic: options.topic,
    schema: 'transaction',
    key: (tx) => tx.transactionId,
    clientId: 'tributary-demo-producer',
    // The demo and the fault tests start producing while the pipeline starts and creates the topics.
    waitForTopicMs: 60000,
  });
  // The generator's own clock (the spec's start date), like the training data: event-time windows
  // and batch-feature staleness then see the distributions the model was trained on. Latency is
  // measured from Kafka timestamps, not event times.
  const generator = new TransactionGenerator({ seed: options.seed });
  await producer.connect();
  const started = Date.now();
  const tickMs = 20;
  const perTick = options.rate > 0 ? Math.max(1, Math.round((options.rate * tickMs) / 1000)) : 500;
  let produced = 0;
  try {
    while (produced < options.count) {
      const n = Math.min(perTick, options.count - produced);
      const batch: Transaction[] = [];
      for (let i = 0; i < n; i++) {
        const { tx, isFraud } = generator.next();
        batch.push(tx);
        options.onEvent?.(tx, isFraud);
      }
      await sendWithRetry(() => producer.send(batch), options.retryForMs ?? 60000);
      produced += n;
      if (options.rate > 0) {
        const due = started + (produced / options.rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  } finally {
    await producer.disconnect();
  }
  return { produced, seconds: (Date.now() - started) / 1000 };
}

/**
 * Retries a send with backoff across broker outages longer than kafkajs' own retries. A retried
 * send may duplicate records on the input topic (the broker may have stored the failed attempt);
 * exactly-once checks therefore compare against what the input topic actually holds.
 */
async function sendWithRetry(send: () => Promise<unknown>, retryForMs: number): Promise<void> {
  const deadline = Date.now() + retryForMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
    try {
      await send();
      return;
    } catch (err) {
      if (Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
