import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { KAFKA_VERSION } from './artifacts';
import { pollUntilAnswering, ServerStartError, type LaunchedServer } from './launched';
import { LOCALHOST } from './ports';
import { runCommand, spawnDetached, wholeArg } from './process';
import type { KafkaState } from '../util/stack-state';
import type { TlsMaterial } from './tls';

export interface KafkaServerOptions {
  /** Java classpath holding the broker jars, e.g. `<cache>/kafka-3.9.1/libs/*`. */
  classpath: string;
  /** Server dir (created if missing): config, log file and KRaft log dirs go here. */
  dataDir: string;
  port: number;
  controllerPort: number;
  /** Default `java`. */
  javaPath?: string;
  /** Max heap, default `512m`. */
  heap?: string;
  /**
   * More JVM options for the broker, placed after the heap flag (so they may override it) and
   * before the main class — what Kafka's own start script takes from KAFKA_OPTS: a collector, a GC
   * log (`-Xlog:gc:file=…`), JMX.
   */
  jvmOptions?: string[];
  /**
   * When given, the client listener speaks SSL (server certificate from the keystore; the broker talks
   * to itself over it too, trusting the truststore). Clients then need KAFKA_SSL_CA_FILE=`tls.caFile`.
   */
  tls?: Pick<TlsMaterial, 'caFile' | 'keystoreFile' | 'truststoreFile' | 'storePassword'>;
  /** Extra broker properties, appended last (they win). */
  extraProperties?: Record<string, string | number | boolean>;
}

export type KafkaServerInfo = KafkaState;

export const KAFKA_MAIN_CLASS = 'kafka.Kafka';

export function kafkaFiles(dataDir: string): { serverProperties: string; log4jProperties: string; logFile: string; logDirs: string } {
  return {
    serverProperties: path.join(dataDir, 'server.properties'),
    log4jProperties: path.join(dataDir, 'log4j.properties'),
    logFile: path.join(dataDir, 'kafka.log'),
    logDirs: path.join(dataDir, 'kraft-logs'),
  };
}

/** Command-line fragments that identify this broker's process (used before signalling a recorded pid). */
export function kafkaProcessMarkers(dataDir: string): string[] {
  return [wholeArg(KAFKA_MAIN_CLASS), wholeArg(kafkaFiles(dataDir).serverProperties)];
}

/** A KRaft cluster id: 16 random bytes, base64url without padding (22 chars), not starting with '-'. */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Java properties-file escaping for values (backslashes; paths on Windows would need it). */
function propValue(v: string | number | boolean): string {
  return String(v).replace(/\\/g, '\\\\');
}

/** Broker properties for an SSL client listener (the KRaft controller listener stays on loopback plaintext). */
export function kafkaTlsProperties(tls: NonNullable<KafkaServerOptions['tls']>): Record<string, string> {
  return {
    'ssl.keystore.type': 'PKCS12',
    'ssl.keystore.location': tls.keystoreFile,
    'ssl.keystore.password': tls.storePassword,
    'ssl.key.password': tls.storePassword,
    'ssl.truststore.type': 'PKCS12',
    'ssl.truststore.location': tls.truststoreFile,
    'ssl.truststore.password': tls.storePassword,
    'ssl.client.auth': 'none',
    'ssl.endpoint.identification.algorithm': 'https',
  };
}

export function renderServerProperties(opts: KafkaServerOptions): string {
  const files = kafkaFiles(opts.dataDir);
  const listener = opts.tls ? 'SSL' : 'PLAINTEXT';
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@${LOCALHOST}:${opts.controllerPort}`,
    listeners: `${listener}://${LOCALHOST}:${opts.port},CONTROLLER://${LOCALHOST}:${opts.controllerPort}`,
    'advertised.listeners': `${listener}://${LOCALHOST}:${opts.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': listener,
    'listener.security.protocol.map': `${listener}:${listener},CONTROLLER:PLAINTEXT`,
    ...(opts.tls ? kafkaTlsProperties(opts.tls) : {}),
    'log.dirs': files.logDirs,
    'auto.create.topics.enable': false,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 10,
    'group.initial.rebalance.delay.ms': 0,
    ...opts.extraProperties,
  };
  const lines = Object.entries(props).map(([k, v]) => `${k}=${propValue(v)}`);
  return `# Written by tributary stack; regenerated on every \`stack up\`.\n${lines.join('\n')}\n`;
}

