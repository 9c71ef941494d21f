import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import Redis from 'ioredis';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { createKafka, kafkaSecurityFromEnv } from '../../src/kafka/client';
import { repoRoot } from '../../src/stack/paths';
import { generateTlsMaterial, type TlsMaterial } from '../../src/stack/tls';
import { Pipeline } from '../../src/stages/pipeline';
import { createRedis } from '../../src/util/redis';
import { AuthenticatingProxy, DedicatedTlsServers } from '../helpers/dedicated-tls';
import { CLI, faultTopologyFile } from '../helpers/processes';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas } from '../../examples/fraud/schemas';

const shared = testEndpoints();

/** Kafka over SSL, Redis over TLS and a registry that enforces basic auth, all at once, with real servers. */
describe('TLS to Kafka and Redis, basic auth to the schema registry', () => {
  const saved = { ...process.env };
  const registryUser = 'tributary';
  const registryPassword = `pw-${Math.random().toString(36).slice(2)}`;
  let servers: DedicatedTlsServers;
  let proxy: AuthenticatingProxy;
  /** A CA that did not sign the servers' certificates. */
  let rogue: TlsMaterial;
  let scratch: string;

  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-tls-test-'));
    [servers, proxy, rogue] = await Promise.all([
      DedicatedTlsServers.start(),
      AuthenticatingProxy.start(shared.schemaRegistryUrl, registryUser, registryPassword),
      generateTlsMaterial(path.join(scratch, 'rogue')),
    ]);
  });
  afterEach(() => {
    process.env = { ...saved };
  });
  afterAll(async () => {
    process.env = saved;
    await Promise.allSettled([servers?.destroy(), proxy?.stop()]);
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('runs the demo topology over TLS to both servers, authenticated to the registry: every prediction arrives', async () => {
    const env = {
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: servers.material.caFile,
      REDIS_TLS_CA_FILE: servers.material.caFile,
      SCHEMA_REGISTRY_USERNAME: registryUser,
      SCHEMA_REGISTRY_PASSWORD: registryPassword,
    };
    Object.assign(process.env, env);
    expect(servers.redisUrl).toMatch(/^rediss:\/\//);
    const endpoints = { brokers: servers.brokers, schemaRegistryUrl: proxy.url, redisUrl: servers.redisUrl };

    const suffix = uniqueSuffix();
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix);
    const pipeline = await Pipeline.start({ topology, endpoints });
    try {
      const kafka = createKafka({ clientId: 'tls-test', brokers: servers.brokers, security: kafkaSecurityFromEnv(env) });
      const producer = new TopicProducer({ ...endpoints, kafka, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      const g = new TransactionGenerator({ seed: 15 });
      await producer.send(Array.from({ length: 100 }, () => g.next().tx));
      await producer.disconnect();
      const seen: Prediction[] = [];
      const consumer = new TopicConsumer({ ...endpoints, kafka, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `tls-verify-${suffix}` });
      await consumer.run((p) => void seen.push(p));
      await waitFor(() => seen.length >= 100, 60_000, () => `${seen.length} predictions`);
      await consumer.stop();
      expect(new Set(seen.map((p) => p.key)).size).toBe(100);
    } finally {
      await pipeline.stop();
    }

    // The streaming features' state went to the TLS Redis (read back over TLS with the same CA).
    const redis = createRedis(servers.redisUrl, { lazyConnect: true }, env);
    try {
      await redis.connect();
      expect(await redis.dbsize()).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
    // Every registry call went through the proxy with the credentials; none was refused.
    expect(proxy.accepted).toBeGreaterThan(0);
    expect(proxy.refused).toBe(0);
  });

  it('the servers really require TLS: a plaintext Redis client gets no answer on the TLS port', async () => {
    const plain = new Redis(servers.redisUrl.replace(/^rediss:/, 'redis:'), { lazyConnect: true, connectTimeout: 2_000, commandTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    plain.on('error', () => undefined);
    try {
      await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    } finally {
      plain.disconnect();
    }
  });

  it('a Kafka CA that did not sign the broker fails the CLI clearly, on the certificate', () => {
    const res = spawnSync(process.execPath, [CLI, 'topics', 'create', faultTopologyFile(uniqueSuffix())], {
      cwd: repoRoot(),
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, KAFKA_BROKERS: servers.brokers.join(','), KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: rogue.caFile },
    });
    expect(res.status).toBe(1);
    expect(`${res.stdout}${res.stderr}`).toMatch(/certificate/i);
  });

  it('a Redis CA that did not sign the server fails on the certificate', async () => {
    const redis = createRedis(servers.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }, { REDIS_TLS_CA_FILE: rogue.caFile });
    // ioredis rejects connect() with "Connection is closed"; the reason is the 'error' event's.
    const errors: Error[] = [];
    redis.on('error', (err: Error) => errors.push(err));
    try {
      await expect(redis.connect()).rejects.toThrow();
      expect(errors.map((e) => e.message).join('; ')).toMatch(/certificate/i);
    } finally {
      redis.disconnect();
    }
  });

  it('a wrong registry password fails the pipeline start with the 401', async () => {
    Object.assign(process.env, { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: servers.material.caFile, REDIS_TLS_CA_FILE: servers.material.caFile, SCHEMA_REGISTRY_USERNAME: registryUser, SCHEMA_REGISTRY_PASSWORD: 'wrong-password' });
    const refusedBefore = proxy.refused;
    const topology = isolatedTopology('topologies/fraud-detection.yaml', uniqueSuffix());
    const err = await Pipeline.start({ topology, endpoints: { brokers: servers.brokers, schemaRegistryUrl: proxy.url, redisUrl: servers.redisUrl } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/401/);
    expect((err as Error).message).toContain('check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD');
    expect((err as Error).message).not.toContain('wrong-password');
    expect(proxy.refused).toBeGreaterThan(refusedBefore);
  });
});
