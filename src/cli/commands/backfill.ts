import type { Command } from 'commander';
import { runBackfill, type BackfillProgress, type BackfillSummary } from '../../backfill/runner';
import { chosenTopology, loadTopologyFile, POSITIONAL_TOPOLOGY_HELP, TOPOLOGY_FLAGS, TOPOLOGY_HELP } from '../topology-file';
import { oneOf, positiveInt, unitInterval, wantsJson } from '../options';
import { Progress, progressText } from '../../util/progress';
import { exitWhenFlushed } from '../graceful-exit';

/** One progress line: bar, events done/total, events/s, ETA, counters. */
export function progressLine(p: BackfillProgress, width = 24): string {
  return progressText({ done: p.done, total: p.total, rate: p.eventsPerSecond, etaMs: p.etaMs, extra: `predictions ${p.counters.predictions}  dead-lettered ${p.counters.deadLettered}` }, 'events', width);
}

export function summaryText(s: BackfillSummary): string {
  const lines = [
    `backfill ${s.job}: ${s.alreadyComplete ? 'already complete (nothing scored now; add --restart to score the range again)' : s.complete ? 'complete' : 'stopped (resumable: run the same command again)'}${s.resumed && !s.alreadyComplete ? ' (resumed)' : ''}`,
    `  input       ${s.inputTopic} ${s.ranges.map((r) => `${r.partition}:[${r.start},${r.end})${r.warmupStart < r.start ? ` warmup from ${r.warmupStart}` : ''}`).join(' ')}`,
    `  output      ${s.output}`,
    `  model       ${s.model}   streaming state ${s.stateNamespace}`,
    `  events      ${s.events}${s.warmupEvents ? ` (+${s.warmupEvents} warmup)` : ''}`,
    `  predictions ${s.predictions}`,
    `  dead-lettered ${s.deadLettered}`,
    `  duration    ${(s.durationMs / 1000).toFixed(1)} s this run, ${(s.totalRunMs / 1000).toFixed(1)} s running in all; ${s.processing.events} events in ${(s.processing.ms / 1000).toFixed(1)} s of processing this run = ${Math.round(s.processing.eventsPerSecond)} events/s`,
  ];
  if (s.feedback) {
    const f = s.feedback;
    const fmt = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
    lines.push(`  feedback    ${f.topic}: ${f.labeled} of ${f.predictions} predictions labeled (${f.positives} positive)`);
    lines.push(`  metrics     ROC AUC ${fmt(f.rocAuc)}  precision ${fmt(f.precision)}  recall ${fmt(f.recall)}  (tp ${f.truePositives}, fp ${f.falsePositives}, fn ${f.falseNegatives})`);
  }
  return `${lines.join('\n')}\n`;
}

interface BackfillCliOptions {
  from: string;
  to: string;
  output: string;
  topology?: string;
  format?: 'jsonl' | 'csv';
  warmupFrom?: string;
  job?: string;
  stateDir?: string;
  modelVersion?: string;
  modelRepository?: string;
  threshold?: number;
  stateNamespace?: string;
  includeFeatures?: boolean;
  deadLetterTopic?: string;
  restart?: boolean;
  feedback?: string;
  fetchBytes?: number;
  commitRecords?: number;
  workers?: number;
  progressInterval: number;
}

