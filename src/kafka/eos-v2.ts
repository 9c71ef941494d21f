import fs from 'node:fs';
import type { Admin, Transaction } from 'kafkajs';
import { kafkaErrorType } from './errors';

/**
 * Typed access to what scripts/patch-kafkajs.js adds to kafkajs 2.2.4 for exactly-once v2
 * (KIP-447): TxnOffsetCommit v3 with the consumer's group membership, OffsetFetch v7 with
 * require_stable, and the generation in the GROUP_JOIN event. kafkajs' own typings know none of it.
 */

/** The consumer group member a transaction's offsets are committed for (Java's ConsumerGroupMetadata). */
export interface ConsumerGroupMetadata {
  generationId: number;
  memberId: string;
  /** Static membership id; kafkajs has none, so always null here. */
  groupInstanceId: string | null;
}

/** Fails fast when kafkajs lacks the exactly-once v2 additions (npm ci runs scripts/patch-kafkajs.js). */
export function assertEosV2Patched(): void {
  try {
    require.resolve('kafkajs/src/protocol/requests/txnOffsetCommit/v3/request');
    require.resolve('kafkajs/src/protocol/requests/offsetFetch/v7/request');
    if (!fs.readFileSync(require.resolve('kafkajs/src/consumer/consumerGroup.js'), 'utf8').includes('generationId: this.generationId')) throw new Error('GROUP_JOIN lacks the generation');
  } catch (err) {
    throw new Error(`shared transactions need kafkajs patched by scripts/patch-kafkajs.js (run by npm ci / npm install): ${(err as Error).message}`);
  }
}

/** The group coordinator refused offsets because the member is no longer in that generation: a zombie. */
const GENERATION_ERRORS = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

export function isGenerationError(err: unknown): boolean {
  return GENERATION_ERRORS.has(kafkaErrorType(err) ?? '');
}

/** The member's metadata from a GROUP_JOIN payload (patched kafkajs adds generationId); undefined if unpatched. */
export function groupMetadataOf(payload: unknown): ConsumerGroupMetadata | undefined {
  const p = payload as { generationId?: unknown; memberId?: unknown };
  if (typeof p.generationId !== 'number' || typeof p.memberId !== 'string') return undefined;
  return { generationId: p.generationId, memberId: p.memberId, groupInstanceId: null };
}

export interface TxnOffsets {
  consumerGroupId: string;
  topics: { topic: string; partitions: { partition: number; offset: string; metadata?: string }[] }[];
  /** Present: TxnOffsetCommit v3, refused for a stale member. Absent: v0/v1 as kafkajs sends it. */
  consumerGroupMetadata?: ConsumerGroupMetadata;
  /** The group's offsets partition is in the transaction already (addOffsets): TxnOffsetCommit only. */
  offsetsPartitionAdded?: boolean;
}

/** What scripts/patch-kafkajs.js (10) adds to a kafkajs transaction. */
interface RoundTripTransaction {
  addOffsets(o: { consumerGroupId: string }): Promise<void>;
  nextSendPartitionsAdded(): Promise<void>;
}

/** Whether this kafkajs carries patch 10 (offsets added alone, the send's AddPartitionsToTxn observable). */
export function canOverlapOffsets(txn: Transaction): boolean {
  const t = txn as unknown as Partial<RoundTripTransaction>;
  return typeof t.addOffsets === 'function' && typeof t.nextSendPartitionsAdded === 'function';
}

/**
 * A transaction request answered CONCURRENT_TRANSACTIONS (the coordinator still writing the
 * producer's previous markers; nothing was changed) is sent again every 10 ms, up to 200 times.
 */
