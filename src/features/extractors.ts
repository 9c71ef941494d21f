import type { Transaction } from '../client/generated/avro-types';
import { FraudFeatureExtractor, FRAUD_FEATURE_SET, loadGeneratorSpec } from './fraud-extractor';

/** A stateless feature extractor: one input event -> one vector of named features. */
export interface FeatureExtractor<E = Transaction> {
  readonly set: string;
  readonly version: number;
  readonly names: readonly string[];
  extract(event: E): number[];
}

/** Feature sets known to the extraction stage, by name. */
const factories: Record<string, (options: { specFile?: string }) => FeatureExtractor> = {
  [FRAUD_FEATURE_SET]: ({ specFile }) => {
    const inner = new FraudFeatureExtractor(loadGeneratorSpec(specFile));
    return { set: FRAUD_FEATURE_SET, version: inner.version, names: inner.names, extract: (tx) => inner.extract(tx) };
  },
};

export function featureSetNames(): string[] {
  return Object.keys(factories).sort();
}

export function createExtractor(set: string, options: { specFile?: string } = {}): FeatureExtractor {
  const factory = factories[set];
  if (!factory) throw new Error(`unknown feature set '${set}' (known: ${featureSetNames().join(', ')})`);
  return factory(options);
}
