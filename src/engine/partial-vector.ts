/**
 * Partial records between the per-entity steps of a stage chained over several entities (README
 * "Two entities on one input"; planned by src/engine/repartition.ts).
 *
 * A step before the last returns the features it has so far; the chain (ChainStage.wrapsEvent)
 * writes them with the ORIGINAL event's value bytes as a `partial-vector` record keyed by the next
 * entity. The next step's chain decodes it with PartialVectorDecoder: its processor sees the
 * original event as `value` (decoded with the input topic's schema, through the registry, as if it
 * had read the input topic) and the features so far as `InputRecord.partial`; its dead letters carry
 * the event's bytes, not the partial record's. The event bytes are carried as produced, so an
 * evolved input schema resolves as it does on the input topic.
 */
import { RecordRejection } from '../kafka/dead-letter';
import type { PartialValues } from '../stages/processor';
import type { PartialVector } from './records';

/** The engine schema of partial records (schemas/partial-vector.avsc). */
export const PARTIAL_VECTOR_SCHEMA = 'partial-vector';

/** What decoding a partial record gives the chain: the original event, its bytes and the features so far. */
export class CarriedEvent {
  constructor(
    readonly event: unknown,
    readonly eventBytes: Buffer,
    readonly partial: PartialValues,
  ) {}
}

/** A decoder of Confluent-framed values (AvroDecoder). */
export interface ValueDecoder<T> {
  decode(buffer: Buffer | null): Promise<T | RecordRejection>;
}

/** Decodes a partial record and the event inside it; a bad event is rejected as such. */
export class PartialVectorDecoder implements ValueDecoder<CarriedEvent> {
  constructor(
    private readonly partial: ValueDecoder<PartialVector>,
    private readonly event: ValueDecoder<unknown>,
  ) {}

  async decode(buffer: Buffer | null): Promise<CarriedEvent | RecordRejection> {
    const p = await this.partial.decode(buffer);
    if (p instanceof RecordRejection) return p;
    const event = await this.event.decode(p.event);
    if (event instanceof RecordRejection) return new RecordRejection(event.kind, `the partial record's event: ${event.message}`);
    return new CarriedEvent(event, p.event, { names: p.names, values: p.values, featureSetVersions: p.featureSetVersions ?? {} });
  }
}

/** The partial record a step writes: the original event's bytes and the features it returned. */
export function partialRecord(eventBytes: Buffer, values: PartialValues): PartialVector {
  return { event: eventBytes, names: values.names, values: values.values, featureSetVersions: values.featureSetVersions ?? {} };
}
