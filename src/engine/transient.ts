import { KafkaJSError } from 'kafkajs';
import { TransientError } from '../util/errors';

/** Error names of clients whose failures are about the moment, not the record. */
const TRANSIENT_NAMES = new Set(['TransientError', 'MaxRetriesPerRequestError', 'ClusterAllFailedError', 'RetriableBatchError', 'InferenceTimeoutError', 'AbortError']);
/** Messages of connection-level failures (ioredis, sockets) that carry no dedicated class. */
const TRANSIENT_MESSAGE = /Connection is closed|Command timed out|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|socket hang up|LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN/;

/**
 * True when a failure is about a dependency (Redis, the registry, the broker, the inference pool)
 * rather than the records: the engine then retries the chunk with backoff for as long as it lasts
 * and never dead-letters records because of it.
 */
export function isTransientError(err: unknown): boolean {
  for (let cur: unknown = err, depth = 0; cur && depth < 6; depth++) {
    if (cur instanceof TransientError) return true;
    if (cur instanceof KafkaJSError && cur.retriable) return true;
    const e = cur as { name?: string; message?: string; code?: string; cause?: unknown };
    if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
    if (typeof e.message === 'string' && TRANSIENT_MESSAGE.test(e.message)) return true;
    if (typeof e.code === 'string' && TRANSIENT_MESSAGE.test(e.code)) return true;
    cur = e.cause;
  }
  return false;
}

/**
 * Thrown by a processor whose records cannot be processed yet because they wait for other data
 * (e.g. a label whose prediction has not been read yet) — not a failure: the lane retries the chunk
 * with backoff without logging an error or making the chain unready, and a graceful stop does not
 * wait for it (the waiting records are not committed; they are read again on the next start).
 */
export class RetryLaterError extends TransientError {}
