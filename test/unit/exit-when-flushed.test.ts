import * as childProcess from 'node:child_process';
import { moduleExportsExpression } from '../helpers/transpiled';

/**
 * A child process writes 2 MiB to a pipe whose reader waits before it reads (so the pipe's 64 KiB
 * buffer fills and Node queues the rest), then exits with code 3; the bytes and the code that arrive.
 */
async function slowlyRead(exit: 'exitWhenFlushed' | 'process.exit'): Promise<{ bytes: number; code: number | null }> {
  const script = `
    const m = ${moduleExportsExpression('src/cli/graceful-exit.ts')};
    const line = 'x'.repeat(1023) + '\\n';
    for (let i = 0; i < 2048; i++) process.stdout.write(line);
    ${exit === 'exitWhenFlushed' ? 'm.exitWhenFlushed(3)' : 'process.exit(3)'};`;
  const child = childProcess.spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  child.stdout.pause();
  await new Promise((r) => setTimeout(r, 500));
  let bytes = 0;
  child.stdout.on('data', (d: Buffer) => (bytes += d.length));
  child.stdout.resume(); // paused explicitly above: a 'data' listener alone does not resume it
  const code = await closed;
  return { bytes, code };
}

describe('exitWhenFlushed: a command exits only after its output reached the pipe', () => {
  it('delivers every byte written before it to a slow reader, and exits with the code asked for', async () => {
    expect(await slowlyRead('exitWhenFlushed')).toEqual({ bytes: 2048 * 1024, code: 3 });
  }, 30_000);

  it('is needed: process.exit in the same place loses what Node still had queued', async () => {
    const lost = await slowlyRead('process.exit');
    expect(lost.code).toBe(3);
    expect(lost.bytes).toBeLessThan(2048 * 1024);
  }, 30_000);
});
