/**
 * The fraud topologies. They stay in topologies/ (the CLI's default `--topology`, the README's and
 * the demo's commands) but belong to this example: they name its schemas folder in `schemas`, so
 * they load only where this folder exists. Tests that use them as fixtures import these constants,
 * which is how scripts/check-without-example.sh knows to leave them out along with the folder.
 */
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';

export const FRAUD_TOPOLOGY = path.join(repoRoot(), 'topologies', 'fraud-detection.yaml');
export const FRAUD_DEMO_TOPOLOGY = path.join(repoRoot(), 'topologies', 'fraud-demo.yaml');