/** `tributary backfill TOPOLOGY --from --to --output`: replay a bounded range through the topology's extraction + model. */
export function registerBackfillCommands(program: Command): void {
  program
    .command('backfill')
    .description('score a bounded range of the input topic with the topology\'s features and a model version, writing predictions to a topic or a file (resumable)')
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .requiredOption('--from <spec>', 'range start (inclusive): earliest | ISO-8601 time | epoch ms | p:offset,p:offset,...')
    .option('--to <spec>', 'range end (exclusive), resolved once when the job starts: latest | ISO-8601 time | epoch ms | p:offset,...', 'latest')
    .requiredOption('--output <target>', 'topic:NAME, file:PATH, or a path ending in .jsonl/.csv (else a topic name)')
    .option('--format <fmt>', 'file output: jsonl or csv (default from the extension)', oneOf('jsonl', 'csv'))
    .option('--warmup-from <spec>', 'replay records from here up to --from into the streaming state only (no output), so features match a live run that started there')
    .option('--job <name>', 'job name (state under --state-dir); default derived from the topology, range, output and model')
    .option('--state-dir <dir>', 'where jobs keep their plan and checkpoint (default $TRIBUTARY_HOME/backfill)')
    .option('--model-version <v>', 'model version to score with (default: the topology\'s), e.g. a candidate')
    .option('--model-repository <dir>', 'model repository (default: the topology\'s)')
    .option('--threshold <t>', 'decision threshold 0-1 (default: the stage\'s or the card\'s)', unitInterval)
    .option('--state-namespace <ns>', 'streaming-feature state namespace (default backfill.<job>; never the live one)')
    .option('--include-features', 'file output: write each prediction\'s feature vector too')
    .option('--dead-letter-topic <topic>', 'topic output: dead letters go here (default: the topology\'s dead-letter topic)')
    .option('--feedback <topic>', 'feedback topic (schemas/feedback.avsc, keyed by event key): print ROC AUC, precision, recall of the backfilled scores')
    .option('--restart', 'forget an existing job of the same name and start over')
    .option('--fetch-bytes <n>', 'max bytes fetched per partition and batch', positiveInt)
    .option('--commit-records <n>', 'records per commit of each partition (default 5000): smaller commits, finer resume points', positiveInt)
    .option('--workers <n>', 'inference worker threads', positiveInt)
    .option('--progress-interval <ms>', 'progress line interval when stderr is not a terminal', positiveInt, 2000)
    .action(async (file: string | undefined, opts: BackfillCliOptions, cmd: Command) => {
      const topology = loadTopologyFile(chosenTopology(file, opts.topology));
      const streaming = (topology.spec.features?.sets ?? []).filter((set) => set.kind === 'windowed_aggregation').map((set) => set.name);
      if (streaming.length > 0 && !opts.warmupFrom && opts.from !== 'earliest') {
        process.stderr.write(
          `warning: streaming feature state (${streaming.join(', ')}) starts empty at --from ${opts.from}: events after it do not see earlier ones in their windows, ` +
            `so scores match the live run only if its state also started there; pass --warmup-from SPEC to replay earlier events into the state first ` +
            `(--warmup-from ${opts.from} confirms an empty start)\n`,
        );
      }
      const bar = new Progress({ label: 'backfill', unit: 'events', intervalMs: opts.progressInterval });
      const onProgress = (p: BackfillProgress) =>
        bar.update({ done: p.done, total: p.total, rate: p.eventsPerSecond, etaMs: p.etaMs, extra: `predictions ${p.counters.predictions}  dead-lettered ${p.counters.deadLettered}` });
      const stop = new AbortController();
      let signals = 0;
      const onSignal = () => {
        if (++signals > 1) process.exit(130);
        process.stderr.write('\nstopping after the in-flight batches (a second signal exits now); run the same command to resume\n');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const summary = await runBackfill({
        topology,
        from: opts.from,
        to: opts.to,
        warmupFrom: opts.warmupFrom,
        output: opts.output,
        format: opts.format,
        job: opts.job,
        stateDir: opts.stateDir,
        modelVersion: opts.modelVersion,
        modelRepository: opts.modelRepository,
        threshold: opts.threshold,
        stateNamespace: opts.stateNamespace,
        includeFeatures: opts.includeFeatures,
        deadLetterTopic: opts.deadLetterTopic,
        restart: opts.restart,
        feedbackTopic: opts.feedback,
        fetchBytes: opts.fetchBytes,
        commitRecords: opts.commitRecords,
        workers: opts.workers,
        onProgress,
        signal: stop.signal,
      });
      bar.end();
      process.stdout.write(wantsJson(cmd) ? `${JSON.stringify(summary)}\n` : summaryText(summary));
      exitWhenFlushed(summary.complete ? 0 : 3);
    });
}
