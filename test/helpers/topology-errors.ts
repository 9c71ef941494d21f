import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { builtinProcessors } from '../../src/stages/builtin';
import { repoRoot } from '../../src/stack/paths';
import { loadTopology } from '../../src/stages/load-topology';
import { ConfigErrors } from '../../src/util/errors';
import { FRAUD_TOPOLOGY } from '../../examples/fraud/topologies';

/** The fraud topology (the fraud example's: it needs examples/fraud/schemas). */
export const DEMO_TOPOLOGY = FRAUD_TOPOLOGY;
export const LOAD_OPTIONS = { registry: builtinProcessors(), baseDir: repoRoot() };

/** Writes a modified copy of the demo topology and returns the ConfigErrors message loading it gives. */
export function topologyErrorFor(edit: (doc: any) => void): string {
  const doc = parse(fs.readFileSync(DEMO_TOPOLOGY, 'utf8'));
  edit(doc);
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'topo-')), 'bad.yaml');
  fs.writeFileSync(tmp, stringify(doc));
  try {
    loadTopology(tmp, LOAD_OPTIONS);
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    return err.message;
  }
  throw new Error('expected the topology to be rejected');
}
