import { type Kafka, type PartitionMetadata } from 'kafkajs';
import { JavaCompatiblePartitioner } from '../kafka/partitioner';
import { AvroEncoder } from '../kafka/avro-serde';
import { createKafka, idempotentProducer, type IdempotentProducer } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { TributaryError } from '../util/errors';
import { schemaCatalog, type SchemaName, type SchemaRecord, type SchemaSet } from './schema-set';

const partitioner = JavaCompatiblePartitioner();

/** An event that does not match its schema; `paths` lists the offending fields. */
export class EventValidationError extends TributaryError {
  constructor(readonly paths: string[]) {
    super(`event does not match its schema at: ${paths.join(', ')}`);
  }
}

/** The topic to publish to does not exist (topics are created by `tributary topics` / the pipeline, never implicitly). */
export class UnknownTopicError extends TributaryError {}

export interface TopicProducerOptions<S extends SchemaName<M>, M = {}> {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  /** Schema name (`<name>.avsc` in `schemas`, else in the package's schemas/), which fixes the event type. */
  schema: S;
  /** The set holding `schema` when it is not one of the package's own (e.g. an example's input events): its folders are searched first and its generated types type the records. */
  schemas?: SchemaSet<M>;
  /** Picks the message key (partitioning: the same key always lands on the same partition). */
  key: (event: SchemaRecord<S, M>) => string;
  /** Kafka headers per event (e.g. a request id); every stage of a topology carries them onto its outputs. */
  headers?: (event: SchemaRecord<S, M>) => Record<string, string>;
  clientId?: string;
  /**
   * Partition by this value instead of the message key (same hash as keying by it): e.g. the
   * streaming feature entity, so each entity's events stay in order on one partition (and a replay
   * sees them in the same order) while every record keeps its own key.
   */
  partitionBy?: (event: SchemaRecord<S, M>) => string;
  /** How long connect() waits for the topic to appear (a pipeline starting alongside creates it); default 0: fail at once. */
  waitForTopicMs?: number;
  /** Share an existing kafkajs client instead of creating one. */
  kafka?: Kafka;
}

/**
 * Typed producer for services that publish events into a topology: validates each event
 * against its Avro schema, encodes it with the registry's schema id, publishes with acks=all
 * through an idempotent producer with unlimited retries (replaced after a send that still failed).
 */
export class TopicProducer<S extends SchemaName<M>, M = {}> {
  private readonly producer: IdempotentProducer;
  private readonly encoder: AvroEncoder<SchemaRecord<S, M>>;
  private readonly catalogType;
  private readonly kafka: Kafka;
  private partitions?: PartitionMetadata[];

  constructor(private readonly options: TopicProducerOptions<S, M>) {
    const kafka = options.kafka ?? createKafka({ clientId: options.clientId ?? 'tributary-producer', brokers: options.brokers });
    this.kafka = kafka;
    this.producer = idempotentProducer(kafka, { name: `topic-producer:${options.topic}` });
    const schema = schemaCatalog(options.schemas).get(options.schema);
    this.catalogType = schema.type;
    const registry = new SchemaRegistryClient({ url: options.schemaRegistryUrl, auth: registryAuthFromEnv() });
    this.encoder = new AvroEncoder(registry, schema, options.topic);
  }

  /**
   * Registers/looks up the schema, checks that the topic exists (waiting up to `waitForTopicMs`
   * while a pipeline starting next to it creates it; then UnknownTopicError), connects.
   */
  async connect(): Promise<void> {
    await this.encoder.id();
    // The producer retries without limit, and a missing topic is a retriable answer: check first,
    // so a wrong topic name fails here with a clear error instead of sends that never finish.
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const deadline = Date.now() + (this.options.waitForTopicMs ?? 0);
      while (!(await admin.listTopics()).includes(this.options.topic)) {
        if (Date.now() >= deadline) throw new UnknownTopicError(`topic ${this.options.topic} does not exist${this.options.waitForTopicMs ? ` (waited ${this.options.waitForTopicMs} ms)` : ''}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      if (this.options.partitionBy) this.partitions = (await admin.fetchTopicMetadata({ topics: [this.options.topic] })).topics[0].partitions;
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
  }

  /** The partition `partitionBy` picks (the default partitioner's choice for that value as key). */
  private partitionOf(event: SchemaRecord<S, M>): number | undefined {
    if (!this.options.partitionBy || !this.partitions) return undefined;
    return partitioner({ topic: this.options.topic, partitionMetadata: this.partitions, message: { key: this.options.partitionBy(event), value: null } });
  }

  /** Throws EventValidationError (sending nothing) if any event is invalid. */
  validate(event: SchemaRecord<S, M>): void {
    const paths: string[] = [];
    this.catalogType.isValid(event, { errorHook: (p: string[]) => paths.push(p.join('.') || '(root)') });
    if (paths.length > 0) throw new EventValidationError(paths);
  }

  async send(events: SchemaRecord<S, M>[]): Promise<void> {
    events.forEach((e) => this.validate(e));
    const id = await this.encoder.id();
    await this.producer.send({
      topic: this.options.topic,
      messages: events.map((e) => ({ key: this.options.key(e), value: this.encoder.encodeWithId(id, e), headers: this.options.headers?.(e), partition: this.partitionOf(e) })),
    });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
