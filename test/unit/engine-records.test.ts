/**
 * The engine's record types (src/engine/records.ts) equal the ones generated from schemas/*.avsc:
 * a schema change regenerated with `npm run gen:types` and not mirrored there fails `tsc` here.
 */
import type * as generated from '../../src/client/generated/avro-types';
import type * as engine from '../../src/engine/records';

/** true only when A and B are mutually assignable. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const checks: Record<string, true> = {
  DeadLetter: true as Same<engine.DeadLetter, generated.DeadLetter>,
  ErrorKind: true as Same<engine.ErrorKind, generated.ErrorKind>,
  Lineage: true as Same<engine.Lineage, generated.Lineage>,
  FeatureVector: true as Same<engine.FeatureVector, generated.FeatureVector>,
  PartialVector: true as Same<engine.PartialVector, generated.PartialVector>,
  Prediction: true as Same<engine.Prediction, generated.Prediction>,
  ShadowPrediction: true as Same<engine.ShadowPrediction, generated.ShadowPrediction>,
  ShadowStatus: true as Same<engine.ShadowStatus, generated.ShadowStatus>,
};

describe('engine record types', () => {
  it('match the types generated from the schemas (checked by the compiler)', () => {
    expect(Object.values(checks).every(Boolean)).toBe(true);
  });
});
