/**
 * What the CLI does when the program reading its stdout goes away (`tributary stack status | head -3`,
 * a `tail` piped into a reader that quit). Node ignores SIGPIPE, so the next write fails with EPIPE
 * on the stream; unhandled, that error crashed the command with a stack trace and exit code 1 after
 * it had done its work. A closed reader is the user saying "enough", as SIGPIPE says to a C program:
 * stop quietly.
 *
 * - A command that handles SIGTERM (a running pipeline, the gateway, a process group, a backfill,
 *   the demo) gets that same graceful stop: its transactions end and its offsets are committed as
 *   on a signal, so nothing is lost or left half-done because a log reader closed.
 * - Any other command exits at once with 0: what it printed was read as far as the reader wanted.
 *
 * Other stdout errors are left to Node's default (they are real failures).
 */
export function handleBrokenStdout(stream: NodeJS.WriteStream = process.stdout): void {
  let handled = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    // Once the pipe broke, later writes fail too (EPIPE, or the stream already destroyed): ignored.
    if (handled) return;
    if (err.code !== 'EPIPE') throw err;
    handled = true;
    if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
    else process.exit(0);
  });
}
