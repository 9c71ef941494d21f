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
exports.IdempotentProducer = exports.ProducerConfigError = void 0;
exports.kafkaSecurityFromEnv = kafkaSecurityFromEnv;
exports.classifyKafkajsLog = classifyKafkajsLog;
exports.onRetriableBrokerError = onRetriableBrokerError;
exports.kafkaRetriableCounter = kafkaRetriableCounter;
exports.createKafka = createKafka;
exports.connectTransactionalProducer = connectTransactionalProducer;
exports.idempotentProducer = idempotentProducer;
const fs = __importStar(require("node:fs"));
const kafkajs_1 = require("kafkajs");
const prom_client_1 = require("prom-client");
const errors_1 = require("../util/errors");
const logger_1 = require("../util/logger");
/**
 * Kafka SASL/TLS from the environment, so no secret lives in a topology file:
 * KAFKA_SASL_MECHANISM (plain | scram-sha-256 | scram-sha-512), KAFKA_SASL_USERNAME,
 * KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, KAFKA_SSL=true, KAFKA_SSL_CA_FILE.
 */
function kafkaSecurityFromEnv(env = process.env) {
    const out = {};
    if (env.KAFKA_SSL === 'true' || env.KAFKA_SSL_CA_FILE) {
        out.ssl = env.KAFKA_SSL_CA_FILE ? { ca: [fs.readFileSync(env.KAFKA_SSL_CA_FILE, 'utf8')] } : true;
    }
    const mechanism = env.KAFKA_SASL_MECHANISM?.toLowerCase();
    if (mechanism) {
        const password = env.KAFKA_SASL_PASSWORD_FILE
            ? fs.readFileSync(env.KAFKA_SASL_PASSWORD_FILE, 'utf8').trim()
            : (env.KAFKA_SASL_PASSWORD ?? '');
        out.sasl = { mechanism, username: env.KAFKA_SASL_USERNAME ?? '', password };
    }
    return out;
}
const LEVELS = {
    [kafkajs_1.logLevel.ERROR]: 'error',
    [kafkajs_1.logLevel.WARN]: 'warn',
    [kafkajs_1.logLevel.INFO]: 'info',
    [kafkajs_1.logLevel.DEBUG]: 'debug',
};
/**
 * kafkajs' own table of Kafka protocol errors (type, code, retriable, message). Its logs carry a
 * failed answer only as the error's message text (`Response AddPartitionsToTxn(...)` with
 * `error: "<message>"`), so the table turns that text back into the structured error type and
 * kafkajs' retriable flag: nothing here copies kafkajs' message strings. Not part of kafkajs'
 * typed API; test/unit/kafka-client-logging.test.ts fails if it moves.
 */
function loadProtocolErrors() {
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { errorCodes } = require('kafkajs/src/protocol/error');
        return new Map(errorCodes.map((e) => [e.message, e]));
    }
    catch {
        return new Map();
    }
}
const PROTOCOL_ERRORS = loadProtocolErrors();
/**
 * Answers kafkajs flags non-retriable but recovers from by itself (re-joining the consumer group):
 * they occur in ordinary rebalances, so they are no failure of ours. Whoever called (a commit, a
 * transaction) still gets the error and decides how loud it is.
 */
