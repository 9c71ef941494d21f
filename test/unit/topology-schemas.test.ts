/**
 * Input schemas come from the topology (issue 14 item 4), with no domain assumed by the engine: the
 * topology's `schemas` list (folders or single .avsc files), the catalog built from it, the errors
 * with field paths when an entry or a schema is missing, the shadow report's events schema, and the
 * typed client over a schema that is not the package's. Domain-free: a click schema in a temp dir,
 * so this passes with every example folder deleted (scripts/check-without-example.sh).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as avro from 'avsc';
import { stringify } from 'yaml';
import type { Kafka } from 'kafkajs';
import { eventsSchemaOf } from '../../src/cli/commands/shadow';
import { schemaSet } from '../../src/client/schema-set';
import { EventValidationError, TopicProducer } from '../../src/client/topic-producer';
import { packageSchemasDir, SchemaCatalog, SchemaNotFoundError, topologySchemas } from '../../src/kafka/avro-schemas';
import type { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { writeShadowReport } from '../../src/shadow/write-report';
import { topicSchema, validateTopology } from '../../src/stages/load-topology';
import { ConfigError, ConfigErrors } from '../../src/util/errors';

interface Click {
  id: string;
  page: string;
  at: number;
}
const CLICK = {
  type: 'record', name: 'Click', namespace: 'test.clicks',
  fields: [{ name: 'id', type: 'string' }, { name: 'page', type: 'string' }, { name: 'at', type: 'long' }],
};

/** A pipeline folder without a schemas/ of its own: its event schema sits in events/click.avsc. */
function pipelineDir(): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'topo-schemas-'));
  fs.mkdirSync(path.join(base, 'events'));
  fs.writeFileSync(path.join(base, 'events', 'click.avsc'), JSON.stringify(CLICK));
  fs.writeFileSync(path.join(base, 'clicks.yaml'), stringify({ featureSet: 'clicks', version: 1, input: 'click', features: [{ name: 'at', expr: 'at' }] }));
  return base;
}

function topologyDoc(base: string, schemas?: string[]): Record<string, unknown> {
  return {
    name: 'clicks',
    ...(schemas ? { schemas } : {}),
    topics: [{ name: 'clicks', partitions: 1, schema: 'click' }, { name: 'click.features', partitions: 1, schema: 'feature-vector' }, { name: 'dlq', partitions: 1, schema: 'dead-letter' }],
    deadLetter: { topic: 'dlq' },
    stages: [{ name: 'extract', processor: 'feature_extraction', input: { topic: 'clicks' }, output: { topic: 'click.features' }, config: { featureSet: { file: path.join(base, 'clicks.yaml') } } }],
  };
}

function configErrorsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigErrors) return err.message;
    throw err;
  }
  throw new Error('expected ConfigErrors');
}

