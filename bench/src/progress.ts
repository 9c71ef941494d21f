/**
 * Progress of a bench run: human lines (and a live status line) on a TTY, one JSON object per line
 * otherwise (for CI logs and tools). `log` is for events; `status` for the step in progress.
 */
export interface StepStatus {
  system: string;
  phase: string;
  step: number;
  rate: number;
  /** Seconds into the step / the step's planned length. */
  elapsedS: number;
  stepS: number;
  /** Rough seconds left for the whole run (planned steps x step length; capacity search length varies). */
  etaS: number;
  state: 'driving' | 'draining';
}

export class Progress {
  private readonly tty = Boolean(process.stdout.isTTY);
  private lastJson = 0;
  private statusShown = false;

  log(msg: string, data: Record<string, unknown> = {}): void {
    if (this.tty) {
      this.clearStatus();
      console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
    } else console.log(JSON.stringify({ t: new Date().toISOString(), event: 'log', msg, ...data }));
  }

  status(s: StepStatus): void {
    if (this.tty) {
      const line = `  ${s.system} | ${s.phase} step ${s.step} | ${s.rate.toLocaleString('en-US')}/s | ${s.state} ${s.elapsedS.toFixed(0)}/${s.stepS.toFixed(0)} s | run ETA ~${fmt(s.etaS)}`;
      process.stdout.write(`\r${line.padEnd(100).slice(0, 120)}`);
      this.statusShown = true;
    } else if (Date.now() - this.lastJson >= 5000) {
      // at most one status line per 5 s: enough to see it move, not enough to flood a log
      this.lastJson = Date.now();
      console.log(JSON.stringify({ t: new Date().toISOString(), event: 'progress', ...s, elapsedS: Math.round(s.elapsedS), etaS: Math.round(s.etaS) }));
    }
  }

  private clearStatus(): void {
    if (this.statusShown) process.stdout.write('\r' + ' '.repeat(120) + '\r');
    this.statusShown = false;
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}
