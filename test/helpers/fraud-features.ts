import * as path from 'node:path';
import { loadFeatureDefinitions, type DeclarativeFeatureSet } from '../../src/features/declarative/load';
import { repoRoot } from '../../src/stack/paths';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';

/** The fraud models' declarative stateless features (feature set fraud_txn). */
export const FRAUD_TXN_FILE = path.join(repoRoot(), 'models/fraud/features/fraud_txn.yaml');

/** fraud_txn compiled against the fraud example's input schema (examples/fraud/schemas/transaction.avsc). */
export function fraudFeatures(): DeclarativeFeatureSet {
  return loadFeatureDefinitions(FRAUD_TXN_FILE, { schemaSources: [FRAUD_SCHEMAS_DIR] });
}
