import type { Feedback } from '../../src/client/generated/avro-types';
import { TopicProducer } from '../../src/client/topic-producer';
import { MS_PER_DAY, startOfUtcDay } from '../../src/util/time';
import { TransactionGenerator } from './generator';
import { fraudSchemas, type Transaction } from './schemas';

export interface ProduceDemoOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  count: number;
  /** Events per second; 0 = as fast as possible. */
  rate: number;
  seed: number;
  /**
   * ms since epoch of the generator's clock at the first event (event dates follow it). Default:
   * now, so every run gets fresh event times. The generator's fixed spec date (the training data's)
   * is `spec.defaultStartTime`.
   */
  startTime?: number;
  /**
   * Also publish each event's planted label (schema feedback, keyed like the event) to this topic
   * once the events are sent, as labels that arrive after the predictions.
   */
  feedbackTopic?: string;
  /** Keep retrying a failed send (broker restart, leader change) for this long; default 60 s. */
  retryForMs?: number;
  /** Called with each produced event and its planted ground truth. */
  onEvent?: (tx: Transaction, isFraud: boolean) => void;
}

export { startOfUtcDay };

/**
 * When the batch feature files are dated for a run whose generator clock starts at `startTime`:
 * the UTC midnight before its first day, as in training (the batch job ran the day before the
 * stream), so the rows are exactly as fresh as the model saw them.
 */
export function batchAsOf(startTime: number): number {
  return startOfUtcDay(startTime) - MS_PER_DAY;
}

/** Publishes generated transactions at a steady rate, in small batches (one send per 20 ms tick). */
export async function produceDemoEvents(options: ProduceDemoOptions): Promise<{ produced: number; seconds: number; labels: number; startTime: number }> {
  // Keyed by the transaction (labels join predictions by it), partitioned by the card: the
  // streaming features' entity, so each card's events are applied in one order, which a backfill
  // of the same range replays identically.
  const producer = new TopicProducer({
    brokers: options.brokers,
    schemaRegistryUrl: options.schemaRegistryUrl,
    topic: options.topic,
    schema: 'transaction', schemas: fraudSchemas,
    key: (tx) => tx.transactionId,
    partitionBy: (tx) => tx.cardId,
    clientId: 'tributary-demo-producer',
    // The demo and the fault tests start producing while the pipeline starts and creates the topics.
    waitForTopicMs: 60000,
  });
  // The generator's clock starts at the run's time: event dates are today's, per-card windows of
  // one run never mix with an earlier run's days. Time of day still follows the spec's hour
  // profiles, as in training. Latency is measured from Kafka timestamps, not event times.
  const startTime = options.startTime ?? Date.now();
  const generator = new TransactionGenerator({ seed: options.seed, startTime });
  const labels: Feedback[] = [];
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
        if (options.feedbackTopic) labels.push({ key: tx.transactionId, label: isFraud, source: 'generator', labelTime: 0 });
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
  const seconds = (Date.now() - started) / 1000;
  if (options.feedbackTopic) await publishLabels(options, labels);
  return { produced, seconds, labels: labels.length, startTime };
}

/** The planted labels, as a feedback system would send them: after the events, label time = now. */
async function publishLabels(options: ProduceDemoOptions, labels: Feedback[]): Promise<void> {
  const producer = new TopicProducer({
    brokers: options.brokers,
    schemaRegistryUrl: options.schemaRegistryUrl,
    topic: options.feedbackTopic!,
    schema: 'feedback',
    key: (f) => f.key,
    clientId: 'tributary-demo-feedback',
  });
  await producer.connect();
  try {
    const labelTime = Date.now();
    for (let i = 0; i < labels.length; i += 500) {
      const chunk = labels.slice(i, i + 500).map((l) => ({ ...l, labelTime }));
      await sendWithRetry(() => producer.send(chunk), options.retryForMs ?? 60000);
    }
  } finally {
    await producer.disconnect();
  }
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
