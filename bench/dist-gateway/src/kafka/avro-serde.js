"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.AvroEncoder = exports.AvroDecoder = void 0;
exports.classifyIncompatibility = classifyIncompatibility;
const avro = __importStar(require("avsc"));
const dead_letter_1 = require("./dead-letter");
const schema_registry_1 = require("./schema-registry");
const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;
/**
 * Decodes Confluent-framed Avro (magic byte, 4-byte schema id, body) into the shape of a local
 * reader schema, resolving whatever writer schema the producer registered. Per-record problems
 * come back as RecordRejection (-> dead-letter topic) with a precise kind; registry outages throw
 * so the batch is retried instead of dead-lettering good data.
 */
class AvroDecoder {
    registry;
    reader;
    resolvers = new Map();
    constructor(registry, reader) {
        this.registry = registry;
        this.reader = reader;
    }
    async decode(buffer) {
        if (!buffer || buffer.length < HEADER_BYTES || buffer[0] !== MAGIC_BYTE) {
            return new dead_letter_1.RecordRejection('NOT_AVRO', 'value is not Confluent-framed Avro (missing magic byte 0 and schema id)');
        }
        const schemaId = buffer.readInt32BE(1);
        const resolver = await this.resolverFor(schemaId);
        if (resolver instanceof dead_letter_1.RecordRejection)
            return resolver;
        try {
            return this.reader.fromBuffer(buffer.subarray(HEADER_BYTES), resolver, true);
        }
        catch (err) {
            return new dead_letter_1.RecordRejection('DECODE_ERROR', `schema id ${schemaId}: ${err.message}`);
        }
    }
    async resolverFor(schemaId) {
        const cached = this.resolvers.get(schemaId);
        if (cached)
            return cached;
        let writer;
        try {
            writer = await this.registry.writerType(schemaId);
        }
        catch (err) {
            // Unknown ids are a property of the record; anything else (outage) is transient and rethrown.
            if (err instanceof schema_registry_1.UnknownSchemaIdError)
                return new dead_letter_1.RecordRejection('UNKNOWN_SCHEMA', err.message);
            throw err;
        }
        let result;
        try {
            result = this.reader.createResolver(writer);
        }
        catch (err) {
            result = classifyIncompatibility(this.reader, writer, schemaId, err);
        }
        this.resolvers.set(schemaId, result);
        return result;
    }
}
exports.AvroDecoder = AvroDecoder;
/** Explains why a writer schema cannot be read as the reader schema: missing fields or wrong types. */
function classifyIncompatibility(reader, writer, schemaId, err) {
    if (reader instanceof avro.types.RecordType && writer instanceof avro.types.RecordType) {
        const writerFields = new Map(writer.fields.map((f) => [f.name, f]));
        const missing = reader.fields
            .filter((f) => !writerFields.has(f.name) && f.defaultValue() === undefined)
            .map((f) => f.name);
        if (missing.length > 0) {
            return new dead_letter_1.RecordRejection('MISSING_FIELD', `schema id ${schemaId} lacks required field(s): ${missing.join(', ')}`);
        }
        const wrong = [];
        for (const f of reader.fields) {
            const w = writerFields.get(f.name);
            if (!w)
                continue;
            try {
                f.type.createResolver(w.type);
            }
            catch {
                wrong.push(`${f.name} (expected ${typeName(f.type)}, got ${typeName(w.type)})`);
            }
        }
        if (wrong.length > 0) {
            return new dead_letter_1.RecordRejection('WRONG_TYPE', `schema id ${schemaId} has wrong type for field(s): ${wrong.join(', ')}`);
        }
    }
    return new dead_letter_1.RecordRejection('WRONG_TYPE', `schema id ${schemaId} cannot be read as ${typeName(reader)}: ${err.message}`);
}
function typeName(t) {
    return t.name ?? t.typeName;
}
/** Encodes values of one local schema for one topic, registering the schema under the topic's value subject once. */
class AvroEncoder {
    registry;
    schema;
    topic;
    schemaId;
    constructor(registry, schema, topic) {
        this.registry = registry;
        this.schema = schema;
        this.topic = topic;
    }
    /** Registers (idempotently) and caches the schema id. */
    id() {
        this.schemaId ??= this.registry.register((0, schema_registry_1.valueSubject)(this.topic), this.schema.text).catch((err) => {
            this.schemaId = undefined; // allow a retry after a registry outage
            throw err;
        });
        return this.schemaId;
    }
    /** Encodes synchronously once the id is known: hot paths call id() once, then this per record. */
    encodeWithId(id, value) {
        const body = this.schema.type.toBuffer(value);
        const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
        out[0] = MAGIC_BYTE;
        out.writeInt32BE(id, 1);
        body.copy(out, HEADER_BYTES);
        return out;
    }
    async encode(value) {
        return this.encodeWithId(await this.id(), value);
    }
}
exports.AvroEncoder = AvroEncoder;
