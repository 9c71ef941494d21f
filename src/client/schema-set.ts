/**
 * Typed schemas beyond the engine's own: a pipeline's or an example's input events. The typed client
 * (TopicProducer, TopicConsumer) takes a SchemaSet so that its records are typed by the set's own
 * generated SchemaTypes, while src/client/generated holds only the package's schemas/ (the engine
 * knows no domain). E.g. examples/fraud/schemas.ts: `schemaSet<FraudSchemaTypes>(FRAUD_SCHEMAS_DIR)`.
 */
import { SchemaCatalog, packageSchemasDir } from '../kafka/avro-schemas';
import type { SchemaTypes } from './generated/avro-types';

/** Where schemas are found (folders of `<name>.avsc` or single `.avsc` files) and, at compile time only, their record types `M` (name -> type). */
export interface SchemaSet<M> {
  readonly sources: readonly string[];
  /** Never set: carries `M` for type inference. */
  readonly types?: M;
}

/** A set of schema sources whose records have the types `M` (generate them with scripts/gen-types.js). */
export function schemaSet<M>(...sources: string[]): SchemaSet<M> {
  return { sources: Object.freeze([...sources]) };
}

/** Schema names usable with a set: its own and the package's. */
export type SchemaName<M> = (keyof M | keyof SchemaTypes) & string;

/** The record type of schema `S`: the set's own type first (its sources are searched first), else the package's. */
export type SchemaRecord<S extends string, M = {}> = S extends keyof M ? M[S] : S extends keyof SchemaTypes ? SchemaTypes[S] : never;

/** The catalog a typed client reads its schema from: the set's sources, then the package's schemas/. */
export function schemaCatalog(set?: SchemaSet<unknown>): SchemaCatalog {
  const [first = packageSchemasDir(), ...rest] = set?.sources ?? [];
  return new SchemaCatalog(first, [...rest, packageSchemasDir()]);
}
