/**
 * One progress display for every long piece of work (backfill, feature loads, model gates, stack start):
 *  - on a terminal, a bar redrawn in place: `[#####.....] 50.0% 500/1000 rows  250 rows/s  ETA 0:02`;
 *  - elsewhere (pipes, CI, --json), the same text as an info log line every `intervalMs`, so JSON mode stays
 *    JSON lines and --quiet (level warn) hides it.
 */
import { createLogger, type Logger } from './logger';
import { setBarLine } from './terminal-line';

export interface ProgressState {
  done: number;
  total: number;
  /** Items per second; computed from the elapsed time when absent. */
  rate?: number;
  /** Milliseconds left; computed from the rate when absent (null: unknown). */
  etaMs?: number | null;
  /** Appended after the ETA (counters of the job). */
  extra?: string;
}

/** `m:ss` or `h:mm:ss`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** The bar text: `[##......] 25.0% 500/2000 events  250 events/s  ETA 0:06  <extra>`. */
export function progressText(p: Required<Pick<ProgressState, 'done' | 'total' | 'rate'>> & { etaMs: number | null; extra?: string }, unit: string, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * width);
  const eta = p.etaMs === null ? '--:--' : formatDuration(p.etaMs);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${p.done}/${p.total} ${unit}  ${Math.round(p.rate)} ${unit}/s  ETA ${eta}${p.extra ? `  ${p.extra}` : ''}`;
}

export interface ProgressOptions {
  /** Shown before the bar ("backfill", "golden"). */
  label?: string;
  /** What is counted ("events", "rows"). */
  unit: string;
  /** Where the terminal bar is drawn (default stderr). */
  stream?: NodeJS.WriteStream;
  /** Seconds between lines when not drawing on a terminal (default 2000 ms). */
  intervalMs?: number;
  logger?: Logger;
  /** Force the terminal bar on or off (default: the stream is a TTY, human log format and not --quiet). */
  terminal?: boolean;
  now?: () => number;
}

export function progressQuiet(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TRIBUTARY_QUIET === '1';
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly terminal: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly started: number;
  private last = 0;
  private lastText = '';
  private drawn = false;
  private log?: Logger;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.terminal = opts.terminal ?? (Boolean(this.stream.isTTY) && process.env.TRIBUTARY_LOG_FORMAT !== 'json' && !progressQuiet());
    this.intervalMs = opts.intervalMs ?? 2000;
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    this.log = opts.logger;
  }

  /** The text for a state, with rate and ETA filled in from the elapsed time when the caller has none. */
  text(p: ProgressState): string {
    const elapsed = Math.max(1, this.now() - this.started);
    // Under half a second of history the rate is noise: no rate, no ETA yet.
    const rate = p.rate ?? (elapsed < 500 && p.done < p.total ? 0 : (p.done / elapsed) * 1000);
    const etaMs = p.etaMs !== undefined ? p.etaMs : p.done >= p.total ? 0 : rate > 0 ? ((p.total - p.done) / rate) * 1000 : null;
    const bar = progressText({ done: p.done, total: p.total, rate, etaMs, extra: p.extra }, this.opts.unit);
    return this.opts.label ? `${this.opts.label.padEnd(11)} ${bar}` : bar;
  }

  update(p: ProgressState): void {
    const now = this.now();
    const finished = p.done >= p.total;
    if (now - this.last < (this.terminal ? 150 : this.intervalMs) && !finished) return;
    const text = this.text(p);
    if (text === this.lastText) return;
    this.last = now;
    this.lastText = text;
    if (this.terminal) {
      this.stream.write(`\r${text}\u001b[K`);
      this.drawn = true;
      if (this.stream === process.stderr) setBarLine(text);
      if (finished) this.end(); // a finished bar stays as it is; later log lines go below it
    } else {
      (this.log ??= createLogger('progress')).info({ progress: { label: this.opts.label, done: p.done, total: p.total } }, text);
    }
  }

  /** Ends the terminal bar's line (call once, success or not). */
  end(): void {
    if (this.drawn) this.stream.write('\n');
    if (this.drawn && this.stream === process.stderr) setBarLine(undefined);
    this.drawn = false;
  }
}