describe('input schemas from the topology', () => {
  it('finds a topic schema through `schemas` (a folder or one .avsc file), before the package\'s schemas/', () => {
    const base = pipelineDir();
    for (const entry of ['events', 'events/click.avsc']) {
      const topology = validateTopology(topologyDoc(base, [entry]), path.join(base, 'topology.yaml'), { baseDir: base });
      expect(topicSchema(topology, 'clicks').name).toBe('test.clicks.Click');
      const catalog = topologySchemas(topology);
      expect(catalog.get('click').file).toBe(path.join(base, 'events', 'click.avsc'));
      // The package's own schemas still resolve, after the topology's.
      expect(catalog.get('dead-letter').file).toBe(path.join(packageSchemasDir(), 'dead-letter.avsc'));
      expect(catalog.names()).toEqual(expect.arrayContaining(['click', 'dead-letter', 'prediction']));
    }
  });

  it('rejects a missing `schemas` entry at its path, and an unknown topic schema says where it looked', () => {
    const base = pipelineDir();
    const file = path.join(base, 'topology.yaml');
    expect(configErrorsOf(() => validateTopology(topologyDoc(base, ['events', 'nope']), file, { baseDir: base }))).toMatch(/schemas\[1\]: .*nope does not exist/);
    expect(configErrorsOf(() => validateTopology(topologyDoc(base, ['events/click.json']), file, { baseDir: base }))).toMatch(/schemas\[0\]: .*click\.json does not exist/);
    fs.writeFileSync(path.join(base, 'events', 'notes.txt'), 'x');
    expect(configErrorsOf(() => validateTopology(topologyDoc(base, ['events/notes.txt']), file, { baseDir: base }))).toMatch(/schemas\[0\]: .*notes\.txt is neither a folder nor an \.avsc file/);
    // Without the entry no default applies: the topic carrying 'click' is an error naming the folders searched.
    const msg = configErrorsOf(() => validateTopology(topologyDoc(base), file, { baseDir: base }));
    expect(msg).toMatch(/topics\[0\]\.schema: no schema 'click' \(no click\.avsc in schemas, .*schemas; a topology names the folders or files of its own schemas in `schemas`\)/);
  });

  it('topicSchema names the referring field when a topic is not declared (the backfill passes stages[i].input.topic)', () => {
    const base = pipelineDir();
    const topology = validateTopology(topologyDoc(base, ['events']), path.join(base, 'topology.yaml'), { baseDir: base });
    let err: unknown;
    try {
      topicSchema(topology, 'elsewhere', 'stages[0].input.topic');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toBe('stages[0].input.topic');
    expect((err as ConfigError).message).toMatch(/topic 'elsewhere' is not declared in topics/);
  });

  it('a catalog of single .avsc files knows only their stems; an unknown name lists what was searched', () => {
    const base = pipelineDir();
    const catalog = new SchemaCatalog(path.join(base, 'events', 'click.avsc'), []);
    expect(catalog.names()).toEqual(['click']);
    expect(catalog.has('dead-letter')).toBe(false);
    expect(() => catalog.get('dead-letter')).toThrow(SchemaNotFoundError);
    expect(() => catalog.get('dead-letter')).toThrow(/looked for dead-letter\.avsc in .*click\.avsc/);
  });
});

describe('shadow report: the events schema is given, never assumed', () => {
  const base = pipelineDir();
  const clickType = avro.Type.forSchema(CLICK as avro.Schema);
  // Nothing is read: the checks run before any topic is touched.
  const unused = {} as Kafka;
  const registry = {} as SchemaRegistryClient;
  const report = (segmentBy: string[]) =>
    writeShadowReport({ kafka: unused, registry, live: 'p', events: { topic: 'clicks', schema: clickType }, segmentBy, timeoutMs: 1, outDir: base });

  it('requires segment fields with events, each a field of the events\' schema (path segmentBy[i])', async () => {
    await expect(report([])).rejects.toThrow(/segmentBy: name the event fields to break down by/);
    await expect(report(['page', 'merchantCategory'])).rejects.toThrow(/segmentBy\[1\]: 'merchantCategory' is not a field of the events' schema test\.clicks\.Click \(fields: id, page, at\)/);
  });

  it('`--events` needs `--events-schema` (a file, or a name in `--topology`\'s schemas) or a topology declaring the topic', () => {
    expect(eventsSchemaOf({})).toBeUndefined();
    expect(() => eventsSchemaOf({ eventsSchema: 'click' })).toThrow(/--events-schema: only with --events/);
    expect(() => eventsSchemaOf({ events: 'clicks' })).toThrow(/--events: name the events' schema with --events-schema <file\.avsc>, or --topology <file>/);
    expect(eventsSchemaOf({ events: 'clicks', eventsSchema: path.join(base, 'events', 'click.avsc') })?.name).toBe('test.clicks.Click');
    const file = path.join(base, 'topology.yaml');
    // This folder has no schemas/ of its own: the base directory is the repository root, so name the entry from there.
    fs.writeFileSync(file, JSON.stringify(topologyDoc(base, [path.join(base, 'events')])));
    expect(eventsSchemaOf({ events: 'clicks', topology: file })?.name).toBe('test.clicks.Click');
    expect(() => eventsSchemaOf({ events: 'other', topology: file })).toThrow(/--events: topic 'other' is not declared in .*; name its schema with --events-schema/);
    expect(() => eventsSchemaOf({ events: 'other', eventsSchema: 'nope', topology: file })).toThrow(/--events-schema: no schema 'nope' in /);
  });
});

describe('typed client over a schema that is not the package\'s', () => {
  const base = pipelineDir();
  const common = { brokers: ['127.0.0.1:1'], schemaRegistryUrl: 'http://127.0.0.1:1', topic: 'clicks' };

  it('reads the schema from the SchemaSet and types records with its generated map', () => {
    const clicks = schemaSet<{ click: Click }>(path.join(base, 'events'));
    const producer = new TopicProducer({ ...common, schema: 'click', schemas: clicks, key: (c) => c.id });
    expect(() => producer.validate({ id: 'c1', page: 'home', at: 1 })).not.toThrow();
    let err: unknown;
    try {
      producer.validate({ id: 'c1', page: 'home', at: 'late' } as unknown as Click);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EventValidationError);
    expect((err as EventValidationError).paths).toEqual(['at']);
  });

  it('without a set only the package\'s schemas exist: no example\'s event type is built in', () => {
    expect(() => new TopicProducer({ ...common, schema: 'transaction' as 'prediction', key: () => 'k' })).toThrow(SchemaNotFoundError);
  });
});
