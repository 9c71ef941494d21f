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

/**
 * Waves of events for order-sensitive equivalence tests: taken in event-time order, no entity (of
 * any of `keys`) twice in one wave and an entity's next event in a later wave, so each entity's
 * events are sent in event-time order, one wave apart.
 */
export function entityWaves<T>(events: readonly T[], size: number, time: (e: T) => number, keys: ReadonlyArray<(e: T) => string>): T[][] {
  const sorted = [...events].sort((a, b) => time(a) - time(b));
  const out: T[][] = [];
  const lastWave = keys.map(() => new Map<string, number>());
  let open = 0;
  for (const e of sorted) {
    let w = Math.max(open, ...keys.map((k, i) => (lastWave[i].get(k(e)) ?? -1) + 1));
    while ((out[w]?.length ?? 0) >= size) w++;
    (out[w] ??= []).push(e);
    keys.forEach((k, i) => lastWave[i].set(k(e), w));
    while ((out[open]?.length ?? 0) >= size) open++;
  }
  return out.filter((w) => w.length > 0);
}
