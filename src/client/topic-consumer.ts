import type { Consumer, Kafka } from 'kafkajs';
import { AvroDecoder } from '../kafka/avro-serde';
import { createKafka } from '../kafka/client';
import { RecordRejection } from '../kafka/dead-letter';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { schemaCatalog, type SchemaName, type SchemaRecord, type SchemaSet } from './schema-set';

export interface ConsumedMeta {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  timestamp: number;
  /** The record's Kafka headers (lineage, request ids: carried through every stage). */
  headers: Record<string, string>;
}

export interface TopicConsumerOptions<S extends SchemaName<M>, M = {}> {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  /** Schema name (`<name>.avsc` in `schemas`, else in the package's schemas/), which fixes the record type. */
  schema: S;
  /** The set holding `schema` when it is not one of the package's own (see TopicProducerOptions.schemas). */
  schemas?: SchemaSet<M>;
  groupId: string;
  fromBeginning?: boolean;
  clientId?: string;
  kafka?: Kafka;
  /** Called for records that cannot be decoded as `schema` (default: throw, stopping the consumer). */
  onUndecodable?: (rejection: RecordRejection, meta: ConsumedMeta) => void | Promise<void>;
}

/**
 * Typed consumer for downstream services (e.g. of prediction topics): decodes Avro through the
 * registry into the generated TypeScript types. Reads only committed records (read_committed);
 * offsets are committed after the handler returns, so a crash re-delivers, never skips.
 */
export class TopicConsumer<S extends SchemaName<M>, M = {}> {
  private readonly consumer: Consumer;
  private readonly decoder: AvroDecoder<SchemaRecord<S, M>>;

  constructor(private readonly options: TopicConsumerOptions<S, M>) {
    const kafka = options.kafka ?? createKafka({ clientId: options.clientId ?? 'tributary-consumer', brokers: options.brokers });
    this.consumer = kafka.consumer({ groupId: options.groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
    const registry = new SchemaRegistryClient({ url: options.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const reader = schemaCatalog(options.schemas).get(options.schema).type;
    this.decoder = new AvroDecoder(registry, reader);
  }

  async run(handler: (event: SchemaRecord<S, M>, meta: ConsumedMeta) => void | Promise<void>): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: this.options.fromBeginning ?? true });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const meta: ConsumedMeta = { topic, partition, offset: Number(message.offset), key: message.key?.toString() ?? null, timestamp: Number(message.timestamp), headers: Object.fromEntries(Object.entries(message.headers ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(Array.isArray(v) ? v[v.length - 1] : v)])) };
        const value = await this.decoder.decode(message.value);
        if (value instanceof RecordRejection) {
          if (!this.options.onUndecodable) throw new Error(`${topic}/${partition}@${meta.offset}: ${value.kind}: ${value.message}`);
          await this.options.onUndecodable(value, meta);
          return;
        }
        await handler(value, meta);
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
