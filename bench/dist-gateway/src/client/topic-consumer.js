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
exports.TopicConsumer = void 0;
const path = __importStar(require("node:path"));
const avro_schemas_1 = require("../kafka/avro-schemas");
const avro_serde_1 = require("../kafka/avro-serde");
const client_1 = require("../kafka/client");
const dead_letter_1 = require("../kafka/dead-letter");
const schema_registry_1 = require("../kafka/schema-registry");
const paths_1 = require("../stack/paths");
/**
 * Typed consumer for downstream services (e.g. of prediction topics): decodes Avro through the
 * registry into the generated TypeScript types. Reads only committed records (read_committed);
 * offsets are committed after the handler returns, so a crash re-delivers, never skips.
 */
class TopicConsumer {
    options;
    consumer;
    decoder;
    constructor(options) {
        this.options = options;
        const kafka = options.kafka ?? (0, client_1.createKafka)({ clientId: options.clientId ?? 'tributary-consumer', brokers: options.brokers });
        this.consumer = kafka.consumer({ groupId: options.groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
        const registry = new schema_registry_1.SchemaRegistryClient({ url: options.schemaRegistryUrl, auth: (0, schema_registry_1.registryAuthFromEnv)() });
        const reader = new avro_schemas_1.SchemaCatalog(path.join((0, paths_1.repoRoot)(), 'schemas')).get(options.schema).type;
        this.decoder = new avro_serde_1.AvroDecoder(registry, reader);
    }
    async run(handler) {
        await this.consumer.connect();
        await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: this.options.fromBeginning ?? true });
        await this.consumer.run({
            eachMessage: async ({ topic, partition, message }) => {
                const meta = { topic, partition, offset: Number(message.offset), key: message.key?.toString() ?? null, timestamp: Number(message.timestamp), headers: Object.fromEntries(Object.entries(message.headers ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(Array.isArray(v) ? v[v.length - 1] : v)])) };
                const value = await this.decoder.decode(message.value);
                if (value instanceof dead_letter_1.RecordRejection) {
                    if (!this.options.onUndecodable)
                        throw new Error(`${topic}/${partition}@${meta.offset}: ${value.kind}: ${value.message}`);
                    await this.options.onUndecodable(value, meta);
                    return;
                }
                await handler(value, meta);
            },
        });
    }
    async stop() {
        await this.consumer.disconnect();
    }
}
exports.TopicConsumer = TopicConsumer;
