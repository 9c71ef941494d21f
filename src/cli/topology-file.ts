import { loadTopology } from '../topology/loader';
import type { LoadedTopology } from '../topology/spec';
import { builtinProcessors } from '../stages/builtin';
import { repoRoot } from '../stack/paths';

export const DEFAULT_TOPOLOGY = 'topologies/fraud-detection.yaml';

/** Loads and fully validates a topology file with the built-in processors; schemas/models resolve from the repo root. */
export function loadTopologyFile(file: string): LoadedTopology {
  return loadTopology(file, { registry: builtinProcessors(), baseDir: repoRoot() });
}
