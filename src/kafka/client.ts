import * as fs from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions, type LogEntry } from 'kafkajs';
import { createLogger } from '../util/logger';

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

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** Routes kafkajs' own logs into our structured JSON logger. */
function kafkajsLogCreator() {
  const logger = createLogger('kafkajs');
  return () =>
    ({ level, namespace, log }: LogEntry) => {
      const { message, ...extra } = log;
      logger[LEVELS[level] ?? 'info']({ namespace, ...extra }, message);
    };
}

export function createKafka(options: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.security ?? kafkaSecurityFromEnv()),
    logLevel: process.env.TRIBUTARY_KAFKAJS_LOG_LEVEL === 'debug' ? logLevel.DEBUG : logLevel.WARN,
    logCreator: kafkajsLogCreator(),
    retry: { initialRetryTime: 200, retries: 8 },
  });
}
