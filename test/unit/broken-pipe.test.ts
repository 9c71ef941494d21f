import * as childProcess from 'node:child_process';
import { moduleExportsExpression } from '../helpers/transpiled';

interface Outcome {
  code: number | null;
  stderr: string;
}

/**
 * A child process that writes a line to stdout every 10 ms, whose reader closes the pipe before the
 * first write arrives; with or without handleBrokenStdout, with or without a SIGTERM handler (which
 * writes `graceful stop` to stderr and exits with 7, as a running pipeline's stop would).
 */
async function closedReader(opts: { handled: boolean; sigtermHandler: boolean }): Promise<Outcome> {
  const script = `
    const m = ${moduleExportsExpression('src/cli/broken-pipe.ts')};
    ${opts.handled ? 'm.handleBrokenStdout();' : ''}
    ${opts.sigtermHandler ? "process.on('SIGTERM', () => { process.stderr.write('graceful stop\\n'); setTimeout(() => process.exit(7), 20); });" : ''}
    setInterval(() => process.stdout.write('line\\n'), 10);
    setTimeout(() => { process.stderr.write('still running\\n'); process.exit(9); }, 5000);`;
  const child = childProcess.spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  child.stdout.destroy(); // the reader went away (`| head` after its lines)
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stderr };
}

describe('handleBrokenStdout: a reader of stdout that goes away stops the command quietly', () => {
  it('is needed: without it the write fails with EPIPE and the process crashes with a stack trace', async () => {
    const r = await closedReader({ handled: false, sigtermHandler: false });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/EPIPE/);
  }, 20_000);

  it('a command without a SIGTERM handler exits at once with 0 and prints nothing', async () => {
    const r = await closedReader({ handled: true, sigtermHandler: false });
    expect(r).toEqual({ code: 0, stderr: '' });
  }, 20_000);

  it("a command with a SIGTERM handler (run, gateway, backfill) gets its graceful stop, once", async () => {
    const r = await closedReader({ handled: true, sigtermHandler: true });
    expect(r.code).toBe(7);
    expect(r.stderr).toBe('graceful stop\n');
  }, 20_000);
});
