import { ProcessorRegistry } from './registry';
import { featureExtraction } from './extraction';
import { onnxInference } from './inference';
import { onnxShadow } from './shadow';

/** A registry holding every built-in processor. */
export function builtinProcessors(): ProcessorRegistry {
  return new ProcessorRegistry().register(featureExtraction).register(onnxInference).register(onnxShadow);
}
