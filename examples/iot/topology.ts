/**
 * Loads examples/iot/topology.yaml with the engine's own loader (built-in processors, feature checks).
 * The topology's base directory is this example folder (its schemas/, models and feature definitions
 * live here; the shared schemas come from the package), as `tributary validate|run` finds it. `suffix` renames every topic
 * and the topology (hence its consumer groups and streaming state namespace) so tests and repeated
 * runs on a shared broker never meet.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { validateTopology } from '../../src/stages/load-topology';
import type { LoadedTopology, TopologySpec } from '../../src/topology/spec';
import { EXAMPLE_DIR } from './produce';

export const TOPOLOGY_FILE = path.join(EXAMPLE_DIR, 'topology.yaml');

export function loadIotTopology(options: { suffix?: string; edit?: (spec: TopologySpec) => void } = {}): LoadedTopology {
  const spec = parse(fs.readFileSync(TOPOLOGY_FILE, 'utf8')) as TopologySpec;
  if (options.suffix) {
    const rename = (t: string) => `${t}.${options.suffix}`;
    spec.name = `${spec.name}-${options.suffix}`;
    spec.topics.forEach((t) => (t.name = rename(t.name)));
    spec.deadLetter.topic = rename(spec.deadLetter.topic);
    spec.stages.forEach((s) => {
      s.input.topic = rename(s.input.topic);
      s.output.topic = rename(s.output.topic);
    });
  }
  options.edit?.(spec);
  return validateTopology(spec, TOPOLOGY_FILE, { baseDir: EXAMPLE_DIR });
}

/** The roles the demo and the tests drive: input, features side output, predictions, dead letters. */
export function iotRoles(topology: LoadedTopology): { input: string; features: string; predictions: string; dlq: string } {
  const [extract, score] = topology.spec.stages;
  return { input: extract.input.topic, features: extract.output.topic, predictions: score.output.topic, dlq: topology.spec.deadLetter.topic };
}
