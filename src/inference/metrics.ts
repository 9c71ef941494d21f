import { Counter, Gauge, Histogram, Registry, register as defaultRegistry } from 'prom-client';

type ModelLabels = 'model' | 'version';

/**
 * Inference metrics (pool, batcher, gate), created once per prom-client registry so several
 * pools and stages in one process share them (labelled by model and version).
 */
export class InferenceMetrics {
  readonly batchSize: Histogram<ModelLabels>;
  readonly queueSeconds: Histogram<ModelLabels>;
  readonly inferenceSeconds: Histogram<ModelLabels>;
  readonly queueRows: Gauge<ModelLabels>;
  readonly saturations: Counter<ModelLabels>;
  readonly workerRestarts: Counter<ModelLabels | 'reason'>;
  readonly requestsFailed: Counter<ModelLabels>;
  readonly activeProvider: Gauge<ModelLabels | 'provider'>;
  readonly gateRuns: Counter<ModelLabels | 'result'>;
  readonly gateFailedChecks: Counter<ModelLabels | 'check'>;
  readonly liveVersion: Gauge<'model' | 'stage' | 'version'>;
  readonly swaps: Counter<'model' | 'stage' | 'result'>;

  private constructor(readonly registry: Registry) {
    const registers = [registry];
    const labelNames: ModelLabels[] = ['model', 'version'];
    this.batchSize = new Histogram({ name: 'tributary_inference_batch_size', help: 'Rows per batch sent to an inference worker', labelNames, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registers });
    this.queueSeconds = new Histogram({ name: 'tributary_inference_queue_seconds', help: 'Time a request waits in the batcher queue until its last row is dispatched', labelNames, buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.inferenceSeconds = new Histogram({ name: 'tributary_inference_seconds', help: 'Time to score one batch on a worker (round trip)', labelNames, buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.queueRows = new Gauge({ name: 'tributary_inference_queue_rows', help: 'Rows waiting in the batcher queue', labelNames, registers });
    this.saturations = new Counter({ name: 'tributary_inference_queue_saturated_total', help: 'Times the bounded batcher queue filled (consumers pause their partitions)', labelNames, registers });
    this.workerRestarts = new Counter({ name: 'tributary_inference_worker_restarts_total', help: 'Inference worker threads replaced after exiting', labelNames: [...labelNames, 'reason'], registers });
    this.requestsFailed = new Counter({ name: 'tributary_inference_requests_failed_total', help: 'Inference requests failed explicitly (after their retry, or on close)', labelNames, registers });
    this.activeProvider = new Gauge({ name: 'tributary_inference_execution_provider', help: 'Workers per active execution provider', labelNames: [...labelNames, 'provider'], registers });
    this.gateRuns = new Counter({ name: 'tributary_model_gate_runs_total', help: 'Model gate runs by result (pass|fail)', labelNames: [...labelNames, 'result'], registers });
    this.gateFailedChecks = new Counter({ name: 'tributary_model_gate_failed_checks_total', help: 'Failed gate checks by check name', labelNames: [...labelNames, 'check'], registers });
    this.liveVersion = new Gauge({ name: 'tributary_model_live_version_info', help: '1 for the model version a stage serves', labelNames: ['model', 'stage', 'version'], registers });
    this.swaps = new Counter({ name: 'tributary_model_swap_total', help: 'Hot swaps of a stage\'s model version by result (swapped|refused)', labelNames: ['model', 'stage', 'result'], registers });
  }

  private static readonly byRegistry = new WeakMap<Registry, InferenceMetrics>();

  /** The metrics on `registry` (prom-client's default registry when omitted), created on first use. */
  static for(registry: Registry = defaultRegistry): InferenceMetrics {
    let m = InferenceMetrics.byRegistry.get(registry);
    if (!m) {
      m = new InferenceMetrics(registry);
      InferenceMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}