const RECOVERED_BY_KAFKAJS = new Set(['REBALANCE_IN_PROGRESS', 'MEMBER_ID_REQUIRED', 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION']);
/**
 * kafkajs' notices, logged inside its retry loops, that it is about to retry (cluster/brokerPool.js,
 * producer/sendMessages.js): the prefix before the error text. Each is followed by a retry, or by the
 * error reaching the caller once retries are exhausted.
 */
const RETRY_NOTICES = ['Failed to connect to seed broker, trying another broker from the list', 'Failed to send messages', 'Failed to connect to broker, reconnecting'];
/** kafkajs' KafkaJSConnectionError messages (network/connection.js): it reconnects and retries. */
const CONNECTION_FAILURES = /^(Connection error: |Connection timeout$)/;
function protocolError(text) {
    if (typeof text !== 'string')
        return undefined;
    const direct = PROTOCOL_ERRORS.get(text);
    if (direct)
        return direct;
    // "<notice>: <error message>"
    const colon = text.indexOf(': ');
    return colon >= 0 ? PROTOCOL_ERRORS.get(text.slice(colon + 2)) : undefined;
}
/**
 * Maps one kafkajs log entry to our level. Retriable broker answers (kafkajs' `retriable` flag, or a
 * rebalance answer it recovers from), connection failures it reconnects from, and its own
 * "retrying" notices go to debug; everything else keeps kafkajs' level, so real failures (fencing,
 * authorization, a consumer crash, retries exhausted) are still logged at ERROR.
 */
function classifyKafkajsLog(entry) {
    const level = LEVELS[entry.level] ?? 'info';
    if (level !== 'error' && level !== 'warn')
        return { level, count: false };
    const { message, error, retryCount } = entry.log;
    const answer = protocolError(error) ?? protocolError(message);
    if (answer) {
        if (!answer.retriable && !RECOVERED_BY_KAFKAJS.has(answer.type))
            return { level, count: false };
        // connection.js logs each failed answer once as "Response <Api>(...)"; other entries restate it.
        const oneAnswer = entry.namespace === 'Connection' && typeof message === 'string' && message.startsWith('Response ');
        return { level: 'debug', retriable: answer.type, count: oneAnswer };
    }
    if (typeof message === 'string') {
        if (entry.namespace === 'Connection' && CONNECTION_FAILURES.test(message))
            return { level: 'debug', retriable: 'CONNECTION', count: true };
        if (typeof retryCount === 'number' && RETRY_NOTICES.some((n) => message.startsWith(n)))
            return { level: 'debug', retriable: 'RETRY', count: false };
    }
    return { level, count: false };
}
const retriableListeners = new Set();
/**
 * Calls `listener` for every retriable broker answer any Kafka client made by createKafka receives
 * (process-wide). Returns a function that unsubscribes.
 */
function onRetriableBrokerError(listener) {
    retriableListeners.add(listener);
    return () => retriableListeners.delete(listener);
}
const counters = new WeakMap();
/**
 * `tributary_kafka_retriable_errors_total{type}` on `registry`: retriable broker answers (one per
 * answer, by protocol error type, CONCURRENT_TRANSACTIONS included) and failed connection attempts
 * (type CONNECTION) that kafkajs retried. Idempotent per registry; counts from the moment it is made.
 */
function kafkaRetriableCounter(registry) {
    const existing = counters.get(registry);
    if (existing)
        return existing;
    const counter = new prom_client_1.Counter({
        name: 'tributary_kafka_retriable_errors_total',
        help: 'Retriable Kafka broker answers (by protocol error type) and failed connection attempts (CONNECTION) that the client retried',
        labelNames: ['type'],
        registers: [registry],
    });
    counters.set(registry, counter);
    onRetriableBrokerError((e) => counter.inc({ type: e.type }));
    return counter;
}
/** Routes kafkajs' own logs into our structured JSON logger, at the level classifyKafkajsLog picks. */
function kafkajsLogCreator() {
    const logger = (0, logger_1.createLogger)('kafkajs');
    return () => (entry) => {
        const decision = classifyKafkajsLog(entry);
        const { message, ...extra } = entry.log;
        if (decision.count && decision.retriable) {
            const event = { type: decision.retriable, namespace: entry.namespace, broker: typeof extra.broker === 'string' ? extra.broker : undefined };
            for (const listener of retriableListeners)
                listener(event);
        }
        logger[decision.level]({ namespace: entry.namespace, ...(decision.retriable ? { retriable: decision.retriable } : {}), ...extra }, message);
    };
}
/**
 * kafkajs with our logging, security from the environment, and one explicit partitioner for every
 * producer made from it: kafkajs' DefaultPartitioner (Java-compatible murmur2, which is also what
 * kafkajs 2 uses when none is named, so placement is unchanged; naming it silences the "switched
 * default partitioner" warning). A producer config may still name another one.
 */
class TributaryKafka extends kafkajs_1.Kafka {
    producer(config = {}) {
        return super.producer({ createPartitioner: kafkajs_1.Partitioners.DefaultPartitioner, ...config });
    }
}
function createKafka(options) {
    return new TributaryKafka({
        clientId: options.clientId,
        brokers: options.brokers,
        ...(options.security ?? kafkaSecurityFromEnv()),
        logLevel: process.env.TRIBUTARY_KAFKAJS_LOG_LEVEL === 'debug' ? kafkajs_1.logLevel.DEBUG : kafkajs_1.logLevel.WARN,
        logCreator: kafkajsLogCreator(),
        // Bounded retries for admin calls, consumers and transactional producers (their callers retry
        // or abort); idempotent non-transactional producers override this (see idempotentProducer).
        retry: { initialRetryTime: 200, retries: 8 },
    });
}
/**
 * Creates and connects a transactional producer, its producer id initialized now (InitProducerId
 * bumps the epoch, fencing any previous owner of the id, and waits until that owner's open
 * transaction is finished) rather than at the first batch. It is made without kafkajs' `idempotent`
 * flag: every transaction kafkajs runs is idempotent regardless, while the flag only sets up the
 * producer's non-transactional send path, and combined with bounded retries (wanted here: a failed
 * transaction is aborted and retried by its caller) it makes kafkajs warn that idempotence may be
 * lost on every start.
 */
async function connectTransactionalProducer(kafka, config) {
    const producer = kafka.producer({ maxInFlightRequests: 1, allowAutoTopicCreation: false, ...config });
    await producer.connect();
    try {
        // kafkajs initializes the transactional producer id when the first transaction begins; an
        // empty transaction aborts without a request to the broker.
        const init = await producer.transaction();
        await init.abort();
    }
    catch (err) {
        await producer.disconnect().catch(() => undefined);
        throw err;
    }
    return producer;
}
/** Bad options for an idempotent producer. */
class ProducerConfigError extends errors_1.TributaryError {
}
exports.ProducerConfigError = ProducerConfigError;
/**
 * A non-transactional idempotent producer (acks=all) that keeps kafkajs' unlimited retries: the
 * client-wide `retry.retries` is not applied to it (a bounded count invalidates idempotence, and
 * kafkajs warns about it). If a send still fails (a non-retriable answer), the producer is replaced
 * (disconnected, and a new one with a new producer id connected) before the next send: after a
 * failed produce kafkajs rewinds the sequence numbers of every partition in that request, including
 * ones the broker may have written, so the old producer id cannot safely be reused.
 */
class IdempotentProducer {
    kafka;
    opts;
    producer;
    connected = false;
    broken = false;
    replacing;
    log;
    /** Producers replaced after a failed send so far. */
    replacements = 0;
    constructor(kafka, opts = {}) {
        this.kafka = kafka;
        this.opts = opts;
        const inFlight = opts.maxInFlightRequests ?? 1;
        if (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > 5) {
            throw new ProducerConfigError(`maxInFlightRequests must be an integer from 1 to 5 for an idempotent producer, got ${inFlight}`);
        }
        this.log = (opts.logger ?? (0, logger_1.createLogger)('kafka-producer')).child({ producer: opts.name ?? 'idempotent' });
        this.producer = this.create();
    }
    create() {
        return this.kafka.producer({
            idempotent: true,
            maxInFlightRequests: this.opts.maxInFlightRequests ?? 1,
            allowAutoTopicCreation: this.opts.allowAutoTopicCreation ?? false,
            // kafkajs' own default for idempotent producers; the client-wide limit would otherwise apply.
            retry: { retries: Number.MAX_SAFE_INTEGER },
        });
    }
    async connect() {
        await this.producer.connect();
        this.connected = true;
    }
    /** Sends with acks=all; rejects with kafkajs' error after kafkajs gives up (the producer is then replaced before the next send). */
    send(record) {
        return this.run((p) => p.send({ timeout: this.opts.timeout, ...record, acks: -1 }));
    }
    sendBatch(batch) {
        return this.run((p) => p.sendBatch({ timeout: this.opts.timeout, ...batch, acks: -1 }));
    }
    /** The kafkajs producer in use now (changes after a replacement). */
    get current() {
        return this.producer;
    }
    async disconnect() {
        this.connected = false;
        await this.replacing?.catch(() => undefined);
        await this.producer.disconnect();
    }
    async run(send) {
        if (this.broken)
            await this.replace();
        const producer = this.producer;
        try {
            return await send(producer);
        }
        catch (err) {
            // Only the producer that failed is marked: a send that failed on an already-replaced one does not break its successor.
            if (producer === this.producer && this.connected)
                this.broken = true;
            throw err;
        }
    }
    replace() {
        this.replacing ??= (async () => {
            const old = this.producer;
            this.log.warn({ replacements: this.replacements + 1 }, 'replacing the idempotent producer after a failed send');
            await old.disconnect().catch((err) => this.log.debug({ err: err.message }, 'disconnecting the failed producer'));
            const fresh = this.create();
            await fresh.connect();
            this.producer = fresh;
            this.broken = false;
            this.replacements += 1;
        })().finally(() => (this.replacing = undefined));
        return this.replacing;
    }
}
exports.IdempotentProducer = IdempotentProducer;
/** An idempotent, non-transactional producer with unlimited retries that replaces itself after a failed send (see IdempotentProducer). */
function idempotentProducer(kafka, opts = {}) {
    return new IdempotentProducer(kafka, opts);
}
