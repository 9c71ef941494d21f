/** Why a record went to the dead-letter topic. Mirrors the ErrorKind enum in schemas/dead-letter.avsc. */
export type ErrorKind =
  | 'NOT_AVRO'
  | 'UNKNOWN_SCHEMA'
  | 'MISSING_FIELD'
  | 'WRONG_TYPE'
  | 'DECODE_ERROR'
  | 'PROCESSING_ERROR'
  | 'PRODUCE_FAILED'
  | 'TOO_LARGE';

/** A per-record failure that routes the record to the dead-letter topic instead of failing the batch. */
export class RecordRejection {
  constructor(
    readonly kind: ErrorKind,
    readonly message: string,
  ) {}
}
