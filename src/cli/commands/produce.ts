/**
 * `tributary produce --topology F --topic T FILE`: publishes JSON-lines events to one of the
 * topology's topics, Avro-encoded with the topic's schema (the pipeline's schemas/, then the
 * package's) through the registry — how a scaffolded pipeline (`tributary init`) gets its first events.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { topologySchemas } from '../../kafka/avro-schemas';
import { AvroEncoder } from '../../kafka/avro-serde';
import { createKafka, idempotentProducer } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { resolveEndpoints } from '../../util/endpoints';
import { fieldGetter, parseFieldPath } from '../../util/field-path';
import { DEFAULT_TOPOLOGY, loadTopologyFile, TOPOLOGY_FLAGS, TOPOLOGY_HELP } from '../topology-file';
import { UsageError, wantsJson } from '../options';

/** One parsed line that does not fit the topic's schema: line number and the bad fields. */
function lineProblems(type: { isValid(v: unknown, o: { errorHook: (p: string[]) => void }): boolean }, value: unknown): string[] {
  const paths: string[] = [];
  type.isValid(value, { errorHook: (p: string[]) => paths.push(p.join('.') || '(root)') });
  return paths;
}

export function registerProduceCommands(program: Command): void {
  program
    .command('produce')
    .description("publish JSON-lines events to a topology's topic (Avro, the topic's schema); every line is checked before any is sent")
    .argument('<file>', 'JSON lines, one event per line (- for stdin)')
    .requiredOption('--topic <name>', 'topic declared in the topology')
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .option('--key <field>', 'message key: this field of each event (field path); default no key')
    .action(async (file: string, opts: { topic: string; topology?: string; key?: string }, cmd: Command) => {
      const topology = loadTopologyFile(opts.topology ?? DEFAULT_TOPOLOGY);
      const topic = topology.spec.topics.find((t) => t.name === opts.topic);
      if (!topic) throw new UsageError(`--topic: no topic '${opts.topic}' in ${topology.file} (topics: ${topology.spec.topics.map((t) => t.name).join(', ')})`);
      if (opts.key) {
        try {
          parseFieldPath(opts.key);
        } catch (err) {
          throw new UsageError(`--key: ${(err as Error).message}`);
        }
      }
      const schema = topologySchemas(topology).get(topic.schema);
      const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
      const events: unknown[] = [];
      const problems: string[] = [];
      text.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (err) {
          problems.push(`line ${i + 1}: not JSON (${(err as Error).message})`);
          return;
        }
        const bad = lineProblems(schema.type as never, value);
        if (bad.length > 0) problems.push(`line ${i + 1}: does not match schema '${topic.schema}' at ${bad.join(', ')}`);
        else events.push(value);
      });
      if (problems.length > 0) throw new UsageError(`${file}: nothing sent:\n  ${problems.slice(0, 20).join('\n  ')}`);
      const endpoints = resolveEndpoints();
      const kafka = createKafka({ clientId: 'tributary-produce', brokers: topology.spec.kafka?.brokers ?? endpoints.brokers });
      const encoder = new AvroEncoder<unknown>(new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }), schema, topic.name);
      const id = await encoder.id();
      const key = opts.key ? fieldGetter(opts.key) : undefined;
      const producer = idempotentProducer(kafka, { name: `produce:${topic.name}` });
      await producer.connect();
      try {
        await producer.send({
          topic: topic.name,
          messages: events.map((e) => ({ key: key ? String(key(e) ?? '') : null, value: encoder.encodeWithId(id, e) })),
        });
      } finally {
        await producer.disconnect();
      }
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ topic: topic.name, sent: events.length })}\n`);
      else process.stdout.write(`sent ${events.length} events to ${topic.name}\n`);
    });
}