export function renderLog4jProperties(logFile: string): string {
  return [
    '# Written by tributary stack. Broker logs go to one file in the server dir.',
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${propValue(logFile)}`,
    'log4j.appender.file.Append=true',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka=INFO',
    'log4j.logger.org.apache.kafka=INFO',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.kafka.log.LogCleaner=WARN',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n');
}

/** One metadata round trip with kafkajs; true when the broker answers. `ssl` for a TLS listener (e.g. `{ ca: [pem] }`). */
export async function kafkaAnswers(brokers: string[], timeoutMs = 3_000, ssl?: KafkaConfig['ssl']): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'tributary-stack-probe',
    brokers,
    ssl,
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 2_000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null && cluster.controller >= 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Writes config, formats KRaft storage and spawns the broker detached. Does not wait for it to answer. */
export async function launchKafkaServer(opts: KafkaServerOptions): Promise<LaunchedServer<KafkaServerInfo>> {
  const java = opts.javaPath ?? 'java';
  const files = kafkaFiles(opts.dataDir);
  fs.mkdirSync(files.logDirs, { recursive: true });
  // With TLS the file holds the store password: owner-only.
  fs.writeFileSync(files.serverProperties, renderServerProperties(opts), { mode: opts.tls ? 0o600 : 0o644 });
  fs.writeFileSync(files.log4jProperties, renderLog4jProperties(files.logFile));
  const log4j = `-Dlog4j.configuration=file:${files.log4jProperties}`;

  const format = await runCommand(
    java,
    ['-Xmx256m', log4j, '-cp', opts.classpath, 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', files.serverProperties],
    { cwd: opts.dataDir, timeoutMs: 120_000 },
  );
  if (format.code !== 0) {
    fs.appendFileSync(files.logFile, format.output);
    const last = format.output.trim().split('\n').pop() ?? '';
    throw new ServerStartError('kafka', `kafka storage format failed (exit ${format.code}): ${last.slice(0, 300)}; see ${files.logFile}`, files.logFile);
  }

  const proc = await spawnDetached(
    java,
    [
      `-Xmx${opts.heap ?? '512m'}`,
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      ...(opts.jvmOptions ?? []),
      log4j,
      '-cp',
      opts.classpath,
      KAFKA_MAIN_CLASS,
      files.serverProperties,
    ],
    { cwd: opts.dataDir, logFile: files.logFile },
  );
  const brokers = [`${LOCALHOST}:${opts.port}`];
  // The readiness probe verifies the broker's certificate against the CA, as clients will.
  const probeSsl = opts.tls ? { ca: [fs.readFileSync(opts.tls.caFile, 'utf8')] } : undefined;
  const info: KafkaServerInfo = {
    brokers,
    pid: proc.pid,
    port: opts.port,
    controllerPort: opts.controllerPort,
    dataDir: opts.dataDir,
    logFile: files.logFile,
    version: KAFKA_VERSION,
  };
  return {
    info,
    waitUntilReady: (timeoutMs) =>
      pollUntilAnswering({
        server: 'kafka',
        what: `a metadata request on ${brokers[0]}`,
        proc,
        logFile: files.logFile,
        timeoutMs,
        intervalMs: 500,
        answers: () => kafkaAnswers(brokers, 2_000, probeSsl),
      }),
  };
}

/** Launches the broker and waits until it answers a metadata request. */
export async function startKafkaServer(opts: KafkaServerOptions, timeoutMs = 120_000): Promise<KafkaServerInfo> {
  const launched = await launchKafkaServer(opts);
  await launched.waitUntilReady(timeoutMs);
  return launched.info;
}
