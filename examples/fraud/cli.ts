/**
 * The fraud example's command runner: `demo` (end to end on the local stack) and `produce-demo`
 * (generated card transactions to a topology's input topic). The engine's `tributary demo` /
 * `tributary produce-demo` hand their arguments to this program (compiled to
 * dist-examples/examples/fraud/cli.js by `npm run build`) in a child process, so the engine holds
 * no import of the example and builds without it.
 *
 *   node dist-examples/examples/fraud/cli.js [--json] demo [--count N] [--rate R] ...
 *   node dist-examples/examples/fraud/cli.js produce-demo [--topology FILE] [--count N] ...
 */
import type { Command } from 'commander';
import { createProgram, runProgram } from '../../src/cli/program';
import { resolveEndpoints } from '../../src/util/endpoints';
import { startTestStack } from '../../src/stack/test-harness';
import { loadTopologyFile, TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY } from '../../src/cli/topology-file';
import { nonNegativeInt, nonNegativeNumber, positiveInt, UsageError, wantsJson } from '../../src/cli/options';
import { ensurePrerequisites } from '../../src/stack/ensure-prerequisites';
import { ENDPOINT_ENV } from '../../src/util/endpoints';
import { loadGeneratorSpec } from './generator-spec';
import { produceDemoEvents } from './produce';
import { formatSummary, runDemo } from './run-demo';

/** The demo's topology: fraud-detection plus the candidate model as a shadow and a canary arm. */
export const DEMO_TOPOLOGY = 'topologies/fraud-demo.yaml';

/** `--start-time`: "now", "spec" (the generator spec's fixed date), an ISO time or epoch ms. */
function parseStartTime(value: string): number | undefined {
  if (value === 'now') return Date.now();
  if (value === 'spec') return loadGeneratorSpec().defaultStartTime;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--start-time: '${value}' is neither "now", "spec", an ISO time nor epoch milliseconds`);
  return ms;
}

/** Registers `produce-demo` and `demo` on a program (this runner's own). */
export function registerFraudDemoCommands(program: Command): void {
  program
    .command('produce-demo')
    .description('publish generated card transactions (Avro via the registry) to the topology\'s input topic')
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY)
    .option('--count <n>', 'number of events', positiveInt, 1000)
    .option('--rate <n>', 'events per second (0 = as fast as possible)', nonNegativeNumber, 200)
    .option('--seed <n>', 'generator seed (default: a fresh one per run)', nonNegativeInt, Date.now() % 1_000_000)
    .option('--feedback <topic>', 'also publish each event\'s planted label (schema feedback, keyed like the event) to this topic')
    .option('--start-time <time>', 'generator clock at the first event: ISO time, epoch ms, "now" or "spec" (the training data\'s fixed date)', 'now')
    .action(async (opts: { topology: string; count: number; rate: number; seed: number; feedback?: string; startTime: string }, cmd: Command) => {
      const topology = loadTopologyFile(opts.topology);
      const endpoints = resolveEndpoints();
      const res = await produceDemoEvents({
        brokers: endpoints.brokers,
        schemaRegistryUrl: endpoints.schemaRegistryUrl,
        topic: topology.spec.stages[0].input.topic,
        count: opts.count,
        rate: opts.rate,
        seed: opts.seed,
        startTime: parseStartTime(opts.startTime),
        feedbackTopic: opts.feedback,
      });
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify(res)}\n`);
      else process.stdout.write(`produced ${res.produced} events in ${res.seconds.toFixed(1)} s (dated ${new Date(res.startTime).toISOString().slice(0, 10)})${opts.feedback ? `; ${res.labels} labels to ${opts.feedback}` : ''}\n`);
    });

  program
    .command('demo')
    .description('end to end on the local stack: start it, run the topology, produce events, print a summary, stop what it started')
    .option(TOPOLOGY_FLAGS, 'topology file (default: the fraud pipeline with a shadow and a canary arm for the candidate model)', DEMO_TOPOLOGY)
    .option('--count <n>', 'number of events', positiveInt, 1000)
    .option('--rate <n>', 'events per second (0 = as fast as possible)', nonNegativeNumber, 250)
    .option('--malformed <n>', 'malformed events to mix in (0-5), to show the dead-letter path', nonNegativeInt, 5)
    .option('--seed <n>', 'generator seed (default: a fresh one per run, so keys never collide with earlier runs)', nonNegativeInt, Date.now() % 1_000_000_000)
    .option('--no-feedback', 'do not publish the planted labels to the topology\'s feedback topic')
    .option('--no-report', 'skip the shadow report (faster)')
    .option('--report-dir <dir>', 'where the shadow report goes (default .tributary/reports/demo-<time>)')
    .option('--bootstrap <n>', 'bootstrap resamples for the report\'s confidence intervals (fewer is faster)', nonNegativeInt, 300)
    .option('--start-time <time>', 'generator clock at the first event: ISO time, epoch ms, "now" or "spec"', 'now')
    .action(async (opts: { topology: string; count: number; rate: number; malformed: number; seed: number; feedback: boolean; report: boolean; reportDir?: string; bootstrap: number; startTime: string }, cmd: Command) => {
      if (opts.malformed > 5) throw new UsageError(`--malformed: expected 0-5 (one of each kind), got ${opts.malformed}`);
      const startTime = parseStartTime(opts.startTime);
      loadTopologyFile(opts.topology); // fail fast on a bad file, before starting servers
      // A fresh machine: install the servers' system packages first (unless every endpoint comes from the env).
      if (!Object.values(ENDPOINT_ENV).every((name) => Boolean(process.env[name]?.trim()))) await ensurePrerequisites({ set: 'stack' });
      // Existing endpoints (env or a running local stack) are reused and left alone; otherwise the stack
      // is started here and stopped at the end.
      const stack = await startTestStack();
      try {
        const summary = await runDemo({
          endpoints: stack.endpoints,
          topologyFile: opts.topology,
          count: opts.count,
          rate: opts.rate,
          seed: opts.seed,
          malformed: opts.malformed,
          startTime,
          feedback: opts.feedback,
          shadowReport: opts.report,
          reportDir: opts.reportDir,
          bootstrap: opts.bootstrap,
        });
        process.stdout.write(`${wantsJson(cmd) ? JSON.stringify(summary, null, 2) : formatSummary(summary)}\n`);
        if (summary.predictions + summary.deadLettered < summary.produced + summary.malformedInjected) process.exitCode = 1;
      } finally {
        await stack.stop();
      }
    });
}

if (require.main === module) {
  const program = createProgram('tributary');
  registerFraudDemoCommands(program);
  runProgram(program);
}