async function retryConcurrent(request: () => Promise<void>, onRetry?: () => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      if (kafkaErrorType(err) !== 'CONCURRENT_TRANSACTIONS' || attempt >= 200) throw err;
      onRetry?.();
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** AddOffsetsToTxn for one group (its offsets partition joins the transaction), CONCURRENT_TRANSACTIONS retried. */
export function addOffsets(txn: Transaction, consumerGroupId: string, onRetry?: () => void): Promise<void> {
  return retryConcurrent(() => (txn as unknown as RoundTripTransaction).addOffsets({ consumerGroupId }), onRetry);
}

/**
 * A transaction's records and its consumer groups' offsets with the fewest serial round trips
 * (needs patch 10, see canOverlapOffsets). kafkajs sends AddPartitionsToTxn, Produce, then per
 * group AddOffsetsToTxn and TxnOffsetCommit, each after the previous answer. Here: every group's
 * AddOffsetsToTxn (they need no records), the send's AddPartitionsToTxn, then the Produce and every
 * TxnOffsetCommit at once — before EndTxn, 3 serial round trips instead of 4 for one group, 4
 * instead of 6 for two. No request overlaps one that changes the
 * transaction's state at the coordinator (two such at once are answered CONCURRENT_TRANSACTIONS);
 * Produce and TxnOffsetCommit only have their partitions verified. (A client cannot name
 * __consumer_offsets in AddPartitionsToTxn: the broker refuses internal topics.)
 *
 * Everything settles before this returns or throws, so the caller's abort never overtakes a
 * request in flight. `offsetsError` maps a group's failure (e.g. a stale generation) to what is
 * thrown; a failed send is thrown first.
 */
export async function sendWithOffsets(txn: Transaction, send: () => Promise<void>, groups: TxnOffsets[], opts: { onRetry?: () => void; offsetsError?: (group: number, err: unknown) => unknown } = {}): Promise<void> {
  const t = txn as unknown as RoundTripTransaction;
  for (let g = 0; g < groups.length; g++) {
    try {
      await addOffsets(txn, groups[g].consumerGroupId, opts.onRetry);
    } catch (err) {
      throw opts.offsetsError ? opts.offsetsError(g, err) : err;
    }
  }
  // Resolves once the next send's AddPartitionsToTxn is done (its Produce follows at once).
  const partitionsIn = t.nextSendPartitionsAdded();
  const sending = send();
  // No send (no records) or one failing before its AddPartitionsToTxn leaves partitionsIn pending
  // until the transaction ends: the race lets the offsets go (or give up) with the sends.
  const offsets = Promise.race([partitionsIn, sending]).then(async () => {
    const results = await Promise.allSettled(groups.map((o) => sendOffsets(txn, { ...o, offsetsPartitionAdded: true }, opts.onRetry)));
    const failed = results.flatMap((r, g) => (r.status === 'rejected' ? [opts.offsetsError ? opts.offsetsError(g, r.reason) : r.reason] : []));
    if (failed.length > 0) throw failed[0];
  });
  const [sent, committed] = await Promise.allSettled([sending, offsets]);
  if (sent.status === 'rejected') throw sent.reason;
  if (committed.status === 'rejected') throw committed.reason;
}

/**
 * transaction.sendOffsets with the group metadata passed through (AddOffsetsToTxn + TxnOffsetCommit).
 * kafkajs does not retry AddOffsetsToTxn's CONCURRENT_TRANSACTIONS (the coordinator still writes
 * the producer's previous markers when a transaction's first request is this one): retried here
 * every 10 ms; nothing was added when it is answered, so retrying is safe. `onRetry` counts them.
 */
export function sendOffsets(txn: Transaction, offsets: TxnOffsets, onRetry?: () => void): Promise<void> {
  const send = txn.sendOffsets as (o: TxnOffsets) => Promise<void>;
  return retryConcurrent(() => send(offsets), onRetry);
}

/**
 * The group's committed offset of one partition, stable: OffsetFetch v7 with require_stable marks a
 * partition UNSTABLE_OFFSET_COMMIT while a transaction holding its offset is pending (another
 * producer's commit in flight, or a crashed one's until its transaction times out); the read is
 * repeated until it clears or `timeoutMs` passes. null: none committed.
 */
export async function fetchStableOffset(admin: Admin, groupId: string, topic: string, partition: number, opts: { timeoutMs?: number; retryMs?: number } = {}): Promise<string | null> {
  return (await fetchStableCommit(admin, groupId, topic, partition, opts)).offset;
}

/** fetchStableOffset with the metadata committed beside the offset (null: none). */
export async function fetchStableCommit(admin: Admin, groupId: string, topic: string, partition: number, opts: { timeoutMs?: number; retryMs?: number } = {}): Promise<{ offset: string | null; metadata: string | null }> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120000);
  type Stable = { topic: string; partitions: { partition: number; offset: string; metadata: string | null; unstable?: boolean }[] }[];
  const fetch = admin.fetchOffsets as unknown as (o: { groupId: string; topics: string[]; requireStable: boolean }) => Promise<Stable>;
  for (;;) {
    const res = await fetch({ groupId, topics: [topic], requireStable: true });
    const entry = res.find((r) => r.topic === topic)?.partitions.find((p) => p.partition === partition);
    if (entry?.unstable !== true) return entry && Number(entry.offset) >= 0 ? { offset: entry.offset, metadata: entry.metadata ?? null } : { offset: null, metadata: null };
    if (Date.now() >= deadline) throw new Error(`the committed offset of ${topic}[${partition}] (group ${groupId}) stayed unstable for ${opts.timeoutMs ?? 120000} ms: a transaction holding it is still pending`);
    await new Promise((r) => setTimeout(r, opts.retryMs ?? 20));
  }
}
