import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { createLogger } from '../util/logger';

const log = createLogger('monitoring-http');

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, unknown>;
}

export interface MonitoringServerOptions {
  registry: Registry;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Loopback unless configured otherwise: metrics are not for the whole network by default. */
  host?: string;
  readiness: () => ReadinessReport;
}

/**
 * /metrics (Prometheus text exposition), /healthz (the process is alive and serving),
 * /readyz (connected, partitions assigned, model loaded: 200 when ready, 503 otherwise).
 */
export class MonitoringServer {
  private server?: http.Server;

  constructor(private readonly options: MonitoringServerOptions) {}

  async start(): Promise<{ host: string; port: number; url: string }> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const url = `http://${host}:${port}`;
    log.info({ url }, 'monitoring server listening');
    return { host, port, url };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/metrics') {
        const body = await this.options.registry.metrics();
        res.writeHead(200, { 'content-type': this.options.registry.contentType });
        res.end(body);
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'ok', uptimeSeconds: process.uptime() }));
      } else if (path === '/readyz') {
        const report = this.options.readiness();
        res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(report));
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found: try /metrics, /healthz, /readyz\n');
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error: ${(err as Error).message}\n`);
    }
  }
}
