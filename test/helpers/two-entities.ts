import type { StreamingFeatureSetSpec } from '../../src/features/spec';
import type { TopologySpec } from '../../src/topology/spec';

/** Per-merchant windows over the transaction stream: the demo's card_activity, kept by merchant. */
export function merchantActivitySet(): StreamingFeatureSetSpec {
  return {
    name: 'merchant_activity',
    kind: 'windowed_aggregation',
    version: 1,
    entity: 'merchantId',
    config: { allowedLatenessMs: 172800000, onLate: 'ignore' },
    fields: [
      { name: 'merchant_txn_count_24h', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 86400000 } },
      { name: 'merchant_amount_sum_24h', type: 'double', default: 0, aggregation: 'sum', of: 'amount_usd', window: { type: 'hopping', sizeMs: 86400000, hopMs: 3600000 } },
      { name: 'merchant_distinct_cards_24h', type: 'long', default: 0, aggregation: 'distinct_count', of: 'cardId', window: { type: 'sliding', sizeMs: 86400000 } },
      { name: 'merchant_ms_since_prev', type: 'long', default: -1, aggregation: 'time_since_prev', window: { type: 'sliding', sizeMs: 604800000 } },
    ],
  } as StreamingFeatureSetSpec;
}

/**
 * The demo topology's extract stage with card AND merchant windows in one vector (no score stage:
 * no model is trained on it). `features` gives the vector's order; the default puts the merchant
 * windows between the card windows and the merchant_risk batch set, so the finished vector is not
 * simply the steps' outputs appended.
 */
export function twoEntityExtract(spec: TopologySpec, features = ['card_profile', 'card_activity', 'merchant_activity', 'merchant_risk']): void {
  const sections = spec as TopologySpec & { features: { sets: unknown[] } };
  sections.features.sets.push(merchantActivitySet());
  spec.stages = spec.stages.filter((s) => s.name === 'extract');
  const extract = spec.stages[0];
  extract.config = { ...extract.config, vector: { set: 'fraud_two_entities', version: 1 }, features };
}
