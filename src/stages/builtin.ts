import { ProcessorRegistry } from './registry';
import { defineProcessor, type DefinedProcessor } from './define';
import { featureExtraction } from './extraction';
import { onnxInference } from './inference';
import { onnxShadow } from './shadow';

/**
 * The built-in processors, defined through the plugin API (defineProcessor) like any plugin's, with
 * their guarantees: all three are deterministic for given inputs, model version and feature state,
 * and write nothing outside the stage's transaction except Redis state that is itself replay-safe
 * (streaming features: offset checkpoints and fencing, README "Delivery guarantees").
 */
export const builtinDefinitions: readonly DefinedProcessor<any>[] = [
  defineProcessor({ ...featureExtraction, deterministic: true, sideEffects: false }),
  defineProcessor({ ...onnxInference, deterministic: true, sideEffects: false }),
  defineProcessor({ ...onnxShadow, deterministic: true, sideEffects: false }),
];

/** A registry holding every built-in processor. */
export function builtinProcessors(): ProcessorRegistry {
  const registry = new ProcessorRegistry();
  for (const def of builtinDefinitions) registry.register(def);
  return registry;
}
