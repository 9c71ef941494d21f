import type { Message } from 'kafkajs';
import type { TopicMessage } from './commit-sink';

/**
 * Request-reply over a topology (the gateway's correlation, Kafka's request-reply pattern): a
 * request record carries a correlation id, a reply topic and a reply partition in its headers.
 * Headers survive every stage, so wherever the record's descendants are written (each stage's
 * output, side outputs, the dead letter), the engine also writes a *reply copy* of them to that
 * partition, in the same transaction. The gateway instance that owns the partition reads only it.
 *
 * Cost: nothing for records without the headers (producers, backfills: a backfill's chain has no
 * reply route, so it never replies); for gateway requests, one extra record per output written.
 */
export const CORRELATION_HEADER = 'tributary-correlation-id';
export const REPLY_TOPIC_HEADER = 'tributary-reply-topic';
export const REPLY_PARTITION_HEADER = 'tributary-reply-partition';
/** On reply copies: the stage whose output (or rejection) this copy is. */
export const REPLY_STAGE_HEADER = 'tributary-reply-stage';
/** On reply copies: `output` (a stage's output record) or `dead-letter`. */
export const REPLY_KIND_HEADER = 'tributary-reply-kind';

export type ReplyKind = 'output' | 'dead-letter';

/** The topology's reply topic (one per topology, created with its topics; records expire within an hour). */
export function replyTopicName(topologyName: string): string {
  return `${topologyName}.replies`;
}

export const DEFAULT_REPLY_PARTITIONS = 8;
/** Replies are only useful while a request waits (or its idempotency key lives): keep them an hour. */
export const REPLY_RETENTION_MS = 3_600_000;

/**
 * Where this chain may write replies: only the topology's own reply topic, and only partitions it
 * has. A header naming anything else is ignored (a producer cannot make a stage write elsewhere, or
 * stall a partition on a produce that can never succeed).
 */
export interface ReplyRoute {
  topic: string;
  partitions: number;
}

export interface ReplyTarget {
  topic: string;
  partition: number;
}

function text(v: Buffer | string | undefined): string | undefined {
  return v === undefined ? undefined : v.toString();
}

/** The reply target named by a record's headers, if it is allowed by `route`. */
export function replyTarget(headers: Record<string, Buffer | string>, route: ReplyRoute | undefined): ReplyTarget | null {
  if (!route) return null;
  if (text(headers[CORRELATION_HEADER]) === undefined) return null;
  if (text(headers[REPLY_TOPIC_HEADER]) !== route.topic) return null;
  const p = Number(text(headers[REPLY_PARTITION_HEADER]));
  if (!Number.isInteger(p) || p < 0 || p >= route.partitions) return null;
  return { topic: route.topic, partition: p };
}

/** A reply copy of `message` (an output or a dead letter) for `target`. */
export function replyCopy(message: Message, target: ReplyTarget, stage: string, kind: ReplyKind): TopicMessage {
  return {
    topic: target.topic,
    message: {
      key: message.key,
      value: message.value,
      partition: target.partition,
      headers: { ...(message.headers ?? {}), [REPLY_STAGE_HEADER]: stage, [REPLY_KIND_HEADER]: kind },
    },
  };
}
