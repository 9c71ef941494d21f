"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.UnknownSchemaIdError = exports.SchemaRegistryClient = exports.SchemaRegistryError = void 0;
exports.registryAuthFromEnv = registryAuthFromEnv;
exports.valueSubject = valueSubject;
const confluent_schema_registry_1 = require("@kafkajs/confluent-schema-registry");
const errors_1 = require("../util/errors");
class SchemaRegistryError extends errors_1.TributaryError {
}
exports.SchemaRegistryError = SchemaRegistryError;
/** Reads registry basic-auth from SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD when both are set. */
function registryAuthFromEnv(env = process.env) {
    const username = env.SCHEMA_REGISTRY_USERNAME;
    const password = env.SCHEMA_REGISTRY_PASSWORD;
    return username && password ? { username, password } : undefined;
}
/**
 * Schema registry access. Registration goes over the registry's REST API directly (plain
 * `POST /subjects/{subject}/versions`) because compatible servers differ in the subject-config
 * endpoints that the library's register() touches; encode/decode and the id->schema cache
 * use @kafkajs/confluent-schema-registry.
 */
class SchemaRegistryClient {
    options;
    registry;
    idsBySubjectAndText = new Map();
    constructor(options) {
        this.options = options;
        this.registry = new confluent_schema_registry_1.SchemaRegistry({ host: options.url, auth: options.auth ? { ...options.auth } : undefined });
    }
    get url() {
        return this.options.url;
    }
    /** Registers `schemaText` under `subject` (idempotent: an identical schema returns the existing id). */
    async register(subject, schemaText) {
        const cacheKey = `${subject}\u0000${schemaText}`;
        const cached = this.idsBySubjectAndText.get(cacheKey);
        if (cached !== undefined)
            return cached;
        const body = JSON.stringify({ schema: schemaText, schemaType: 'AVRO' });
        const res = await this.request(`/subjects/${encodeURIComponent(subject)}/versions`, { method: 'POST', body });
        const parsed = (await res.json());
        if (typeof parsed.id !== 'number') {
            throw new SchemaRegistryError(`registry answered without an id when registering subject '${subject}'`);
        }
        this.idsBySubjectAndText.set(cacheKey, parsed.id);
        return parsed.id;
    }
    async subjects() {
        const res = await this.request('/subjects', { method: 'GET' });
        return (await res.json());
    }
    /** The writer schema for a registry id (cached by the library). Throws UnknownSchemaIdError on 404. */
    async writerType(id) {
        let timer;
        try {
            // A registry that accepts connections but never answers (stopped, overloaded) must fail the
            // lookup, not hang the partition silently: the engine retries it and reports the outage.
            const timeout = new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
            });
            return (await Promise.race([this.registry.getSchema(id), timeout]));
        }
        catch (err) {
            if (err.status === 404)
                throw new UnknownSchemaIdError(id);
            throw new SchemaRegistryError(`could not fetch schema id ${id}: ${err.message}${authHint(err.status)}`, { cause: err });
        }
        finally {
            clearTimeout(timer);
        }
    }
    async request(pathname, init) {
        const headers = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
        if (this.options.auth) {
            const token = Buffer.from(`${this.options.auth.username}:${this.options.auth.password}`).toString('base64');
            headers.authorization = `Basic ${token}`;
        }
        let res;
        try {
            res = await fetch(`${this.options.url.replace(/\/$/, '')}${pathname}`, { ...init, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        }
        catch (err) {
            throw new SchemaRegistryError(`schema registry unreachable at ${this.options.url}: ${err.message}`, { cause: err });
        }
        if (!res.ok) {
            throw new SchemaRegistryError(`schema registry ${init.method} ${pathname} failed: ${res.status} ${await res.text()}${authHint(res.status)}`);
        }
        return res;
    }
}
exports.SchemaRegistryClient = SchemaRegistryClient;
/** Bound of one registry request. */
const REQUEST_TIMEOUT_MS = Number(process.env.TRIBUTARY_REGISTRY_TIMEOUT_MS ?? 10000);
/** What to check when the registry refuses the credentials (or their absence). */
function authHint(status) {
    return status === 401 || status === 403 ? ' (the registry refused the credentials: check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD)' : '';
}
class UnknownSchemaIdError extends errors_1.TributaryError {
    schemaId;
    constructor(schemaId) {
        super(`schema id ${schemaId} is not known to the registry`);
        this.schemaId = schemaId;
    }
}
exports.UnknownSchemaIdError = UnknownSchemaIdError;
/** TopicNameStrategy, the Confluent default: the value schema of topic T lives under subject `T-value`. */
function valueSubject(topic) {
    return `${topic}-value`;
}
