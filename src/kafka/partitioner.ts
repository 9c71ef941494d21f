/**
 * The Java client's default partitioning (murmur2 of the key, positive, modulo the partition
 * count; round robin over available partitions for a null key; an explicit partition wins), with
 * the same choices as kafkajs' `Partitioners.DefaultPartitioner` — placement must never change,
 * since a repartition hop, the gateway and `TopicProducer.partitionOf` all rely on it — but in
 * 32-bit integer arithmetic. kafkajs hashes through its 64-bit `Long` (BigInt) type and filters
 * the partition list per message; in a live profile of the demo topology that was ~2 % of the
 * pipeline's busy main thread. The result is identical: every step of murmur2 keeps only the low
 * 32 bits, which `Math.imul` computes exactly (test/unit/partitioner.test.ts compares both).
 */
import { randomBytes } from 'node:crypto';
import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** murmur2 over bytes, as Kafka's `Utils.murmur2` (signed 32-bit result). */
function murmur2Bytes(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The last 1-3 bytes (Java's switch with fall-through, written without one).
  const tail = length & ~3;
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= data[tail + 2] << 16;
    if (rest >= 2) h ^= data[tail + 1] << 8;
    h ^= data[tail];
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** An ASCII string's bytes are its char codes: hashed from here without encoding it into a buffer. */
const ASCII = new Uint8Array(256);

/** murmur2 of a key as kafkajs sees it: a Buffer as is, anything else as the UTF-8 of `String(key)`. */
export function murmur2(key: Buffer | Uint8Array | string | number): number {
  if (key instanceof Uint8Array) return murmur2Bytes(key);
  const s = typeof key === 'string' ? key : String(key);
  if (s.length <= ASCII.length) {
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      ASCII[i] = c;
    }
    if (ascii) return murmur2Bytes(ASCII.subarray(0, s.length));
  }
  return murmur2Bytes(Buffer.from(s, 'utf8'));
}

const toPositive = (x: number): number => x & 0x7fffffff;

/** A partitioner factory for kafkajs' `createPartitioner`, choosing as its DefaultPartitioner does. */
export const JavaCompatiblePartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }: PartitionerArgs): number => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (message.key !== null && message.key !== undefined) return toPositive(murmur2(message.key as Buffer | string)) % partitionMetadata.length;
    // No key: round robin over the partitions that have a leader (as kafkajs, from a random start per topic).
    let counter = counters.get(topic);
    if (counter === undefined) counter = randomBytes(4).readUInt32BE(0);
    counters.set(topic, ++counter);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    if (available.length > 0) return available[toPositive(counter) % available.length].partitionId;
    return toPositive(counter) % partitionMetadata.length;
  };
};
