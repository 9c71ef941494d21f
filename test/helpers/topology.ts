import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { validateTopology } from '../../src/stages/load-topology';
import type { LoadedTopology, TopologySpec } from '../../src/topology/spec';
import { builtinProcessors } from '../../src/stages/builtin';
import { repoRoot } from '../../src/stack/paths';
import type { PipelineEndpoints } from '../../src/stages/pipeline';

/** Endpoints the jest global setup resolved (real servers). */
export function testEndpoints(): PipelineEndpoints {
  const brokers = process.env.KAFKA_BROKERS;
  const schemaRegistryUrl = process.env.SCHEMA_REGISTRY_URL;
  if (!brokers || !schemaRegistryUrl) throw new Error('integration tests need the global setup to have started the stack');
  return { brokers: brokers.split(','), schemaRegistryUrl, redisUrl: process.env.REDIS_URL };
}

/**
 * Loads a topology file with every topic renamed `<name>.<suffix>` (and the name suffixed), so
 * each test gets fresh topics and consumer groups on a shared broker. `edit` may change the spec.
 */
export function isolatedTopology(file: string, suffix: string, edit?: (spec: TopologySpec) => void): LoadedTopology {
  const abs = path.resolve(repoRoot(), file);
  const spec = parse(fs.readFileSync(abs, 'utf8')) as TopologySpec;
  const rename = (t: string) => `${t}.${suffix}`;
  spec.name = `${spec.name}-${suffix}`;
  spec.topics.forEach((t) => (t.name = rename(t.name)));
  spec.deadLetter.topic = rename(spec.deadLetter.topic);
  spec.stages.forEach((s) => {
    s.input.topic = rename(s.input.topic);
    s.output.topic = rename(s.output.topic);
  });
  edit?.(spec);
  return validateTopology(spec, abs, { registry: builtinProcessors(), baseDir: repoRoot() });
}

export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Polls `done` until true or the deadline; throws with `describe()` on timeout. */
export async function waitFor(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
