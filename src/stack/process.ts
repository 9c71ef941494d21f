import { execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import { isPidAlive } from '../util/process-alive';

export { isPidAlive };

/** Sleeps `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The process's command line joined by spaces, or undefined when it is gone or unreadable. */
export function commandLine(pid: number): string | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const line = raw.split('\0').join(' ').trim();
    return line.length > 0 ? line : undefined;
  } catch {
    // no /proc: ask ps
  }
  try {
    const out = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A marker that matches one whole command-line argument (so port 3707 does not match 37075). */
export function wholeArg(arg: string): string {
  return ` ${arg} `;
}

/** True when the command line contains every marker; markers may use wholeArg() to match a whole argument. */
export function commandLineMatches(cmd: string, markers: readonly string[]): boolean {
  const padded = ` ${cmd} `;
  return markers.every((m) => padded.includes(m));
}

/**
 * True when `pid` is alive and its command line contains every marker: guards against acting on a pid
 * that was reused by an unrelated process (e.g. after a reboot).
 */
export function isOurProcess(pid: number, markers: readonly string[]): boolean {
  if (!isPidAlive(pid)) return false;
  const cmd = commandLine(pid);
  return cmd !== undefined && commandLineMatches(cmd, markers);
}

/**
 * Live pids (other than our own) whose working directory is `dir` or inside it and whose command line matches
 * `markers`; Linux only (reads /proc), empty elsewhere.
 */
export function processesWorkingIn(dir: string, markers: readonly string[]): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  let real: string;
  try {
    real = fs.realpathSync(dir); // /proc/<pid>/cwd is a resolved path
  } catch {
    return []; // no such dir: nothing can be working in it
  }
  const root = `${real.replace(/\/+$/, '')}/`;
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cwd: string;
    try {
      cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (cwd !== real && !cwd.startsWith(root)) continue;
    if (isOurProcess(pid, markers)) pids.push(pid);
  }
  return pids;
}

export interface DetachedProcess {
  pid: number;
  /** Set once the process exits while this Node process is still its parent. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

export class SpawnError extends Error {
  override readonly name = 'SpawnError';
}

/**
 * Starts `command` directly (no shell, so the pid is the server's own) in its own session, with stdout and
 * stderr appended to `logFile`, and unreferenced so it outlives this Node process.
 */
export function spawnDetached(command: string, args: readonly string[], opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv }): Promise<DetachedProcess> {
  const fd = fs.openSync(opts.logFile, 'a');
  return new Promise<DetachedProcess>((resolve, reject) => {
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const child = spawn(command, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.once('error', (err) => reject(new SpawnError(`Could not start ${command}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
    });
    child.once('spawn', () => {
      child.unref();
      resolve({ pid: child.pid!, exit: () => exitInfo });
    });
  }).finally(() => fs.closeSync(fd));
}

export interface RunResult {
  code: number;
  output: string;
}

/** Runs a short command to completion, capturing stdout+stderr; never throws for a non-zero exit. */
export function runCommand(command: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 0, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const output = `${stdout ?? ''}${stderr ?? ''}`;
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new SpawnError(`Could not run ${command}: ${err.message}`));
          return;
        }
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, output });
      },
    );
  });
}

export type StopResult = 'stopped' | 'killed' | 'not-running' | 'not-ours';

export class ProcessStopError extends Error {
  override readonly name = 'ProcessStopError';
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isPidAlive(pid)) return true;
    await delay(100);
  }
  return !isPidAlive(pid);
}

/**
 * Stops exactly `pid`: SIGTERM, wait up to `timeoutMs`, then SIGKILL. Does nothing when the pid is gone, or
 * alive but not matching `markers` (a reused pid). Throws ProcessStopError if it survives SIGKILL.
 */
export async function stopProcess(pid: number, markers: readonly string[], timeoutMs: number): Promise<StopResult> {
  if (!isPidAlive(pid)) return 'not-running';
  if (!isOurProcess(pid, markers)) return 'not-ours';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  if (await waitForExit(pid, timeoutMs)) return 'stopped';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  if (await waitForExit(pid, 5_000)) return 'killed';
  throw new ProcessStopError(`Process ${pid} is still alive after SIGKILL`);
}

/** The last line of a log file matching `pattern` (or simply the last non-empty line), trimmed to `max` chars. */
export function lastLogLine(logFile: string, pattern: RegExp = /ERROR|Exception|FATAL|Error:/, max = 300): string | undefined {
  let text: string;
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const chosen = [...lines].reverse().find((l) => pattern.test(l)) ?? lines[lines.length - 1];
  if (!chosen) return undefined;
  return chosen.length > max ? `${chosen.slice(0, max)}…` : chosen;
}
