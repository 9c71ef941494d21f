import type { KafkaMessage } from 'kafkajs';
import { TributaryError } from '../util/errors';
import { lastHeader } from './chain';
import { LINEAGE_HEADER, parseLineageHeader } from './repartition';

/** Prefix of the offset-commit metadata that carries a lane's de-duplication state (with its format version). */
export const DEDUP_METADATA_PREFIX = 'tributary-dedup/1 ';

/**
 * Kafka's default `offset.metadata.max.bytes`: a commit whose metadata is longer is refused
 * (OFFSET_METADATA_TOO_LARGE). The state holds one entry per source partition (~10-20 bytes), so a
 * hop reading a few hundred input partitions stays well under it.
 */
export const MAX_DEDUP_METADATA_BYTES = 4096;

export class DedupStateError extends TributaryError {}

/**
 * De-duplication of a topic written by a deduplicated repartition hop (`repartition.delivery:
 * deduplicated`, README "Repartitioning by entity"), for one consumed partition.
 *
 * The hop writes with an idempotent producer, not in transactions: a crashed or rebalanced hop
 * writes again what it wrote after its last committed input offset. It writes every input
 * partition's records in offset order, each send only after the previous one was acknowledged, and
 * after a failed send it resends from the failed record on (EagerSink). So in any repartition
 * partition, a record of source partition P at original offset o appears only after every record
 * of P below o that goes to the same repartition partition — whether written by this owner of P, a
 * zombie, or a predecessor (each writes a contiguous run from a committed offset). A record whose
 * original offset is not above the highest one already seen from its source partition is therefore
 * a copy of one already consumed here, and nothing is skipped that was not delivered before.
 *
 * The highest offsets travel with the consumed offset they belong to (the commit's metadata:
 * TxnOffsetCommit in the same transaction as the outputs), so a new owner of the partition resumes
 * with the state as of the committed position. A record without a lineage header is never skipped.
 */
export class LineageDedup {
  /** Highest original offset seen, per source `topic` and partition. */
  private readonly highest = new Map<string, Map<number, number>>();
  /** Records skipped as copies since this lane started. */
  skipped = 0;

  /** The state committed with the offset a lane resumes from (null or foreign metadata: empty). */
  static restore(metadata: string | null | undefined): LineageDedup {
    const dedup = new LineageDedup();
    if (!metadata || !metadata.startsWith(DEDUP_METADATA_PREFIX)) return dedup;
    let parsed: unknown;
    try {
      parsed = JSON.parse(metadata.slice(DEDUP_METADATA_PREFIX.length));
    } catch (err) {
      throw new DedupStateError(`committed de-duplication state is not valid JSON: ${(err as Error).message}`);
    }
    for (const [topic, partitions] of Object.entries(parsed as Record<string, Record<string, number>>)) {
      const m = new Map<number, number>();
      for (const [p, o] of Object.entries(partitions)) {
        if (!Number.isInteger(o)) throw new DedupStateError(`committed de-duplication state has a non-integer offset for ${topic}[${p}]`);
        m.set(Number(p), o);
      }
      dedup.highest.set(topic, m);
    }
    return dedup;
  }

  /** True when the record is seen for the first time (process it); false for a copy (skip it). Updates the state. */
  keep(message: KafkaMessage): boolean {
    const lineage = parseLineageHeader(lastHeader(message, LINEAGE_HEADER));
    if (!lineage) return true;
    let partitions = this.highest.get(lineage.topic);
    if (!partitions) this.highest.set(lineage.topic, (partitions = new Map()));
    const seen = partitions.get(lineage.partition);
    if (seen !== undefined && lineage.offset <= seen) {
      this.skipped += 1;
      return false;
    }
    partitions.set(lineage.partition, lineage.offset);
    return true;
  }

  /** The state as commit metadata (what `restore` reads back). Throws DedupStateError past Kafka's metadata limit. */
  snapshot(): string {
    const out: Record<string, Record<number, number>> = {};
    for (const [topic, partitions] of this.highest) out[topic] = Object.fromEntries(partitions);
    const text = DEDUP_METADATA_PREFIX + JSON.stringify(out);
    if (Buffer.byteLength(text) > MAX_DEDUP_METADATA_BYTES) throw new DedupStateError(`de-duplication state of ${Buffer.byteLength(text)} bytes exceeds offset.metadata.max.bytes (${MAX_DEDUP_METADATA_BYTES}): too many source partitions for a deduplicated hop`);
    return text;
  }
}
