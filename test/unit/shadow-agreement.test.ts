import { Registry } from 'prom-client';
import type { Prediction, ShadowPrediction } from '../../src/client/generated/avro-types';
import { ShadowAgreement } from '../../src/monitoring/shadow-agreement';

const lineage = (offset: number) => ({ topic: 'in', partition: 0, offset });
const live = (offset: number, score: number): Prediction =>
  ({ key: `k${offset}`, modelName: 'fraud', modelVersion: '1', score, label: score >= 0.5, threshold: 0.5, eventTime: 0, ingestTime: 0, producedTime: 0, lineage: lineage(offset) }) as Prediction;
const shadow = (offset: number, score: number | null, status = 'OK'): ShadowPrediction =>
  ({ key: `k${offset}`, shadow: 's', modelName: 'fraud', modelVersion: '2', status, score, label: score === null ? null : score >= 0.9, threshold: 0.9, latencyMs: 1, eventTime: 0, ingestTime: 0, producedTime: 0, lineage: lineage(offset) }) as unknown as ShadowPrediction;

describe('online live/shadow agreement', () => {
  it('joins on lineage in either arrival order and decides the shadow at the live threshold', async () => {
    const registry = new Registry();
    const a = new ShadowAgreement(registry, 4);
    a.observeLive(live(1, 0.7));
    a.observeShadow(shadow(1, 0.6)); // 0.6 >= live threshold 0.5: agree (its own 0.9 threshold is not used)
    a.observeShadow(shadow(2, 0.2));
    a.observeLive(live(2, 0.8)); // disagree
    a.observeShadow(shadow(3, null, 'TIMEOUT'));
    a.observeLive(live(3, 0.1)); // shadow failed: not in the ratio
    expect(a.ratio()).toBe(0.5);
    const text = await registry.metrics();
    expect(text).toContain('tributary_shadow_joined_total{model="fraud",shadow_version="2",result="agree"} 1');
    expect(text).toContain('result="disagree"} 1');
    expect(text).toContain('result="shadow_failed"} 1');
    expect(text).toContain('tributary_shadow_agreement_ratio{model="fraud",shadow_version="2"} 0.5');
  });

  it('keeps the ratio over the last `window` joins', () => {
    const a = new ShadowAgreement(new Registry(), 3);
    for (let i = 0; i < 5; i++) {
      a.observeLive(live(i, 0.9));
      a.observeShadow(shadow(i, i < 2 ? 0.1 : 0.95)); // first two disagree, then agree
    }
    expect(a.ratio()).toBe(1);
  });
});
