import * as avro from 'avsc';
import { RecordRejection } from './dead-letter';
import { SchemaRegistryClient, UnknownSchemaIdError, valueSubject } from './schema-registry';
import type { LocalSchema } from './avro-schemas';
import { writerType } from './avro-repeated-arrays';

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

/**
 * Decodes Confluent-framed Avro (magic byte, 4-byte schema id, body) into the shape of a local
 * reader schema, resolving whatever writer schema the producer registered. Per-record problems
 * come back as RecordRejection (-> dead-letter topic) with a precise kind; registry outages throw
 * so the batch is retried instead of dead-lettering good data.
 */
export class AvroDecoder<T> {
  private readonly resolvers = new Map<number, avro.Resolver | RecordRejection>();

  constructor(
    private readonly registry: SchemaRegistryClient,
    private readonly reader: avro.Type,
  ) {}

  async decode(buffer: Buffer | null): Promise<T | RecordRejection> {
    if (!buffer || buffer.length < HEADER_BYTES || buffer[0] !== MAGIC_BYTE) {
      return new RecordRejection('NOT_AVRO', 'value is not Confluent-framed Avro (missing magic byte 0 and schema id)');
    }
    const schemaId = buffer.readInt32BE(1);
    const resolver = await this.resolverFor(schemaId);
    if (resolver instanceof RecordRejection) return resolver;
    try {
      return this.reader.fromBuffer(buffer.subarray(HEADER_BYTES), resolver, true) as T;
    } catch (err) {
      return new RecordRejection('DECODE_ERROR', `schema id ${schemaId}: ${(err as Error).message}`);
    }
  }

  private async resolverFor(schemaId: number): Promise<avro.Resolver | RecordRejection> {
    const cached = this.resolvers.get(schemaId);
    if (cached) return cached;
    let writer: avro.Type;
    try {
      writer = await this.registry.writerType(schemaId);
    } catch (err) {
      // Unknown ids are a property of the record; anything else (outage) is transient and rethrown.
      if (err instanceof UnknownSchemaIdError) return new RecordRejection('UNKNOWN_SCHEMA', err.message);
      throw err;
    }
    let result: avro.Resolver | RecordRejection;
    try {
      result = this.reader.createResolver(writer);
    } catch (err) {
      result = classifyIncompatibility(this.reader, writer, schemaId, err as Error);
    }
    this.resolvers.set(schemaId, result);
    return result;
  }
}

/** Explains why a writer schema cannot be read as the reader schema: missing fields or wrong types. */
export function classifyIncompatibility(reader: avro.Type, writer: avro.Type, schemaId: number, err: Error): RecordRejection {
  if (reader instanceof avro.types.RecordType && writer instanceof avro.types.RecordType) {
    const writerFields = new Map(writer.fields.map((f) => [f.name, f]));
    const missing = reader.fields
      .filter((f) => !writerFields.has(f.name) && f.defaultValue() === undefined)
      .map((f) => f.name);
    if (missing.length > 0) {
      return new RecordRejection('MISSING_FIELD', `schema id ${schemaId} lacks required field(s): ${missing.join(', ')}`);
    }
    const wrong: string[] = [];
    for (const f of reader.fields) {
      const w = writerFields.get(f.name);
      if (!w) continue;
      try {
        f.type.createResolver(w.type);
      } catch {
        wrong.push(`${f.name} (expected ${typeName(f.type)}, got ${typeName(w.type)})`);
      }
    }
    if (wrong.length > 0) {
      return new RecordRejection('WRONG_TYPE', `schema id ${schemaId} has wrong type for field(s): ${wrong.join(', ')}`);
    }
  }
  return new RecordRejection('WRONG_TYPE', `schema id ${schemaId} cannot be read as ${typeName(reader)}: ${err.message}`);
}

function typeName(t: avro.Type): string {
  return t.name ?? t.typeName;
}

/** Scratch space of encodeWithId (synchronous, so one buffer serves every encoder of the thread); grows on demand. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** Encodes values of one local schema for one topic, registering the schema under the topic's value subject once. */
export class AvroEncoder<T> {
  private schemaId?: Promise<number>;
  /** The same encoding as schema.type; feature names and other frozen string arrays repeat in every record: written once, then copied. */
  private readonly type: avro.Type;

  constructor(
    private readonly registry: SchemaRegistryClient,
    private readonly schema: LocalSchema,
    readonly topic: string,
  ) {
    this.type = writerType(JSON.parse(schema.text) as avro.Schema);
  }

  /** Registers (idempotently) and caches the schema id. */
  id(): Promise<number> {
    this.schemaId ??= this.registry.register(valueSubject(this.topic), this.schema.text).catch((err: unknown) => {
      this.schemaId = undefined; // allow a retry after a registry outage
      throw err;
    });
    return this.schemaId;
  }

  /** Encodes synchronously once the id is known: hot paths call id() once, then this per record. */
  encodeWithId(id: number, value: T): Buffer {
    // Written behind the header into a scratch buffer shared by all encoders, then copied once into
    // a buffer of the exact size: type.toBuffer would allocate (zero-filled) a buffer of its own that
    // this would copy again — two allocations per record on the hottest path of every stage.
    let end = this.type.encode(value, scratch, HEADER_BYTES);
    if (end < 0) {
      // A negative end is the number of bytes missing.
      scratch = Buffer.allocUnsafe(Math.max(2 * scratch.length, scratch.length - end));
      end = this.type.encode(value, scratch, HEADER_BYTES);
    }
    scratch[0] = MAGIC_BYTE;
    scratch.writeInt32BE(id, 1);
    const out = Buffer.allocUnsafe(end);
    scratch.copy(out, 0, 0, end);
    return out;
  }

  async encode(value: T): Promise<Buffer> {
    return this.encodeWithId(await this.id(), value);
  }
}
