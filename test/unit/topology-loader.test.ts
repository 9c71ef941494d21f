import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTopology, TOPOLOGY_SECTIONS } from '../../src/stages/load-topology';
import { jsonPointerToPath } from '../../src/topology/loader';
import { builtinProcessors } from '../../src/stages/builtin';
import { repoRoot } from '../../src/stack/paths';
import { editorSchema } from '../../src/topology/schema';
import { definitionsFileSchema } from '../../src/features/declarative/spec';

import { DEMO_TOPOLOGY, LOAD_OPTIONS, topologyErrorFor } from '../helpers/topology-errors';
const file = DEMO_TOPOLOGY;
const options = LOAD_OPTIONS;

const errorFor = topologyErrorFor;

describe('topology loader', () => {
  it('accepts the demo topology', () => {
    const t = loadTopology(file, options);
    expect(t.spec.stages.map((s) => s.name)).toEqual(['extract', 'score']);
  });

  it('names the path of a wrongly typed processor config field', () => {
    expect(errorFor((d) => (d.stages[1].config.threshold = 'high'))).toContain('stages[1].config.threshold');
  });

  it('names a missing required field', () => {
    expect(errorFor((d) => delete d.stages[1].config.model.version)).toMatch(/stages\[1\]\.config\.model\.version: is required/);
  });

  it('names an unknown field', () => {
    expect(errorFor((d) => (d.stages[0].inptu = {}))).toMatch(/stages\[0\]\.inptu: is not a known field/);
  });

  it('takes fetch tuning (consumer.minBytes, consumer.maxWaitTimeMs) and names the path of a bad value', () => {
    expect(errorFor((d) => (d.stages[0].consumer = { minBytes: 0 }))).toMatch(/stages\[0\]\.consumer\.minBytes: /);
    const both = errorFor((d) => (d.stages[1].consumer = { minBytes: 65536, maxWaitTimeMs: -1 }));
    expect(both).toMatch(/stages\[1\]\.consumer\.maxWaitTimeMs: /);
    expect(both).not.toContain('minBytes');
  });

  it('accepts shared transactions (exactly-once v2) and names the path of a wrong or contradictory setting', () => {
    expect(errorFor((d) => {
      d.stages[0].transactions = 'shared';
      d.stages[1].transactions = 'per-stage';
    })).toMatch(/stages\[1\]\.transactions: /);
    const bad = errorFor((d) => {
      d.stages[0].transactions = 'shared';
      d.stages[1].transactions = 'shared';
      d.stages[1].delivery = 'at-least-once';
    });
    expect(bad).toMatch(/stages\[1\]\.transactions: 'shared' transactions need delivery: exactly-once/);
    expect(bad).not.toContain('stages[0]');
  });

  it('accepts commit.sendAsProcessed on an exactly-once stage and names its path where it cannot apply', () => {
    const t = loadTopology(file, options);
    expect(t.spec.stages[0].commit?.sendAsProcessed).toBeUndefined();
    expect(errorFor((d) => (d.stages[1].commit = { sendAsProcessed: 'yes' }))).toMatch(/stages\[1\]\.commit\.sendAsProcessed: /);
    expect(errorFor((d) => {
      d.stages[1].delivery = 'at-least-once';
      d.stages[1].commit = { sendAsProcessed: true };
    })).toMatch(/stages\[1\]\.commit\.sendAsProcessed: only for exactly-once stages with shared transactions: at-least-once stages always send/);
    expect(errorFor((d) => {
      d.stages[0].transactions = 'per-partition';
      d.stages[0].commit = { sendAsProcessed: true };
    })).toMatch(/stages\[0\]\.commit\.sendAsProcessed: only for exactly-once stages with shared transactions: per-partition/);
  });

  it('names the path of commit.readerWaitMs where it is out of range or cannot apply (accepted: the shared-transactions integration test)', () => {
    expect(errorFor((d) => (d.stages[0].commit = { readerWaitMs: -1 }))).toMatch(/stages\[0\]\.commit\.readerWaitMs: /);
    expect(errorFor((d) => (d.stages[0].commit = { readerWaitMs: 5000 }))).toMatch(/stages\[0\]\.commit\.readerWaitMs: /);
    expect(errorFor((d) => {
      d.stages[1].delivery = 'at-least-once';
      d.stages[1].commit = { readerWaitMs: 20 };
    })).toMatch(/stages\[1\]\.commit\.readerWaitMs: only for exactly-once stages with shared transactions \(this stage is at-least-once\)/);
    expect(errorFor((d) => {
      d.stages[0].transactions = 'per-partition';
      d.stages[0].commit = { readerWaitMs: 20 };
    })).toMatch(/stages\[0\]\.commit\.readerWaitMs: only for exactly-once stages with shared transactions \(this stage is per-partition\)/);
  });

  it('rejects a stage reading an undeclared topic', () => {
    expect(errorFor((d) => (d.stages[0].input.topic = 'nope'))).toMatch(/stages\[0\]\.input\.topic: topic 'nope' is not declared/);
  });

  it('rejects a topic whose schema does not fit the processor', () => {
    expect(errorFor((d) => (d.stages[1].input.topic = 'fraud.transactions'))).toMatch(/stages\[1\]\.input\.topic: processor 'onnx_inference' needs schema 'feature-vector'/);
  });

  it('rejects a model version that does not exist', () => {
    expect(errorFor((d) => (d.stages[1].config.model.version = '99'))).toMatch(/stages\[1\]\.config\.model: .*model card not found/);
  });

  it('rejects an unknown processor and a missing schema', () => {
    const msg = errorFor((d) => {
      d.stages[0].processor = 'magic';
      d.topics[0].schema = 'nope';
    });
    expect(msg).toMatch(/stages\[0\]\.processor: unknown processor 'magic'/);
    expect(msg).toMatch(/topics\[0\]\.schema: no schema 'nope'/);
  });

  it('converts JSON pointers to readable paths', () => {
    expect(jsonPointerToPath('/stages/1/config/model', 'version')).toBe('stages[1].config.model.version');
    expect(jsonPointerToPath('')).toBe('');
  });

  it('keeps topologies/feature-definitions.schema.json in sync with the definitions format', () => {
    const committed = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'topologies/feature-definitions.schema.json'), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...definitionsFileSchema })));
  });

  it('keeps topologies/topology.schema.json in sync with the registered processors', () => {
    const committed = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'topologies/topology.schema.json'), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(editorSchema(builtinProcessors().all(), TOPOLOGY_SECTIONS))));
  });
});
