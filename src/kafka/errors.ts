/** Kafka protocol error types that are a property of the record, not of the moment: retrying cannot help. */
const RECORD_ERRORS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TIMESTAMP']);

/** Walks kafkajs' error wrappers (retries exceeded, non-retriable) to the protocol error type, if any. */
export function kafkaErrorType(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 8; depth++) {
    const e = cur as { type?: string; cause?: unknown; originalError?: unknown };
    if (typeof e.type === 'string') return e.type;
    cur = e.originalError ?? e.cause;
  }
  return undefined;
}

export function isRecordError(err: unknown): boolean {
  const type = kafkaErrorType(err);
  return type !== undefined && RECORD_ERRORS.has(type);
}
