import * as fs from 'node:fs';
import {
  Kafka,
  logLevel,
  type KafkaConfig,
  type ICustomPartitioner,
  type LogEntry,
  type Producer,
  type ProducerBatch,
  type ProducerConfig,
  type ProducerRecord,
  type RecordMetadata,
  type SASLOptions,
} from 'kafkajs';
import { JavaCompatiblePartitioner } from './partitioner';
import { Counter, type Registry } from 'prom-client';
import { TributaryError } from '../util/errors';
import { createLogger, type Logger } from '../util/logger';

export interface KafkaClientOptions {
  clientId: string;
  brokers: string[];
  /** SASL/TLS settings; by default read from the environment (see kafkaSecurityFromEnv). */
  security?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
}

/**
 * Kafka SASL/TLS from the environment, so no secret lives in a topology file:
 * KAFKA_SASL_MECHANISM (plain | scram-sha-256 | scram-sha-512), KAFKA_SASL_USERNAME,
 * KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, KAFKA_SSL=true, KAFKA_SSL_CA_FILE.
 */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (env.KAFKA_SSL === 'true' || env.KAFKA_SSL_CA_FILE) {
    out.ssl = env.KAFKA_SSL_CA_FILE ? { ca: [fs.readFileSync(env.KAFKA_SSL_CA_FILE, 'utf8')] } : true;
  }
  const mechanism = env.KAFKA_SASL_MECHANISM?.toLowerCase();
  if (mechanism) {
    const password = env.KAFKA_SASL_PASSWORD_FILE
      ? fs.readFileSync(env.KAFKA_SASL_PASSWORD_FILE, 'utf8').trim()
      : (env.KAFKA_SASL_PASSWORD ?? '');
    out.sasl = { mechanism, username: env.KAFKA_SASL_USERNAME ?? '', password } as SASLOptions;
  }
  return out;
}

type Level = 'error' | 'warn' | 'info' | 'debug';

const LEVELS: Record<number, Level> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

interface ProtocolErrorCode {
  type: string;
  code: number;
  retriable: boolean;
  message: string;
}

/**
 * kafkajs' own table of Kafka protocol errors (type, code, retriable, message). Its logs carry a
 * failed answer only as the error's message text (`Response AddPartitionsToTxn(...)` with
 * `error: "<message>"`), so the table turns that text back into the structured error type and
 * kafkajs' retriable flag: nothing here copies kafkajs' message strings. Not part of kafkajs'
 * typed API; test/unit/kafka-client-logging.test.ts fails if it moves.
 */
