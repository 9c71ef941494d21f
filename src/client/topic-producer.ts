import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroEncoder } from '../kafka/avro-serde';
import { createKafka, idempotentProducer, type IdempotentProducer } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { repoRoot } from '../stack/paths';
import { TributaryError } from '../util/errors';
import type { SchemaTypes } from './generated/avro-types';

/** An event that does not match its schema; `paths` lists the offending fields. */
export class EventValidationError extends TributaryError {
  constructor(readonly paths: string[]) {
    super(`event does not match its schema at: ${paths.join(', ')}`);
  }
}

/** The topic to publish to does not exist (topics are created by `tributary topics` / the pipeline, never implicitly). */
export class UnknownTopicError extends TributaryError {}

export interface TopicProducerOptions<S extends keyof SchemaTypes> {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  /** Schema file name in schemas/, which fixes the event type. */
  schema: S;
  /** Picks the message key (partitioning: the same key always lands on the same partition). */
  key: (event: SchemaTypes[S]) => string;
  /** Kafka headers per event (e.g. a request id); every stage of a topology carries them onto its outputs. */
  headers?: (event: SchemaTypes[S]) => Record<string, string>;
  clientId?: string;
  /** Share an existing kafkajs client instead of creating one. */
  kafka?: Kafka;
}

/**
 * Typed producer for services that publish events into a topology: validates each event
 * against its Avro schema, encodes it with the registry's schema id, publishes with acks=all
 * through an idempotent producer with unlimited retries (replaced after a send that still failed).
 */
export class TopicProducer<S extends keyof SchemaTypes> {
  private readonly producer: IdempotentProducer;
  private readonly encoder: AvroEncoder<SchemaTypes[S]>;
  private readonly catalogType;
  private readonly kafka: Kafka;

  constructor(private readonly options: TopicProducerOptions<S>) {
    const kafka = options.kafka ?? createKafka({ clientId: options.clientId ?? 'tributary-producer', brokers: options.brokers });
    this.kafka = kafka;
    this.producer = idempotentProducer(kafka, { name: `topic-producer:${options.topic}` });
    const schema = new SchemaCatalog(path.join(repoRoot(), 'schemas')).get(options.schema);
    this.catalogType = schema.type;
    const registry = new SchemaRegistryClient({ url: options.schemaRegistryUrl, auth: registryAuthFromEnv() });
    this.encoder = new AvroEncoder(registry, schema, options.topic);
  }

  /** Registers/looks up the schema, checks that the topic exists (throws UnknownTopicError), connects. */
  async connect(): Promise<void> {
    await this.encoder.id();
    // The producer retries without limit, and a missing topic is a retriable answer: check first,
    // so a wrong topic name fails here with a clear error instead of sends that never finish.
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      if (!topics.includes(this.options.topic)) throw new UnknownTopicError(`topic ${this.options.topic} does not exist`);
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
  }

  /** Throws EventValidationError (sending nothing) if any event is invalid. */
  validate(event: SchemaTypes[S]): void {
    const paths: string[] = [];
    this.catalogType.isValid(event, { errorHook: (p: string[]) => paths.push(p.join('.') || '(root)') });
    if (paths.length > 0) throw new EventValidationError(paths);
  }

  async send(events: SchemaTypes[S][]): Promise<void> {
    events.forEach((e) => this.validate(e));
    const id = await this.encoder.id();
    await this.producer.send({
      topic: this.options.topic,
      messages: events.map((e) => ({ key: this.options.key(e), value: this.encoder.encodeWithId(id, e), headers: this.options.headers?.(e) })),
    });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
