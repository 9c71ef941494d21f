/**
 * The fraud example's input schema (schemas/transaction.avsc beside this file) and its generated
 * record types (generated/avro-types.ts, by `npm run gen:types`): what the example's producer, the
 * demo and the tests that exercise the fraud domain use. The engine never imports them; the fraud
 * topologies name the folder in their `schemas` list.
 */
import * as path from 'node:path';
import { schemaSet, type SchemaSet } from '../../src/client/schema-set';
import { SchemaCatalog, type LocalSchema } from '../../src/kafka/avro-schemas';
import { repoRoot } from '../../src/util/paths';
import type { SchemaTypes } from './generated/avro-types';

export type { Transaction, SchemaTypes as FraudSchemaTypes } from './generated/avro-types';

/** examples/fraud/schemas, from the source tree and from the compiled runner (dist-examples/) alike. */
export const FRAUD_SCHEMAS_DIR = path.join(repoRoot(), 'examples', 'fraud', 'schemas');

/** For the typed client: `new TopicProducer({ ..., schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId })`. */
export const fraudSchemas: SchemaSet<SchemaTypes> = schemaSet<SchemaTypes>(FRAUD_SCHEMAS_DIR);

/** The fraud input schema (name, file, Avro type, text). */
export function transactionSchema(): LocalSchema {
  return new SchemaCatalog(FRAUD_SCHEMAS_DIR, []).get('transaction');
}
