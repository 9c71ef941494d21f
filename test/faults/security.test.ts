import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { createKafka, kafkaSecurityFromEnv } from '../../src/kafka/client';
import type { Prediction } from '../../src/client/generated/avro-types';
import { Pipeline } from '../../src/stages/pipeline';
import { DedicatedKafka } from '../helpers/dedicated-kafka';
import { CLI, faultTopologyFile } from '../helpers/processes';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { repoRoot } from '../../src/stack/paths';
import { fraudSchemas } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

describe('Kafka SASL/SCRAM against a real broker configured for it', () => {
  const adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  const alicePassword = `alice-${Math.random().toString(36).slice(2)}`;
  let broker: DedicatedKafka;
  const saved = { ...process.env };

  beforeAll(async () => {
    broker = await DedicatedKafka.start({ scramUsers: { admin: adminPassword, alice: alicePassword } });
  });
  afterAll(async () => {
    process.env = saved;
    await broker?.destroy();
  });

  it('runs the topology with credentials from env and a password file; the password never reaches the logs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-sasl-'));
    const passwordFile = path.join(dir, 'password');
    fs.writeFileSync(passwordFile, `${alicePassword}\n`, { mode: 0o600 });
    const env = { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD_FILE: passwordFile };
    Object.assign(process.env, env);
    const security = kafkaSecurityFromEnv(env);
    expect(security.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'alice', password: alicePassword });

    const suffix = uniqueSuffix();
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix);
    const local = { ...endpoints, brokers: broker.brokers };
    const pipeline = await Pipeline.start({ topology, endpoints: local });
    try {
      const kafka = createKafka({ clientId: 'sasl-test', brokers: broker.brokers, security });
      const producer = new TopicProducer({ ...local, kafka, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      const g = new TransactionGenerator({ seed: 9 });
      await producer.send(Array.from({ length: 100 }, () => g.next().tx));
      await producer.disconnect();
      const seen: Prediction[] = [];
      const consumer = new TopicConsumer({ ...local, kafka, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `sasl-verify-${suffix}` });
      await consumer.run((p) => void seen.push(p));
      await waitFor(() => seen.length >= 100, 60000, () => `${seen.length} predictions`);
      await consumer.stop();
      expect(new Set(seen.map((p) => p.key)).size).toBe(100);
    } finally {
      await pipeline.stop();
    }

    // The CLI with a wrong password fails on authentication, and prints no password.
    const file = faultTopologyFile(uniqueSuffix());
    const res = spawnSync(process.execPath, [CLI, 'topics', 'create', file], {
      cwd: repoRoot(),
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, KAFKA_BROKERS: broker.brokers.join(','), KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: 'wrong-password', TRIBUTARY_LOG_LEVEL: 'debug' },
    });
    expect(res.status).toBe(1);
    expect(`${res.stdout}${res.stderr}`).toMatch(/SASL|[Aa]uthentication/);
    expect(`${res.stdout}${res.stderr}`).not.toContain('wrong-password');
    expect(`${res.stdout}${res.stderr}`).not.toContain(alicePassword);
  });

  it('refuses a client without credentials', async () => {
    const admin = createKafka({ clientId: 'no-sasl', brokers: broker.brokers, security: {} }).admin();
    await expect(admin.connect().then(() => admin.listTopics())).rejects.toThrow();
    await admin.disconnect().catch(() => undefined);
  });
});
