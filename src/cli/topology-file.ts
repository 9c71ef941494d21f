import { UsageError } from './options';
import { loadTopology } from '../stages/load-topology';
import type { LoadedTopology } from '../topology/spec';

export const DEFAULT_TOPOLOGY = 'topologies/fraud-detection.yaml';

/**
 * Loads and fully validates a topology file with the built-in processors and its plugins; schemas/
 * and models resolve from the topology's base directory (src/stages/load-topology.ts topologyBaseDir).
 */
export function loadTopologyFile(file: string): LoadedTopology {
  return loadTopology(file);
}

/** The one convention: `--topology FILE` (default the shipped topology). */
export const TOPOLOGY_FLAGS = '--topology <file>';
export const TOPOLOGY_HELP = `topology file (default ${DEFAULT_TOPOLOGY})`;
/** Help of the positional form kept on the commands that had it. */
export const POSITIONAL_TOPOLOGY_HELP = 'topology file (deprecated form of --topology)';

/** The topology named by --topology or by the deprecated positional argument; both at once must agree. */
export function chosenTopology(positional: string | undefined, flag: string | undefined): string {
  if (positional && flag && positional !== flag) throw new UsageError(`topology given twice: '${positional}' and --topology '${flag}'; use --topology only`);
  return flag ?? positional ?? DEFAULT_TOPOLOGY;
}
