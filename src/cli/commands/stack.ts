import type { Command } from 'commander';
import { artifactsInstalled, ensureArtifacts } from '../../stack/artifacts';
import { endpointsFromState } from '../../util/endpoints';
import { LocalStack, type StackStatus } from '../../stack/local-stack';
import type { StackState } from '../../stack/state';
import { TributaryError } from '../../util/errors';
import { Progress } from '../../util/progress';
import { ensurePrerequisites } from '../../stack/ensure-prerequisites';

interface StackCommandOptions {
  stateDir?: string;
  json?: boolean;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

function stateTable(state: StackState): string {
  return table([
    ['SERVER', 'PID', 'ENDPOINT', 'LOG'],
    ['kafka', String(state.kafka.pid), state.kafka.brokers.join(','), state.kafka.logFile],
    ['registry', String(state.registry.pid), state.registry.url, state.registry.logFile],
    ['redis', String(state.redis.pid), state.redis.url, state.redis.logFile],
  ]);
}

function statusTable(status: StackStatus): string {
  const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
  return table([
    ['SERVER', 'PID', 'ALIVE', 'ANSWERING', 'ENDPOINT', 'LOG'],
    ...status.servers.map((s) => [s.name, String(s.pid), yesNo(s.alive), yesNo(s.answering), s.endpoint, s.logFile]),
  ]);
}

function envLines(state: StackState): string {
  const e = endpointsFromState(state);
  return [`KAFKA_BROKERS=${e.brokers.join(',')}`, `SCHEMA_REGISTRY_URL=${e.schemaRegistryUrl}`, `REDIS_URL=${e.redisUrl}`].join('\n');
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Runs an action; any error becomes `error: <message>` on stderr (one line for a missing prerequisite) and exit 1 via commander. */
function guarded(cmd: Command, fn: (opts: StackCommandOptions) => Promise<void>): () => Promise<void> {
  return async () => {
    const opts = cmd.optsWithGlobals<StackCommandOptions>();
    try {
      await fn(opts);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new TributaryError(message, { cause: err });
    }
  };
}

/** Adds `stack install|up|down|status` to the CLI. */
export function registerStackCommands(program: Command): void {
  const stack = program
    .command('stack')
    .description('Run Kafka, the schema registry and Redis as local processes (127.0.0.1, free ports)')
    .option('--state-dir <dir>', 'stack state/data directory (default: $TRIBUTARY_HOME/stack)');
  const localStack = (opts: StackCommandOptions, onStartProgress?: (answering: number, total: number) => void): LocalStack => new LocalStack({ stateDir: opts.stateDir, onStartProgress });

  const install = stack.command('install').description('Fetch the Kafka and schema registry artifacts into the cache (needs Maven)');
  install.action(
    guarded(install, async (opts) => {
      const already = artifactsInstalled();
      const paths = await ensureArtifacts();
      if (opts.json) print(JSON.stringify({ alreadyInstalled: already, ...paths }));
      else print(`${already ? 'Already installed' : 'Installed'}: Kafka ${paths.kafkaVersion} in ${paths.kafkaHome}; Apicurio Registry ${paths.registryVersion} in ${paths.registryHome}`);
    }),
  );

  const up = stack.command('up').description('Start the local stack (returns the running one if it is already up)');
  up.action(
    guarded(up, async (opts) => {
      await ensurePrerequisites({ set: 'stack' });
      const bar = new Progress({ label: 'stack up', unit: 'servers' });
      const state = await localStack(opts, (done, total) => bar.update({ done, total })).up().finally(() => bar.end());
      if (opts.json) {
        print(JSON.stringify(state, null, 2));
      } else {
        print(`Local stack is up (started ${state.startedAt})\n${stateTable(state)}\n\n${envLines(state)}`);
      }
    }),
  );

  const down = stack.command('down').description('Stop the processes recorded in the state file');
  down.action(
    guarded(down, async (opts) => {
      const report = await localStack(opts).down();
      if (opts.json) {
        print(JSON.stringify(report, null, 2));
      } else if (!report.stateFound) {
        print('Local stack is not running (no state file).');
      } else {
        print(`Local stack stopped in ${(report.durationMs / 1000).toFixed(1)}s\n${table([['SERVER', 'PID', 'RESULT'], ...report.servers.map((s) => [s.name, String(s.pid), s.result])])}`);
      }
    }),
  );

  const status = stack.command('status').description('Show endpoints and whether each process is alive and answering (exit 1 unless running)');
  status.action(
    guarded(status, async (opts) => {
      const st = await localStack(opts).status();
      if (opts.json) {
        const { stack: recorded, ...rest } = st;
        print(JSON.stringify({ ...rest, endpoints: recorded ? endpointsFromState(recorded) : undefined }, null, 2));
      } else if (st.state === 'stopped') {
        print(`Local stack is not running (no ${st.stateFile}).`);
      } else {
        print(`Local stack is ${st.state} (started ${st.startedAt})\n${statusTable(st)}`);
        if (st.stack) print(`\n${envLines(st.stack)}`);
      }
      if (st.state !== 'running') process.exitCode = 1;
    }),
  );
}
