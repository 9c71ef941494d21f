import type { Kafka } from 'kafkajs';
import type { AvroDecoder } from '../kafka/avro-serde';
import { StageMetrics } from '../monitoring/metrics';
import type { InputRecord, OutputRecord, Processor } from '../stages/processor';
import type { ConsumerTuning, StageSpec } from '../topology/spec';
import { createLogger } from '../util/logger';
import { Chain } from './chain';
import { ChainRunner } from './chain-runner';
import type { CommitPolicy } from './lane';

/**
 * Consumers that act on something other than Kafka (Redis, metrics, an alert producer of their
 * own) as a configuration of the engine: a group source over one or more topics, a chain of one
 * encoder-less stage, and the offsets-only sink. Decoding, retries (a TransientError retries the
 * chunk for as long as it lasts), poison isolation, metrics and graceful stop are the engine's.
 */
export interface OffsetsOnlyConsumerOptions {
  kafka: Kafka;
  /** Names the chain in logs and metrics (the `stage` label). */
  name: string;
  groupId: string;
  /** The topics the group reads, each with its decoder; the processor tells them apart by `lineage.topic`. */
  inputs: { topic: string; decoder: AvroDecoder<unknown> }[];
  processor: Processor;
  /** Where the group starts when it has no committed offsets. */
  fromBeginning: boolean;
  /** Default: metrics in a registry of their own. */
  metrics?: StageMetrics;
  consumer?: ConsumerTuning;
  /** Default: commit every 500 ms (or 5000 records) per partition. */
  commit?: Partial<CommitPolicy>;
  errors?: StageSpec['errors'];
  /** Called with the number of committed records that were rejected (undecodable, too large, poison) and skipped. */
  onRejected?: (count: number) => void;
}

/** What a side-effect processor returns for each record: nothing to write. */
const CONSUMED: OutputRecord<null> = { key: '', value: null };

/** A processor whose only job is side effects; every record counts as consumed (a thrown error retries the chunk). */
export function sideEffectProcessor(handle: (records: readonly InputRecord<unknown>[]) => Promise<void>, close: () => Promise<void> = async () => undefined): Processor {
  return {
    async processBatch(records) {
      await handle(records);
      return records.map(() => CONSUMED);
    },
    close,
  };
}

export function offsetsOnlyConsumer(o: OffsetsOnlyConsumerOptions): ChainRunner {
  const [first, ...others] = o.inputs;
  const spec: StageSpec = {
    name: o.name,
    processor: o.name,
    input: { topic: first.topic, fromBeginning: o.fromBeginning },
    output: { topic: '' },
    consumer: o.consumer,
    errors: o.errors,
    config: {},
  };
  const chain = new Chain({
    stages: [{ spec, processor: o.processor }],
    decoder: first.decoder,
    decoders: Object.fromEntries(others.map((i) => [i.topic, i.decoder])),
    deadLetterMaxValueBytes: 0,
    log: createLogger('engine'),
  });
  return new ChainRunner({
    kafka: o.kafka,
    chain,
    groupId: o.groupId,
    delivery: 'offsets-only',
    topics: o.inputs.map((i) => i.topic),
    commit: { intervalMs: 500, maxRecords: 5000, ...(o.commit ?? {}) },
    deadLetterTopic: '',
    limits: { maxMessageBytes: () => Number.POSITIVE_INFINITY },
    metrics: o.metrics ?? new StageMetrics(),
    onCommitted: (records) => {
      const rejected = records.reduce((n, r) => n + (r.rejection ? 1 : 0), 0);
      if (rejected > 0) o.onRejected?.(rejected);
    },
  });
}
