import type { StreamingFeatureSetSpec } from '../../src/features/spec';

/**
 * One windowed-aggregation set exercising every aggregation and window type, with small windows
 * (5 ms buckets) so random streams hit their edges; shared by the window-state unit tests and the
 * streaming integration tests, which compare against the same brute-force reference.
 */
export function activitySet(allowedLatenessMs: number, replayRetentionMs = 1e9): StreamingFeatureSetSpec {
  return {
    name: 'activity',
    kind: 'windowed_aggregation',
    version: 1,
    entity: 'cardId',
    stalenessMs: 40,
    config: { allowedLatenessMs, onLate: 'ignore', replayRetentionMs },
    fields: [
      { name: 'n_slide', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 30 } },
      { name: 'sum_hop', type: 'double', default: 0, aggregation: 'sum', of: 'amount', window: { type: 'hopping', sizeMs: 40, hopMs: 10 } },
      { name: 'mean_tumble', type: 'double', default: -1, aggregation: 'mean', of: 'amount', window: { type: 'tumbling', sizeMs: 25 } },
      { name: 'min_slide', type: 'double', default: -2, aggregation: 'min', of: 'amount', window: { type: 'sliding', sizeMs: 50 } },
      { name: 'max_slide', type: 'double', default: -3, aggregation: 'max', of: 'amount', window: { type: 'sliding', sizeMs: 20 } },
      { name: 'distinct_merchants', type: 'long', default: 0, aggregation: 'distinct_count', of: 'merchantId', window: { type: 'sliding', sizeMs: 60 } },
      { name: 'last_amount', type: 'double', default: -4, aggregation: 'last', of: 'amount' },
      { name: 'since_prev', type: 'long', default: -5, aggregation: 'time_since_prev' },
    ],
  };
}
