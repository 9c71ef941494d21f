import { timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../util/logger';
import type { GatewayEvent } from './events';
import type { Gateway, SubmitResult } from './gateway';
import type { GatewayMetrics } from './metrics';
import { openApiDocument } from './openapi';
import { playgroundHtml, topologyDocument } from './playground';

export interface GatewayLimits {
  /** Requests (predict + stream) waiting for their outcome; beyond: 429. */
  maxInFlight: number;
  /** Open client connections; requests on connections beyond: 503 and the connection is closed. */
  maxConnections: number;
  /** Request body bytes; beyond: 413. */
  maxBodyBytes: number;
  defaultTimeoutMs: number;
  /** Upper bound of a client's `timeoutMs`. */
  maxTimeoutMs: number;
}

export const DEFAULT_LIMITS: GatewayLimits = { maxInFlight: 1000, maxConnections: 4000, maxBodyBytes: 64 * 1024, defaultTimeoutMs: 5000, maxTimeoutMs: 30000 };

export interface GatewayServerOptions {
  gateway: Gateway;
  metrics: GatewayMetrics;
  log: Logger;
  host: string;
  port: number;
  limits: GatewayLimits;
  /** Bearer token required on /v1/predict and /v1/stream (from the environment; absent: no auth). */
  token?: string;
  /** HTTPS with this certificate; with `clientCaFile`, mutual TLS: clients must present a certificate that CA signed. */
  tls?: GatewayTls;
}

export interface GatewayTls {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const overLimit = new WeakSet<Socket>();

/** Methods of each route (the Allow header of a 405). */
const ALLOWED: Record<string, string> = { '/': 'GET', '/openapi.json': 'GET', '/v1/topology': 'GET', '/metrics': 'GET', '/healthz': 'GET', '/readyz': 'GET', '/v1/predict': 'POST', '/v1/stream': 'POST' };

/**
 * The gateway's HTTP server: POST /v1/predict (JSON answer), POST /v1/stream (Server-Sent Events),
 * GET / (playground), /v1/topology, /openapi.json, /metrics, /healthz, /readyz. Overload is refused
 * at once (429/503 with Retry-After), never queued.
 */
export class GatewayServer {
  private server?: http.Server;
  private openConnections = 0;
  private inFlight = 0;
  private openStreams = 0;
  private readonly sockets = new Set<Socket>();
  private readonly openapi: string;

  constructor(private readonly opts: GatewayServerOptions) {
    this.openapi = JSON.stringify(openApiDocument(opts.gateway, { auth: !!opts.token, maxTimeoutMs: opts.limits.maxTimeoutMs, maxBodyBytes: opts.limits.maxBodyBytes }));
  }

  async start(): Promise<{ url: string; port: number }> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    const { tls } = this.opts;
    // Mutual TLS refuses a client without a certificate from the CA in the handshake, before any request.
    const server: http.Server = tls
      ? https.createServer({ cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile), ...(tls.clientCaFile ? { ca: fs.readFileSync(tls.clientCaFile), requestCert: true, rejectUnauthorized: true } : {}) }, handler)
      : http.createServer(handler);
    // Hard stop well past the soft limit (where requests are answered 503): bounds file descriptors.
    server.maxConnections = this.opts.limits.maxConnections * 2;
    server.keepAliveTimeout = 5000;
    server.requestTimeout = this.opts.limits.maxTimeoutMs + 10000;
    server.on('connection', (socket: Socket) => {
      this.openConnections += 1;
      this.sockets.add(socket);
      this.opts.metrics.openConnections.set(this.openConnections);
      if (this.openConnections > this.opts.limits.maxConnections) overLimit.add(socket);
      socket.on('close', () => {
        this.openConnections -= 1;
        this.sockets.delete(socket);
        this.opts.metrics.openConnections.set(this.openConnections);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const url = `${tls ? 'https' : 'http'}://${this.opts.host}:${port}`;
    this.opts.log.info({ url, bearerTokenRequired: !!this.opts.token, clientCertificateRequired: !!tls?.clientCaFile }, 'gateway listening');
    return { url, port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Streams and waiting requests end with the process: give them a moment, then cut.
    const t = setTimeout(() => this.sockets.forEach((s) => s.destroy()), 2000);
    t.unref();
    await closed;
    clearTimeout(t);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const route = `${req.method} ${url.pathname}`;
    const endpoint = url.pathname === '/v1/predict' ? 'predict' : url.pathname === '/v1/stream' ? 'stream' : 'other';
    try {
      switch (route) {
        case 'GET /':
          return send(res, 200, playgroundHtml(), 'text/html; charset=utf-8');
        case 'GET /openapi.json':
          return send(res, 200, this.openapi, 'application/json');
        case 'GET /v1/topology':
          return sendJson(res, 200, topologyDocument(this.opts.gateway));
        case 'GET /metrics':
          return send(res, 200, await this.opts.metrics.registry.metrics(), this.opts.metrics.registry.contentType);
        case 'GET /healthz':
          return sendJson(res, 200, { status: 'ok' });
        case 'GET /readyz':
          return sendJson(res, this.opts.gateway.ready ? 200 : 503, { ready: this.opts.gateway.ready, replyPartition: this.opts.gateway.ready ? this.opts.gateway.replyPartition : null, instance: this.opts.gateway.instanceId });
        case 'POST /v1/predict':
        case 'POST /v1/stream':
          return await this.request(req, res, endpoint as 'predict' | 'stream', url);
        default:
          if (ALLOWED[url.pathname]) return sendJson(res, 405, { error: `${req.method} not allowed on ${url.pathname}` }, { allow: ALLOWED[url.pathname] });
          return sendJson(res, 404, { error: `no route ${url.pathname}` });
      }
    } catch (err) {
      if (err instanceof HttpError) {
        this.opts.metrics.requests.inc({ endpoint, outcome: err.outcome });
        if (!res.headersSent) return sendJson(res, err.status, { error: err.message }, err.headers);
        return void res.end();
      }
      this.opts.log.error({ err: (err as Error).message, route }, 'gateway request failed');
      this.opts.metrics.requests.inc({ endpoint, outcome: 'error' });
      if (!res.headersSent) sendJson(res, 503, { error: `the request could not be served: ${(err as Error).message}` }, { 'retry-after': '1' });
      else res.end();
    }
  }

  /** Admission, then the request: every refusal happens before anything is produced. */
  private async request(req: http.IncomingMessage, res: http.ServerResponse, endpoint: 'predict' | 'stream', url: URL): Promise<void> {
    const { limits, metrics } = this.opts;
    if (overLimit.has(req.socket)) throw new HttpError(503, 'overloaded', `more than ${limits.maxConnections} open connections`, { 'retry-after': '1', connection: 'close' });
    this.authorize(req);
    if (!this.opts.gateway.ready) throw new HttpError(503, 'unavailable', 'gateway is not ready (starting, stopping or without its reply partition)', { 'retry-after': '2' });
    if (this.inFlight >= limits.maxInFlight) throw new HttpError(429, 'overloaded', `${limits.maxInFlight} requests already in flight`, { 'retry-after': '1' });
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'bad_request', 'body must be application/json');
    const timeoutMs = this.timeoutOf(url);
    const key = req.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(key))) throw new HttpError(400, 'bad_request', 'Idempotency-Key must be 1-200 visible ASCII characters');
    this.inFlight += 1;
    metrics.inFlight.set(this.inFlight);
    try {
      const body = await readBody(req, limits.maxBodyBytes);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new HttpError(400, 'bad_request', `body is not JSON: ${(err as Error).message}`);
      }
      if (endpoint === 'predict') await this.predict(res, json, timeoutMs, key);
      else await this.stream(req, res, json, timeoutMs, key);
    } finally {
      this.inFlight -= 1;
      metrics.inFlight.set(this.inFlight);
    }
  }

  private authorize(req: http.IncomingMessage): void {
    const token = this.opts.token;
    if (!token) return;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const want = Buffer.from(token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new HttpError(401, 'unauthorized', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
  }

  private timeoutOf(url: URL): number {
    const raw = url.searchParams.get('timeoutMs');
    if (raw === null) return this.opts.limits.defaultTimeoutMs;
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new HttpError(400, 'bad_request', 'timeoutMs must be a positive integer');
    return Math.min(Number(raw), this.opts.limits.maxTimeoutMs);
  }

  private async predict(res: http.ServerResponse, json: unknown, timeoutMs: number, key?: string): Promise<void> {
    const result = await this.opts.gateway.submit(json, { idempotencyKey: key, timeoutMs, wantShadows: false });
    if (this.refused(res, 'predict', result)) return;
    const { events, replayed } = result as Extract<SubmitResult, { kind: 'done' }>;
    const accepted = events.find((e) => e.type === 'accepted') as Extract<GatewayEvent, { type: 'accepted' }> | undefined;
    const end = events[events.length - 1] as Extract<GatewayEvent, { type: 'end' }>;
    const headers: Record<string, string> = replayed ? { 'idempotent-replayed': 'true' } : {};
    const count = (outcome: string) => this.opts.metrics.requests.inc({ endpoint: 'predict', outcome: replayed && outcome === 'ok' ? 'replayed' : outcome });
    if (end.outcome === 'prediction') {
      const p = events.find((e) => e.type === 'prediction') as Extract<GatewayEvent, { type: 'prediction' }>;
      count('ok');
      return sendJson(res, 200, { correlationId: accepted?.correlationId ?? '', stage: p.stage, prediction: p.value, input: accepted ? { topic: accepted.topic, partition: accepted.partition, offset: accepted.offset } : undefined, replayed, ms: p.ms }, headers);
    }
    if (end.outcome === 'dead-letter') {
      const d = events.find((e) => e.type === 'dead-letter') as Extract<GatewayEvent, { type: 'dead-letter' }>;
      count('dead_letter');
      return sendJson(res, 422, { error: 'dead-lettered', stage: d.stage, errorKind: d.errorKind, errorMessage: d.errorMessage, correlationId: accepted?.correlationId }, headers);
    }
    const t = events.find((e) => e.type === 'timeout') as Extract<GatewayEvent, { type: 'timeout' }>;
    count('timeout');
    return sendJson(res, 504, { error: `no prediction within ${timeoutMs} ms`, stage: t.stage, detail: t.detail, correlationId: accepted?.correlationId }, headers);
  }

  private async stream(req: http.IncomingMessage, res: http.ServerResponse, json: unknown, timeoutMs: number, key?: string): Promise<void> {
    const { metrics } = this.opts;
    let open = false;
    let gone = false;
    res.on('close', () => (gone = true));
    const write = (e: GatewayEvent) => {
      if (gone) return;
      if (!open) {
        open = true;
        this.openStreams += 1;
        metrics.openStreams.set(this.openStreams);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      }
      res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    // Validation problems answer 400 before the stream opens.
    const { problems } = this.opts.gateway.validate(json);
    if (problems.length > 0) {
      metrics.requests.inc({ endpoint: 'stream', outcome: 'bad_request' });
      return sendJson(res, 400, { error: 'event does not match the input schema', problems });
    }
    try {
      const result = await this.opts.gateway.submit(json, { idempotencyKey: key, timeoutMs, wantShadows: true, onEvent: write });
      if (this.refused(res, 'stream', result)) return;
      const end = (result as Extract<SubmitResult, { kind: 'done' }>).events.at(-1) as Extract<GatewayEvent, { type: 'end' }>;
      metrics.requests.inc({ endpoint: 'stream', outcome: end.outcome === 'prediction' ? 'ok' : end.outcome === 'dead-letter' ? 'dead_letter' : 'timeout' });
      res.end();
    } finally {
      if (open) {
        this.openStreams -= 1;
        metrics.openStreams.set(this.openStreams);
      }
      void req;
    }
  }

  /** Answers the refusals a submit can end in (schema problems, key reuse); true when it did. */
  private refused(res: http.ServerResponse, endpoint: string, result: SubmitResult): boolean {
    if (result.kind === 'invalid') {
      this.opts.metrics.requests.inc({ endpoint, outcome: 'bad_request' });
      sendJson(res, 400, { error: 'event does not match the input schema', problems: result.problems });
      return true;
    }
    if (result.kind === 'conflict') {
      this.opts.metrics.requests.inc({ endpoint, outcome: 'conflict' });
      sendJson(res, 409, { error: result.message });
      return true;
    }
    return false;
  }
}

function send(res: http.ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(body), 'application/json', headers);
}

/** Reads the body, refusing (413) as soon as it passes `max` bytes. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return Promise.reject(new HttpError(413, 'too_large', `body of ${declared} bytes exceeds ${max}`, { connection: 'close' }));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new HttpError(413, 'too_large', `body exceeds ${max} bytes`, { connection: 'close' }));
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
