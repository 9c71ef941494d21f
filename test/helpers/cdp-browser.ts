import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** Chromium from Debian's packages (`apt-get install -y chromium`). */
export function chromiumBinary(): string {
  for (const bin of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
    if (found) return found;
  }
  throw new Error('chromium is required for this test: apt-get install -y chromium');
}

/**
 * A headless Chromium driven over the DevTools protocol on a pipe (no extra dependency): for pages
 * that must be waited on in real time (a streaming fetch), where --dump-dom's virtual time would
 * dump the page before the stream ends.
 */
export class CdpBrowser {
  private readonly child: ChildProcess;
  private nextId = 1;
  private buffer = '';
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  constructor(profileDir: string) {
    this.child = spawn(chromiumBinary(), ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', '--hide-scrollbars', '--remote-debugging-pipe', `--user-data-dir=${profileDir}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    (this.child.stdio[4] as Readable).on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let cut: number;
      while ((cut = this.buffer.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, cut)) as { id?: number; result?: unknown; error?: { message: string } };
        this.buffer = this.buffer.slice(cut + 1);
        const w = msg.id !== undefined ? this.waiting.get(msg.id) : undefined;
        if (!w) continue;
        this.waiting.delete(msg.id!);
        if (msg.error) w.reject(new Error(msg.error.message));
        else w.resolve(msg.result);
      }
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** Opens `url` in a new page of the given size; returns the page's session. */
  async open(url: string, width = 1280, height = 860): Promise<string> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    await this.send('Page.navigate', { url }, sessionId);
    return sessionId;
  }

  async evaluate<T>(sessionId: string, expression: string): Promise<T> {
    const res = await this.send('Runtime.evaluate', { expression, returnByValue: true }, sessionId);
    return res.result.value as T;
  }

  /** Polls `expression` until it is truthy (real time). */
  async waitFor(sessionId: string, expression: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(sessionId, `Boolean(${expression})`))) {
      if (Date.now() > deadline) throw new Error(`page never satisfied ${expression} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async html(sessionId: string): Promise<string> {
    return this.evaluate<string>(sessionId, 'document.documentElement.outerHTML');
  }

  async screenshot(sessionId: string): Promise<Buffer> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png' }, sessionId);
    return Buffer.from(data as string, 'base64');
  }

  async close(): Promise<void> {
    await Promise.race([this.send('Browser.close'), new Promise((r) => setTimeout(r, 3000))]).catch(() => undefined);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
