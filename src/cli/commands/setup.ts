import type { Command } from 'commander';
import { ensureArtifacts } from '../../stack/artifacts';
import { ensurePrerequisites, NO_INSTALL_ENV } from '../../stack/ensure-prerequisites';
import { ensurePythonEnv } from '../../stack/python-env';
import { PREREQUISITE_SETS, type PrerequisiteSet } from '../../stack/prerequisites';
import { oneOf, wantsJson } from '../options';

/** `tributary setup`: the set-up step the demo and the test suite run themselves, callable on its own (CI). */
export function registerSetupCommands(program: Command): void {
  program
    .command('setup')
    .description(`install what a fresh machine lacks: system packages with apt-get when root (${NO_INSTALL_ENV}=1 to only report), then the Kafka and registry jars via Maven`)
    .option('--for <use>', `stack: ${PREREQUISITE_SETS.stack.join(', ')}; tests: also ${PREREQUISITE_SETS.tests.filter((n) => !(PREREQUISITE_SETS.stack as readonly string[]).includes(n)).join(', ')}`, oneOf<PrerequisiteSet>('stack', 'tests'), 'tests')
    .option('--no-artifacts', 'skip fetching the Kafka and registry jars')
    .action(async (opts: { for: PrerequisiteSet; artifacts: boolean }, cmd: Command) => {
      const result = await ensurePrerequisites({ set: opts.for });
      const artifacts = opts.artifacts && result.stillMissing.length === 0 ? await ensureArtifacts() : undefined;
      // The features package's venv (numpy, PyYAML, pinned tzdata) for the TypeScript/Python parity test.
      let venv: ReturnType<typeof ensurePythonEnv> | undefined;
      let venvProblem: string | undefined;
      try {
        venv = opts.for === 'tests' && !result.stillMissing.includes('python3') ? ensurePythonEnv() : undefined;
      } catch (err) {
        venvProblem = (err as Error).message;
        process.exitCode = 1;
      }
      if (!wantsJson(cmd)) {
        if (venv?.installed) process.stdout.write(`python env: ${venv.python} (python/requirements.txt)\n`);
        if (venvProblem) process.stdout.write(`python env: ${venvProblem}\n`);
      }
      const summary = { installed: result.installed, stillMissing: result.stillMissing, pythonEnv: venvProblem ?? (venv ? 'ok' : undefined), artifacts: artifacts ? { kafka: artifacts.kafkaHome, registry: artifacts.registryHome } : undefined };
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stdout.write(`prerequisites for ${opts.for}: ${result.stillMissing.length ? `missing ${result.stillMissing.join(', ')}` : 'ok'}${result.installed.length ? ` (installed ${result.installed.join(' ')})` : ''}\n`);
        if (artifacts) process.stdout.write(`server artifacts: Kafka ${artifacts.kafkaVersion}, Apicurio Registry ${artifacts.registryVersion}\n`);
      }
    });
}
