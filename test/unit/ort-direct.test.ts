import * as path from 'node:path';
import { OnnxModel } from '../../src/inference/onnx-model';
import { directSessionUnavailable, openDirectSession } from '../../src/inference/ort-direct';
import { repoRoot } from '../../src/stack/paths';
import { goldenMatrix, readGolden } from '../helpers/golden';

/** The golden rows of a model version (features and Python's scores). */
function goldenOf(dir: string): { rows: Float32Array; scores: number[]; count: number } {
  const golden = readGolden(dir);
  return { rows: goldenMatrix(golden), scores: golden.map((g) => g.score), count: golden.length };
}

/** Resolves with the order in which `score` and a setImmediate queued just before it finished. */
async function orderAgainstCheckPhase(model: OnnxModel, rows: Float32Array, count: number): Promise<string[]> {
  const order: string[] = [];
  const immediate = new Promise<void>((resolve) =>
    setImmediate(() => {
      order.push('setImmediate');
      resolve();
    }),
  );
  await model.score(rows, count);
  order.push('scored');
  await immediate;
  return order;
}

describe('models run through onnxruntime-node\'s native session directly (ort-direct.ts)', () => {
  it('the installed onnxruntime-node offers the native session this relies on', () => {
    // If an onnxruntime-node upgrade moves its binding, models silently fall back to the public
    // API (slower under load); this test is where that shows up.
    expect(directSessionUnavailable()).toBeUndefined();
  });

  for (const version of ['1', '2']) {
    const dir = path.join(repoRoot(), 'models', 'fraud', version);

    it(`model ${version}: direct and public-API sessions give bit-identical scores, matching Python's`, async () => {
      const { rows, scores, count } = goldenOf(dir);
      const direct = await OnnxModel.loadDir(dir);
      const deferred = await OnnxModel.loadDir(dir, { directRun: false });
      try {
        expect([direct.runMode, deferred.runMode]).toEqual(['direct', 'deferred']);
        const a = await direct.score(rows, count);
        const b = await deferred.score(rows, count);
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
        for (let i = 0; i < count; i++) expect(Math.abs(a[i] - scores[i])).toBeLessThanOrEqual(1e-5);
        // Smaller batches too (onnxruntime's kernels may round differently per batch size, so
        // each size is compared between the two sessions, not with the whole batch).
        for (let i = 0, n = 1; i < count; i += n, n = (n % 9) + 1) {
          const m = Math.min(n, count - i);
          const part = rows.subarray(i * direct.width, (i + m) * direct.width);
          expect(Array.from(await direct.score(part, m))).toEqual(Array.from(await deferred.score(part, m)));
        }
      } finally {
        await direct.close();
        await deferred.close();
      }
    });
  }

  it('a direct run is done before the event loop reaches its check phase; the public API waits for it', async () => {
    const dir = path.join(repoRoot(), 'models', 'fraud', '1');
    const { rows, count } = goldenOf(dir);
    const direct = await OnnxModel.loadDir(dir);
    const deferred = await OnnxModel.loadDir(dir, { directRun: false });
    try {
      expect(await orderAgainstCheckPhase(direct, rows, count)).toEqual(['scored', 'setImmediate']);
      expect(await orderAgainstCheckPhase(deferred, rows, count)).toEqual(['setImmediate', 'scored']);
    } finally {
      await direct.close();
      await deferred.close();
    }
  });

  it('errors of a direct run reject the score, and the session keeps working', async () => {
    const dir = path.join(repoRoot(), 'models', 'fraud', '1');
    const weights = path.join(dir, 'model.onnx');
    const session = openDirectSession(weights, { executionProviders: ['cpu'] })!;
    try {
      const model = await OnnxModel.loadDir(dir);
      const { rows } = goldenOf(dir);
      const width = model.width;
      const ort = await import('onnxruntime-node');
      const good = new ort.Tensor('float32', rows.subarray(0, width), [1, width]);
      expect(() => session.run(session.inputNames[0], good, 'no_such_output')).toThrow(/no_such_output/);
      const wrongWidth = new ort.Tensor('float32', new Float32Array(width + 1), [1, width + 1]);
      expect(() => session.run(session.inputNames[0], wrongWidth, session.outputNames[session.outputNames.length - 1])).toThrow();
      expect(session.run(session.inputNames[0], good, session.outputNames[session.outputNames.length - 1]).length).toBeGreaterThan(0);
      await expect(model.score(new Float32Array(width * 2), 3)).rejects.toThrow(/expected 3 x/);
      await model.close();
    } finally {
      session.release();
    }
  });
});
