import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { kafkaRetriableCounter } from '../kafka/client';

/** Stage metrics (Prometheus naming: units in names, `_total` counters). One registry per process. */
export class StageMetrics {
  readonly registry: Registry;
  readonly eventsIn: Counter<'stage' | 'topic'>;
  readonly eventsOut: Counter<'stage' | 'topic'>;
  readonly deadLettered: Counter<'stage' | 'kind'>;
  readonly batchErrors: Counter<'stage' | 'kind'>;
  readonly batchSize: Histogram<'stage'>;
  readonly batchSeconds: Histogram<'stage'>;
  readonly endToEndSeconds: Histogram<'stage'>;
  readonly commitSeconds: Histogram<'chain'>;
  readonly commitRecords: Histogram<'chain'>;
  /**
   * Shared transactions (exactly-once v2, `transactions: shared`): per sink (one per process, or
   * per chain; labelled by its transactional-id prefix) and, for lane batches and refusals, per
   * chain and consumer group.
   */
  readonly sharedTransactions: Counter<'sink'>;
  readonly sharedBatches: Counter<'chain' | 'group'>;
  readonly sharedConcurrentRetries: Counter<'sink'>;
  readonly sharedEagerFallbacks: Counter<'sink'>;
  readonly sharedGenerationRefusals: Counter<'chain' | 'group'>;
  readonly sharedRecords: Histogram<'sink'>;
  readonly sharedSeconds: Histogram<'sink'>;
  readonly sharedReaderWaitSeconds: Histogram<'sink' | 'outcome'>;

  constructor(registry: Registry = new Registry(), withDefaults = false) {
    this.registry = registry;
    if (withDefaults) {
      collectDefaultMetrics({ register: registry, prefix: 'tributary_process_' });
      // prom-client names these gauges `*_total`, which Prometheus reserves for counters (promtool flags them).
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        registry.removeSingleMetric(`tributary_process_${name}`);
      }
    }
    const registers = [registry];
    this.eventsIn = new Counter({ name: 'tributary_stage_events_in_total', help: 'Records consumed by a stage', labelNames: ['stage', 'topic'], registers });
    this.eventsOut = new Counter({ name: 'tributary_stage_events_out_total', help: 'Records produced by a stage', labelNames: ['stage', 'topic'], registers });
    this.deadLettered = new Counter({ name: 'tributary_stage_dead_lettered_total', help: 'Records sent to the dead-letter topic, by error kind', labelNames: ['stage', 'kind'], registers });
    this.batchErrors = new Counter({ name: 'tributary_stage_batch_errors_total', help: 'Failed batch attempts (retried), by error kind (the error class name)', labelNames: ['stage', 'kind'], registers });
    this.batchSize = new Histogram({ name: 'tributary_stage_batch_size', help: 'Records per consumed batch', labelNames: ['stage'], buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000], registers });
    this.batchSeconds = new Histogram({ name: 'tributary_stage_batch_processing_seconds', help: 'Time to decode, process, produce and commit one batch', labelNames: ['stage'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.commitSeconds = new Histogram({ name: 'tributary_engine_commit_seconds', help: 'Time of one lane commit (transaction: outputs, dead letters, offset, commit) including retries', labelNames: ['chain'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.commitRecords = new Histogram({ name: 'tributary_engine_commit_records', help: 'Consumed records per lane commit', labelNames: ['chain'], buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000], registers });
    const shared = ['chain', 'group'] as const;
    const sink = ['sink'] as const;
    this.sharedTransactions = new Counter({ name: 'tributary_engine_shared_transactions_total', help: 'Shared transactions (transactions: shared) committed, by sink (its transactional-id prefix)', labelNames: sink, registers });
    this.sharedBatches = new Counter({ name: 'tributary_engine_shared_transaction_batches_total', help: 'Lane batches committed in shared transactions (several per transaction when lanes share)', labelNames: shared, registers });
    this.sharedConcurrentRetries = new Counter({ name: 'tributary_engine_shared_transaction_concurrent_retries_total', help: 'AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS (a producer\'s previous markers not written yet) and retried', labelNames: sink, registers });
    this.sharedEagerFallbacks = new Counter({ name: 'tributary_engine_shared_transaction_eager_fallbacks_total', help: 'Open transactions (records sent as processed) aborted because they did not hold exactly the batches cut; those batches were written at commit', labelNames: sink, registers });
    this.sharedGenerationRefusals = new Counter({ name: 'tributary_engine_shared_transaction_generation_refusals_total', help: 'Shared transactions refused because this member\'s group generation was stale (its lanes fenced)', labelNames: shared, registers });
    this.sharedRecords = new Histogram({ name: 'tributary_engine_shared_transaction_records', help: 'Consumed records committed per shared transaction (each with its outputs, side outputs, dead letter, replies)', labelNames: sink, buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000], registers });
    this.sharedSeconds = new Histogram({ name: 'tributary_engine_shared_transaction_seconds', help: 'Time of one shared transaction, from taking its producer to the end of EndTxn', labelNames: sink, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.sharedReaderWaitSeconds = new Histogram({ name: 'tributary_engine_shared_transaction_reader_wait_seconds', help: 'How long a shared transaction waited, once due, for chains of the process to process what the previous one wrote to a topic they read (a repartition hop\'s; commit.readerWaitMs); outcome caught_up or timed_out', labelNames: ['sink', 'outcome'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25], registers });
    // tributary_kafka_retriable_errors_total{type}: retriable broker answers (CONCURRENT_TRANSACTIONS...), logged at debug.
    kafkaRetriableCounter(registry);
    this.endToEndSeconds = new Histogram({ name: 'tributary_stage_event_to_output_seconds', help: 'From the input event entering Kafka to this stage producing its output', labelNames: ['stage'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
  }
}
