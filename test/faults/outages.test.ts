import * as fs from 'node:fs';
import * as path from 'node:path';
import { TopicProducer } from '../../src/client/topic-producer';

import { produceDemoEvents } from '../../examples/fraud/produce';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { repoRoot, stateFilePath } from '../../src/stack/paths';
import { DedicatedKafka } from '../helpers/dedicated-kafka';
import { committedKeys, exactlyOnceAgainstInput, faultTopologyFile, generatedKeys, inputKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';
import { FRAUD_SCHEMAS_DIR, fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

describe('outages: the pipeline pauses, recovers by itself, loses and duplicates nothing', () => {
  it('survives a broker restart mid-stream', async () => {
    const broker = await DedicatedKafka.start();
    const local = { ...endpoints, brokers: broker.brokers };
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix);
    const proc = new StageProcess(file, [], { KAFKA_BROKERS: broker.brokers.join(',') });
    try {
      await proc.waitForLog('pipeline running', 90000);
      const count = 1500;
      const seed = 505;
      const producing = produceDemoEvents({ ...local, topic: `fraud.transactions.${suffix}`, count, rate: 150, seed });
      await new Promise((r) => setTimeout(r, 4000));
      await broker.restart(5000);
      const back = Date.now();
      await producing;
      const input = await inputKeys(local.brokers, `fraud.transactions.${suffix}`, count);
      expect(new Set(input)).toEqual(new Set(generatedKeys(seed, count))); // every generated event reached the input topic
      const seen = await committedKeys(local, `fraud.predictions.${suffix}`, count, 150000, suffix);
      const { lost, duplicated } = exactlyOnceAgainstInput(input, seen);
      recordFault({ scenario: 'broker restart mid-stream (5 s down)', events: count, lost, duplicated, recoverySeconds: (Date.now() - back) / 1000 });
      expect(proc.running()).toBe(true);
      expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
    } finally {
      fs.writeFileSync(path.join(repoRoot(), '.tributary', 'broker-restart-stage.log'), proc.output);
      await proc.stop();
      await broker.destroy();
    }
  });

  it('pauses on a new writer schema while the registry is unavailable, and resumes when it is back', async () => {
    const stateFile = stateFilePath();
    if (!fs.existsSync(stateFile)) return; // external servers: we cannot freeze their registry
    const registryPid = (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { registry: { pid: number } }).registry.pid;
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix);
    const proc = new StageProcess(file);
    const topic = `fraud.transactions.${suffix}`;
    try {
      await proc.waitForLog('pipeline running', 90000);
      // A producer on a newer (compatible) version of the schema, registered before the outage but never seen by the pipeline.
      const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
      const v2 = JSON.parse(catalog.get('transaction').text);
      v2.fields.push({ name: 'channel', type: 'string', default: 'web' });
      const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
      const v2Id = await registry.register(`${topic}-v2-value`, JSON.stringify(v2));
      const producer = new TopicProducer({ ...endpoints, topic, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      const g = new TransactionGenerator({ seed: 606, startTime: 0 });
      const before: Transaction[] = Array.from({ length: 200 }, () => g.next().tx);
      await producer.send(before);

      process.kill(registryPid, 'SIGSTOP');
      const frozenAt = Date.now();
      let resumed = false;
      try {
        const during: Transaction[] = Array.from({ length: 200 }, () => g.next().tx);
        await producer.send(during); // cached schema id: producing needs no registry
        // One record written with the new schema id: decoding it needs the registry.
        const avro = await import('avsc');
        const newer = { ...g.next().tx, channel: 'pos' };
        const body = avro.Type.forSchema(v2).toBuffer(newer);
        const framed = Buffer.concat([Buffer.from([0, (v2Id >>> 24) & 255, (v2Id >>> 16) & 255, (v2Id >>> 8) & 255, v2Id & 255]), body]);
        const { createKafka } = await import('../../src/kafka/client');
        const { sendRaw } = await import('../helpers/send-raw');
        await sendRaw(createKafka({ clientId: 'outage-raw', brokers: endpoints.brokers }), { topic, messages: [{ key: newer.transactionId, value: framed }] });
        await new Promise((r) => setTimeout(r, 15000));
        expect(proc.running()).toBe(true);
        // A real fault is reported at ERROR (retriable broker answers never are).
        expect(proc.output).toMatch(/"level":50[^\n]*processing is failing/);
        process.kill(registryPid, 'SIGCONT');
        resumed = true;
        const expected = [...before, ...during, newer].map((t) => t.transactionId);
        const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, expected.length, 120000, suffix);
        const { lost, duplicated } = lossAndDuplicates(expected, seen);
        recordFault({ scenario: 'registry unavailable 15 s (new writer schema pending)', events: expected.length, lost, duplicated, recoverySeconds: (Date.now() - frozenAt) / 1000 - 15 });
        expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
      } finally {
        if (!resumed) process.kill(registryPid, 'SIGCONT');
        await producer.disconnect();
      }
    } finally {
      await proc.stop();
    }
  });
});
