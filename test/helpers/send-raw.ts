import type { Kafka, ProducerRecord } from 'kafkajs';
import { idempotentProducer } from '../../src/kafka/client';

/**
 * Sends records as they are (bytes not through the typed client: malformed events, opaque values),
 * one request after another in the given order, through a fresh idempotent producer that is
 * disconnected afterwards, whatever happened. Idempotent because a plain kafkajs producer resends a
 * whole request when one partition of a just-created topic answers with a retriable error, and the
 * partitions already written then hold the records twice (df95aee).
 */
export async function sendRaw(kafka: Kafka, ...records: ProducerRecord[]): Promise<void> {
  const producer = idempotentProducer(kafka);
  await producer.connect();
  try {
    for (const record of records) await producer.send(record);
  } finally {
    await producer.disconnect();
  }
}
