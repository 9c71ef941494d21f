import * as path from 'node:path';
import type { Consumer, Kafka } from 'kafkajs';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import { createKafka } from '../kafka/client';
import { RecordRejection } from '../kafka/dead-letter';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { repoRoot } from '../util/paths';
import type { SchemaTypes } from './generated/avro-types';

export interface ConsumedMeta {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  timestamp: number;
  /** The record's Kafka headers (lineage, request ids: carried through every stage). */
  headers: Record<string, string>;
}

export interface TopicConsumerOptions<S extends keyof SchemaTypes> {
  brokers: string[];
  schemaRegistryUrl: string;
  topic: string;
  schema: S;
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
export class TopicConsumer<S extends keyof SchemaTypes> {
  private readonly consumer: Consumer;
  private readonly decoder: AvroDecoder<SchemaTypes[S]>;

  constructor(private readonly options: TopicConsumerOptions<S>) {
    const kafka = options.kafka ?? createKafka({ clientId: options.clientId ?? 'tributary-consumer', brokers: options.brokers });
    this.consumer = kafka.consumer({ groupId: options.groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
    const registry = new SchemaRegistryClient({ url: options.schemaRegistryUrl, auth: registryAuthFromEnv() });
    const reader = new SchemaCatalog(path.join(repoRoot(), 'schemas')).get(options.schema).type;
    this.decoder = new AvroDecoder(registry, reader);
  }

  async run(handler: (event: SchemaTypes[S], meta: ConsumedMeta) => void | Promise<void>): Promise<void> {
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
