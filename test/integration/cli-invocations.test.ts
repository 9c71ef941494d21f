import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { repoRoot } from '../../src/stack/paths';

const CLI = path.join(repoRoot(), 'dist/cli/main.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: repoRoot(), encoding: 'utf8', timeout: 60000, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn', ...env } });
}

/** Command names listed under "Commands:" in a help text (help itself excluded). */
function listedCommands(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((n) => n !== 'help');
}

/** Every leaf command path, found by walking the help output from the top. */
function allCommands(prefix: string[] = []): string[][] {
  const res = cli([...prefix, '--help']);
  expect(res.status).toBe(0);
  const subs = listedCommands(res.stdout);
  if (subs.length === 0) return [prefix];
  return subs.flatMap((s) => allCommands([...prefix, s]));
}

describe('tributary CLI invocations (no servers needed: every case fails or finishes before connecting)', () => {
  let commands: string[][] = [];
  beforeAll(() => {
    if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
    commands = allCommands();
  });

  it('--help of every command exits 0 and shows its usage and the global options', () => {
    expect(commands.map((c) => c.join(' '))).toEqual(expect.arrayContaining(['setup', 'stack up', 'run', 'demo', 'drift', 'backfill', 'models promote', 'models verify', 'shadow report', 'features load', 'bandit status', 'status', 'tail']));
    expect(commands.length).toBeGreaterThanOrEqual(25);
    for (const command of commands) {
      const res = cli([...command, '--help']);
      expect({ command, status: res.status }).toEqual({ command, status: 0 });
      expect(res.stdout).toContain(`Usage: tributary ${command.join(' ')}`);
      expect(res.stdout).toContain('--log-level');
      expect(res.stderr).toBe('');
    }
  });

  it('an unknown option on every command exits 2 with the option named', () => {
    for (const command of commands) {
      const res = cli([...command, '--no-such-option']);
      expect({ command, status: res.status }).toEqual({ command, status: 2 });
      // Commands with required arguments or options may report those first; either way a usage error.
      expect(res.stderr).toMatch(/unknown option '--no-such-option'|required option|missing required argument/);
      expect(res.stdout).toBe('');
    }
  });

  const bad: Array<[string[], RegExp]> = [
    [['drift', '--psi-alert', '0,2'], /--psi-alert.*'0,2' is invalid\. expected a number > 0/],
    [['drift', '--correction', 'holm'], /--correction.*expected one of benjamini-hochberg, bonferroni, none/],
    [['drift', '--alpha', '5'], /--alpha.*between 0 and 1/],
    [['drift', '--psi-warn', '0.5', '--psi-alert', '0.2'], /--psi-warn \(0\.5\) must not exceed --psi-alert \(0\.2\)/],
    [['produce-demo', '--count', 'abc'], /--count.*'abc' is invalid\. expected a positive integer/],
    [['produce-demo', '--rate', '-5'], /--rate.*expected a number >= 0/],
    [['demo', '--count', '0'], /--count.*expected a positive integer/],
    [['demo', '--malformed', '9'], /--malformed: expected 0-5/],
    [['run', '--metrics-port', '70000'], /--metrics-port.*port number 0-65535/],
    [['run', '--shutdown-timeout', '1e'], /--shutdown-timeout.*positive integer/],
    [['run', '--stage', 'nope'], /--stage: no stage 'nope'/],
    [['run', '--instance-id', 'pod 0'], /--instance-id.*'pod 0' is invalid\. expected an instance id \(\[A-Za-z0-9\._-\], 1-64 characters\)/],
    [['run', '--instance-id', 'x'.repeat(65)], /--instance-id.*it has 65 characters \(at most 64\)/],
    [['validate', 'topologies/a.yaml', '--topology', 'topologies/b.yaml'], /topology given twice/],
    [['backfill', '--from', 'earliest', '--output', 'x.jsonl', '--workers', '0'], /--workers.*positive integer/],
    [['backfill', '--from', 'earliest', '--output', 'x.jsonl', '--format', 'xml'], /--format.*expected one of jsonl, csv/],
    [['backfill', '--output', 'x.jsonl'], /required option '--from <spec>' not specified/],
    [['models', 'promote', 'fraud@99'], /fraud@99 does not exist in .*models \(versions: 1, 2/],
    [['models', 'promote', 'fraud'], /bad model reference 'fraud' \(expected NAME@VERSION\)/],
    [['models', 'promote', 'fraud@2', '--wait', 'soon'], /--wait.*positive integer/],
    [['models', 'verify', 'fraud@99'], /fraud@99 does not exist/],
    [['shadow', 'report', '--live', 't', '--bootstrap', 'x'], /--bootstrap.*integer >= 0/],
    [['shadow', 'report', '--live', 't', '--from', 'yesterday'], /--from: 'yesterday' is neither an ISO time nor epoch milliseconds/],
    [['features', 'load', '--set', 's', '--on-bad-row', 'maybe'], /--on-bad-row.*expected one of skip, reject/],
    [['features', 'gc', '--set', 's', '--grace-ms', '-1'], /--grace-ms.*integer >= 0/],
    [['status', '--interval', '0'], /--interval.*positive integer/],
    [['status', '--metrics-url', 'localhost:9400'], /--metrics-url: expected http:\/\/HOST:PORT/],
    [['tail'], /missing required argument 'topic'/],
    [['tail', 't', '--max', 'all'], /--max.*positive integer/],
    [['setup', '--for', 'prod'], /--for.*expected one of stack, tests/],
    [['--log-level', 'loud', 'validate'], /--log-level.*Allowed choices are trace, debug/],
    [['no-such-command'], /unknown command 'no-such-command'/],
  ];

  it.each(bad)('%j exits 2 with a clear message', (args, message) => {
    const res = cli(args);
    expect(res.stderr).toMatch(message);
    expect(res.status).toBe(2);
    expect(res.stderr.split('\n')[0]).toMatch(/^error: /);
  });

  it('a bad TRIBUTARY_INSTANCE_ID stops `run` at start, naming the variable and the flag', () => {
    const res = cli(['run'], { TRIBUTARY_INSTANCE_ID: 'a/b' });
    expect(res.stderr).toMatch(/option '--instance-id <id>' value 'a\/b' from env 'TRIBUTARY_INSTANCE_ID' is invalid/);
    expect(res.status).toBe(2);
    expect(cli(['run', '--help']).stdout).toMatch(/--instance-id <id>[\s\S]*\(env:\s+TRIBUTARY_INSTANCE_ID\)/);
  });

  it('run --processes: an instance id too long for its workers (ID.<index>) and a process count below 1 stop it at start', () => {
    const id = 'x'.repeat(63);
    const res = cli(['run', '--processes', '2', '--instance-id', id]);
    expect(res.stderr).toContain(`--instance-id with --processes 2: the workers are named ${id}.0 ... ${id}.1`);
    expect(res.status).toBe(2);
    expect(cli(['run', '--processes', '0']).status).toBe(2);
  });

  it('--json works globally and per command: only JSON on stdout', () => {
    for (const args of [['--json', 'validate'], ['validate', '--json'], ['--json', '--quiet', 'validate', '--topology', 'topologies/fraud-detection.yaml']]) {
      const res = cli(args);
      expect(res.status).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ ok: true, stages: 2 });
    }
    expect(cli(['validate']).stdout).toMatch(/fraud-detection\.yaml: ok \(2 stages/);
  });

  it('a reader of stdout that went away (`| head`) ends the command quietly with 0, not with an EPIPE stack', () => {
    // The reader closes its end at once; node starts later, so its first write finds the pipe broken.
    const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} validate --topology topologies/fraud-detection.yaml | (exec 0<&-; sleep 2); echo "exit=\${PIPESTATUS[0]}" >&2`;
    const res = spawnSync('bash', ['-c', script], { cwd: repoRoot(), encoding: 'utf8', timeout: 60000, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn' } });
    expect(res.stderr).not.toMatch(/EPIPE|Error/);
    expect(res.stderr.trim()).toBe('exit=0');
  });

  it('a taken metrics port is explained with the flag to use', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const res = cli(['run', '--metrics-port', String(port)]);
      expect(res.status).toBe(1);
      expect(res.stderr).toContain(`metrics port 127.0.0.1:${port} is already in use`);
      expect(res.stderr).toContain('--metrics-port PORT (or --metrics-port 0 for any free port; env TRIBUTARY_METRICS_PORT)');
      expect(res.stderr).not.toContain('EADDRINUSE');
    } finally {
      server.close();
    }
  });
});
