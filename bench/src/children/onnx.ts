/**
 * Raw limit: onnxruntime batch inference on the fraud model, no Kafka, no Avro. Real feature rows
 * (generator -> extractor). Measures rows/s per batch size with 1 intra-op thread and with all cores.
 */
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadFeatureDefinitions } from '../../../src/features/declarative/load';
import { OnnxModel } from '../../../src/inference/onnx-model';
import { TransactionGenerator } from '../../../examples/fraud/generator';
import { repoRoot } from '../../../src/stack/paths';
import { childConfig, round, tell } from '../common';
import { FRAUD_SCHEMAS_DIR } from '../../../examples/fraud/schemas';

export interface OnnxRow {
  config: string;
  intraOpNumThreads: number;
  batch: number;
  rowsPerSecond: number;
  /** Mean wall time of one session.run for this batch size. */
  msPerRun: number;
}

async function measure(model: OnnxModel, rows: Float32Array, batch: number, seconds: number): Promise<{ rowsPerSecond: number; msPerRun: number }> {
  const input = rows.subarray(0, batch * model.width);
  for (let i = 0; i < 20; i++) await model.score(input, batch); // warm-up
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  let runs = 0;
  let now = started;
  while (now < deadline) {
    await model.score(input, batch);
    runs++;
    now = process.hrtime.bigint();
  }
  const secs = Number(now - started) / 1e9;
  return { rowsPerSecond: round((runs * batch) / secs, 0), msPerRun: round((1000 * secs) / runs, 4) };
}

async function main(): Promise<void> {
  const cfg = childConfig();
  const seconds = cfg.seconds ?? 1;
  const extractor = loadFeatureDefinitions(path.join(repoRoot(), 'models/fraud/features/fraud_txn.yaml'), { schemaSources: [FRAUD_SCHEMAS_DIR] });
  const gen = new TransactionGenerator({ seed: 7 });
  const maxBatch = 4096;
  const rows = new Float32Array(maxBatch * extractor.names.length);
  for (let i = 0; i < maxBatch; i++) extractor.extractInto(gen.next().tx, rows, i * extractor.names.length);
  const cores = os.cpus().length;
  const out: OnnxRow[] = [];
  const repo = path.join(repoRoot(), 'models');
  for (const [config, threads] of [
    ['1 intra-op thread', 1],
    [`all cores (${cores} intra-op threads)`, cores],
  ] as const) {
    const model = await OnnxModel.load(repo, 'fraud', '1', { intraOpNumThreads: threads });
    for (const batch of [1, 16, 128, 1024, 4096]) {
      const m = await measure(model, rows, batch, seconds);
      out.push({ config, intraOpNumThreads: threads, batch, ...m });
    }
    await model.close();
  }
  // TODO(pool): a worker pool for inference is being built in src/inference/pool. When it lands, measure it
  // here with the same rows and batch sizes (config 'pool (<n> workers)') and push the rows into `out`;
  // main.ts already reports every config it finds. Until then we only note whether the module exists.
  const poolPresent = ['pool.ts', 'pool'].some((f) => fs.existsSync(path.join(repoRoot(), 'src', 'inference', f)));
  tell({ type: 'result', result: { rows: out, pool: poolPresent ? 'src/inference/pool.ts exists but is not measured in the raw phase yet (TODO hook in bench/src/children/onnx.ts); Tributary\'s own run uses it' : 'not available yet (src/inference/pool absent); TODO hook in bench/src/children/onnx.ts' } });
  setTimeout(() => process.exit(0), 50);
}

main().catch((err) => {
  tell({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
