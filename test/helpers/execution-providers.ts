import * as ort from 'onnxruntime-node';
import { installedExecutionProviders } from '../../src/inference/execution-providers';

/**
 * The provider a session with `candidates` (in order) should end up on, found by asking onnxruntime
 * directly for each one alone: on a CPU-only install that is `cpu`, on a CUDA host `cuda`. Tests
 * compare the pool's choice with this, so they hold on either kind of machine. Providers whose
 * library is absent are not probed (onnxruntime would print an error for each; the unit test of
 * installedExecutionProviders checks that listing against the files).
 */
export async function firstWorkingProvider(weights: string, candidates: string[], deviceId?: number): Promise<string | undefined> {
  const installed = new Set(installedExecutionProviders().filter((p) => p.installed).map((p) => p.name));
  for (const name of candidates.filter((c) => installed.has(c))) {
    const ep = deviceId !== undefined && (name === 'cuda' || name === 'tensorrt') ? ({ name, deviceId } as ort.InferenceSession.ExecutionProviderConfig) : name;
    try {
      const session = await ort.InferenceSession.create(weights, { executionProviders: [ep] });
      await session.release();
      return name;
    } catch {
      // installed but not usable here (no GPU, driver or CUDA libraries): try the next
    }
  }
  return undefined;
}