function loadProtocolErrors(): Map<string, ProtocolErrorCode> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { errorCodes } = require('kafkajs/src/protocol/error') as { errorCodes: ProtocolErrorCode[] };
    return new Map(errorCodes.map((e) => [e.message, e]));
  } catch {
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

/** What the log mapping decided for one kafkajs entry. */
export interface KafkajsLogDecision {
  level: Level;
  /** Set when kafkajs logged a retriable broker answer or connection failure at ERROR/WARN: its type (CONCURRENT_TRANSACTIONS, ..., CONNECTION). */
  retriable?: string;
  /** True when the entry is one broker answer or one failed connection attempt (what the counter counts). */
  count: boolean;
}

function protocolError(text: unknown): ProtocolErrorCode | undefined {
  if (typeof text !== 'string') return undefined;
  const direct = PROTOCOL_ERRORS.get(text);
  if (direct) return direct;
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
export function classifyKafkajsLog(entry: Pick<LogEntry, 'level' | 'namespace' | 'log'>): KafkajsLogDecision {
  const level = LEVELS[entry.level] ?? 'info';
  if (level !== 'error' && level !== 'warn') return { level, count: false };
  const { message, error, retryCount } = entry.log as { message: string; error?: unknown; retryCount?: unknown };
  // A CreateTopics answer with per-topic errors: the connection logs the aggregate ("Topic creation
  // errors") at ERROR before the admin sees it. kafkajs' admin treats "all TOPIC_ALREADY_EXISTS" (two
  // processes creating a topology's topics at once) as done and throws anything else to the caller
  // (ensureTopics), which fails loudly — so this line is never the only trace of a real failure.
  if (entry.namespace === 'Connection' && typeof message === 'string' && message.startsWith('Response CreateTopics') && error === 'Topic creation errors') return { level: 'debug', count: false };
  const answer = protocolError(error) ?? protocolError(message);
  if (answer) {
    if (!answer.retriable && !RECOVERED_BY_KAFKAJS.has(answer.type)) return { level, count: false };
    // connection.js logs each failed answer once as "Response <Api>(...)"; other entries restate it.
    const oneAnswer = entry.namespace === 'Connection' && typeof message === 'string' && message.startsWith('Response ');
    return { level: 'debug', retriable: answer.type, count: oneAnswer };
  }
  if (typeof message === 'string') {
    if (entry.namespace === 'Connection' && CONNECTION_FAILURES.test(message)) return { level: 'debug', retriable: 'CONNECTION', count: true };
    if (typeof retryCount === 'number' && RETRY_NOTICES.some((n) => message.startsWith(n))) return { level: 'debug', retriable: 'RETRY', count: false };
  }
  return { level, count: false };
}

/** One retriable broker answer (or failed connection attempt) kafkajs logged and retried. */
export interface RetriableBrokerError {
  /** Kafka protocol error type (e.g. CONCURRENT_TRANSACTIONS, NOT_COORDINATOR_FOR_GROUP), or CONNECTION. */
  type: string;
  /** kafkajs logger namespace (Connection for broker answers). */
  namespace: string;
  broker?: string;
}

type RetriableListener = (e: RetriableBrokerError) => void;
const retriableListeners = new Set<RetriableListener>();

/**
 * Calls `listener` for every retriable broker answer any Kafka client made by createKafka receives
 * (process-wide). Returns a function that unsubscribes.
 */
export function onRetriableBrokerError(listener: RetriableListener): () => void {
  retriableListeners.add(listener);
  return () => retriableListeners.delete(listener);
}

const counters = new WeakMap<Registry, Counter<'type'>>();

/**
 * `tributary_kafka_retriable_errors_total{type}` on `registry`: retriable broker answers (one per
 * answer, by protocol error type, CONCURRENT_TRANSACTIONS included) and failed connection attempts
 * (type CONNECTION) that kafkajs retried. Idempotent per registry; counts from the moment it is made.
 */
export function kafkaRetriableCounter(registry: Registry): Counter<'type'> {
  const existing = counters.get(registry);
  if (existing) return existing;
  const counter = new Counter({
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
  const logger = createLogger('kafkajs');
  return () => (entry: LogEntry) => {
    const decision = classifyKafkajsLog(entry);
    const { message, ...extra } = entry.log;
    if (decision.count && decision.retriable) {
      const event: RetriableBrokerError = { type: decision.retriable, namespace: entry.namespace, broker: typeof extra.broker === 'string' ? extra.broker : undefined };
      for (const listener of retriableListeners) listener(event);
    }
    logger[decision.level]({ namespace: entry.namespace, ...(decision.retriable ? { retriable: decision.retriable } : {}), ...extra }, message);
  };
}

/**
 * kafkajs with our logging, security from the environment, and one explicit partitioner for every
 * producer made from it: JavaCompatiblePartitioner (src/kafka/partitioner.ts: the same choices as
 * kafkajs' DefaultPartitioner, which kafkajs 2 uses when none is named, so placement is unchanged;
 * naming one silences the "switched default partitioner" warning). A producer config may still name another one.
 */
class TributaryKafka extends Kafka {
  override producer(config: ProducerConfig = {}): Producer {
    return super.producer({ createPartitioner: JavaCompatiblePartitioner, ...config });
  }
}

export function createKafka(options: KafkaClientOptions): Kafka {
  return new TributaryKafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.security ?? kafkaSecurityFromEnv()),
    logLevel: process.env.TRIBUTARY_KAFKAJS_LOG_LEVEL === 'debug' ? logLevel.DEBUG : logLevel.WARN,
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
export async function connectTransactionalProducer(kafka: Kafka, config: Omit<ProducerConfig, 'idempotent'> & { transactionalId: string }): Promise<Producer> {
  const producer = kafka.producer({ maxInFlightRequests: 1, allowAutoTopicCreation: false, ...config });
  await producer.connect();
  try {
    // kafkajs initializes the transactional producer id when the first transaction begins; an
    // empty transaction aborts without a request to the broker.
    const init = await producer.transaction();
    await init.abort();
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    throw err;
  }
  return producer;
}

/** Bad options for an idempotent producer. */
export class ProducerConfigError extends TributaryError {}

export interface IdempotentProducerOptions {
  /** Unacknowledged requests per broker connection, 1..5 (Kafka's bound for idempotence; default 1). kafkajs serializes an idempotent producer's produce requests per broker anyway. */
  maxInFlightRequests?: number;
  /** Default false: a missing topic is an error, not something to create with broker defaults. */
  allowAutoTopicCreation?: boolean;
  /** Producer-level request timeout for acks (ms, kafkajs default 30000). */
  timeout?: number;
  logger?: Logger;
  /** Names the producer in logs. */
  name?: string;
  /** kafkajs' partitioner (default kafkajs' own); where records land must match other writers of the topic. */
  createPartitioner?: ICustomPartitioner;
}

/**
 * A non-transactional idempotent producer (acks=all) that keeps kafkajs' unlimited retries: the
 * client-wide `retry.retries` is not applied to it (a bounded count invalidates idempotence, and
 * kafkajs warns about it). If a send still fails (a non-retriable answer), the producer is replaced
 * (disconnected, and a new one with a new producer id connected) before the next send: after a
 * failed produce kafkajs rewinds the sequence numbers of every partition in that request, including
 * ones the broker may have written, so the old producer id cannot safely be reused.
 */
export class IdempotentProducer {
  private producer: Producer;
  private connected = false;
  private broken = false;
  private replacing?: Promise<void>;
  private readonly log: Logger;
  /** Producers replaced after a failed send so far. */
  replacements = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: IdempotentProducerOptions = {},
  ) {
    const inFlight = opts.maxInFlightRequests ?? 1;
    if (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > 5) {
      throw new ProducerConfigError(`maxInFlightRequests must be an integer from 1 to 5 for an idempotent producer, got ${inFlight}`);
    }
    this.log = (opts.logger ?? createLogger('kafka-producer')).child({ producer: opts.name ?? 'idempotent' });
    this.producer = this.create();
  }

  private create(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: this.opts.maxInFlightRequests ?? 1,
      allowAutoTopicCreation: this.opts.allowAutoTopicCreation ?? false,
      ...(this.opts.createPartitioner ? { createPartitioner: this.opts.createPartitioner } : {}),
      // kafkajs' own default for idempotent producers; the client-wide limit would otherwise apply.
      retry: { retries: Number.MAX_SAFE_INTEGER },
    });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  /** Sends with acks=all; rejects with kafkajs' error after kafkajs gives up (the producer is then replaced before the next send). */
  send(record: Omit<ProducerRecord, 'acks'>): Promise<RecordMetadata[]> {
    return this.run((p) => p.send({ timeout: this.opts.timeout, ...record, acks: -1 }));
  }

  sendBatch(batch: Omit<ProducerBatch, 'acks'>): Promise<RecordMetadata[]> {
    return this.run((p) => p.sendBatch({ timeout: this.opts.timeout, ...batch, acks: -1 }));
  }

  /** The kafkajs producer in use now (changes after a replacement). */
  get current(): Producer {
    return this.producer;
  }

  async disconnect(): Promise<void> {
    this.connected = false;
    await this.replacing?.catch(() => undefined);
    await this.producer.disconnect();
  }

  private async run(send: (p: Producer) => Promise<RecordMetadata[]>): Promise<RecordMetadata[]> {
    if (this.broken) await this.replace();
    const producer = this.producer;
    try {
      return await send(producer);
    } catch (err) {
      // Only the producer that failed is marked: a send that failed on an already-replaced one does not break its successor.
      if (producer === this.producer && this.connected) this.broken = true;
      throw err;
    }
  }

  private replace(): Promise<void> {
    this.replacing ??= (async () => {
      const old = this.producer;
      this.log.warn({ replacements: this.replacements + 1 }, 'replacing the idempotent producer after a failed send');
      await old.disconnect().catch((err: Error) => this.log.debug({ err: err.message }, 'disconnecting the failed producer'));
      const fresh = this.create();
      await fresh.connect();
      this.producer = fresh;
      this.broken = false;
      this.replacements += 1;
    })().finally(() => (this.replacing = undefined));
    return this.replacing;
  }
}

/** An idempotent, non-transactional producer with unlimited retries that replaces itself after a failed send (see IdempotentProducer). */
export function idempotentProducer(kafka: Kafka, opts: IdempotentProducerOptions = {}): IdempotentProducer {
  return new IdempotentProducer(kafka, opts);
}
