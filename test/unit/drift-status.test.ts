import { Registry } from 'prom-client';
import { registerFeatureCache } from '../../src/monitoring/stage-collectors';
import { histogramQuantile, latencyText, parseExposition, quantileBeyondLastBucket, renderStatus, summarize } from '../../src/monitoring/status-view';

const scrape = (inCount: number, le: [string, number][]) => `# HELP tributary_stage_events_in_total x
# TYPE tributary_stage_events_in_total counter
tributary_stage_events_in_total{stage="score",topic="fraud.features"} ${inCount}
tributary_stage_events_out_total{stage="score",topic="fraud.predictions"} ${inCount}
tributary_stage_consumer_lag_messages{stage="score",topic="fraud.features",partition="0"} 5
tributary_stage_consumer_lag_messages{stage="score",topic="fraud.features",partition="1"} 7
${le.map(([l, c]) => `tributary_stage_event_to_output_seconds_bucket{le="${l}",stage="score"} ${c}`).join('\n')}
tributary_model_live_version_info{model="fraud",stage="score",version="2"} 1
tributary_drift_windows_total{model="fraud",version="2",scope="FEATURES",level="ALERT"} 1
tributary_drift_windows_total{model="fraud",version="2",scope="FEATURES",level="OK"} 3
tributary_drift_psi{model="fraud",version="2",feature="amount_usd"} 0.61
tributary_drift_psi{model="fraud",version="2",feature="hour_of_day"} 0.01
tributary_drift_psi{model="fraud",version="2",feature="_score"} 0.02
tributary_drift_level{model="fraud",version="2",feature="amount_usd"} 2
tributary_drift_level{model="fraud",version="2",feature="hour_of_day"} 0
tributary_drift_level{model="fraud",version="2",feature="_score"} 0
weird_metric{a="x\\"y"} +Inf
`;

describe('tributary status view', () => {
  it('parses the text exposition, escapes included', () => {
    const s = parseExposition(scrape(1, []));
    expect(s.find((x) => x.name === 'weird_metric')).toEqual({ name: 'weird_metric', labels: { a: 'x"y' }, value: Infinity });
    expect(s.filter((x) => x.name === 'tributary_stage_consumer_lag_messages')).toHaveLength(2);
  });

  it('interpolates histogram quantiles like histogram_quantile', () => {
    expect(histogramQuantile(0.5, [{ le: 0.1, count: 50 }, { le: 0.2, count: 100 }, { le: Infinity, count: 100 }])).toBeCloseTo(0.1, 10);
    expect(histogramQuantile(0.99, [{ le: 0.1, count: 0 }, { le: 0.2, count: 100 }, { le: Infinity, count: 100 }])).toBeCloseTo(0.199, 10);
    expect(histogramQuantile(0.99, [])).toBeUndefined();
  });

  it('summarizes rates over the interval, lag, p99 of the interval, versions and drift', () => {
    const a = parseExposition(scrape(100, [['0.1', 100], ['1', 100], ['+Inf', 100]]));
    const b = parseExposition(scrape(300, [['0.1', 100], ['1', 300], ['+Inf', 300]]));
    const st = summarize('http://x', a, b, 2, true);
    expect(st.stages).toEqual([expect.objectContaining({ stage: 'score', inPerSec: 100, outPerSec: 100, lag: 12 })]);
    expect(st.stages[0].p99EventToOutputMs).toBeCloseTo(991, 0); // the interval's 200 events all fell in (0.1, 1]
    expect(st.models).toEqual([expect.objectContaining({ model: 'fraud', version: '2', stage: 'score' })]);
    expect(st.drift).toEqual([expect.objectContaining({ scope: 'FEATURES', level: 'ALERT', windows: 4 })]);
    expect(st.drift[0].top[0]).toEqual({ feature: 'amount_usd', psi: 0.61, level: 2 });
    const text = renderStatus([st]);
    expect(text).toContain('drift fraud@2 features: ALERT after 4 windows (amount_usd psi 0.610');
    expect(text).toMatch(/score\s+100\s+100\s+12\s+0\s+0\s+991 ms/);
  });

  it('shows a p99 beyond the last bucket as "> 30 s", not as the capped bound', () => {
    // 30 of the interval's 200 events took longer than the last finite bucket (30 s).
    const a = parseExposition(scrape(100, [['1', 100], ['30', 100], ['+Inf', 100]]));
    const b = parseExposition(scrape(300, [['1', 200], ['30', 270], ['+Inf', 300]]));
    const st = summarize('http://x', a, b, 2, true);
    expect(st.stages[0].p99EventToOutputAbove).toBe(true);
    const text = renderStatus([st]);
    expect(text).toMatch(/score\s+100\s+100\s+12\s+0\s+0\s+> 30 s/);
    expect(text).not.toContain('30000 ms');
    expect(quantileBeyondLastBucket(0.99, [{ le: 1, count: 99 }, { le: Infinity, count: 100 }])).toBe(false);
    expect(quantileBeyondLastBucket(0.99, [{ le: 1, count: 98 }, { le: Infinity, count: 100 }])).toBe(true);
    expect(latencyText(1500)).toBe('1.5 s');
    expect(latencyText(12.34)).toBe('12.3 ms');
    expect(latencyText(30000, true)).toBe('> 30 s');
  });
});

describe('feature cache counters', () => {
  it('follow the enricher counts at scrape time and survive a stage restart', async () => {
    const registry = new Registry();
    const stats = { cacheHits: 0, cacheMisses: 0 };
    registerFeatureCache(registry, 'extract', () => stats);
    stats.cacheHits = 90;
    stats.cacheMisses = 10;
    expect(await registry.metrics()).toContain('tributary_feature_cache_requests_total{stage="extract",result="hit"} 90');
    const restarted = { cacheHits: 5, cacheMisses: 1 };
    registerFeatureCache(registry, 'extract', () => restarted);
    const text = await registry.metrics();
    expect(text).toContain('tributary_feature_cache_requests_total{stage="extract",result="hit"} 95');
    expect(text).toContain('tributary_feature_cache_requests_total{stage="extract",result="miss"} 11');
  });
});
