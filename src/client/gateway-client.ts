import type { GatewayEvent } from '../gateway/events';
import type { Prediction } from './generated/avro-types';

export type { GatewayEvent } from '../gateway/events';

/** A refusal or failure of the gateway, with its HTTP status and JSON body (e.g. 400 with `problems`, 504 with `stage`). */
export class GatewayHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    /** Seconds, from Retry-After (429/503). */
    readonly retryAfter?: number,
  ) {
    super(`gateway answered ${status}: ${String(body.error ?? '')}${body.stage ? ` (stage ${String(body.stage)})` : ''}`);
  }
}

export interface GatewayClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  token?: string;
}

export interface RequestOptions {
  /** Retries with the same key return the same answer and produce no second event. */
  idempotencyKey?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PredictAnswer<P> {
  correlationId: string;
  stage: string;
  prediction: P;
  input: { topic: string; partition: number; offset: string };
  /** True when this answer was stored for an earlier request with the same idempotency key. */
  replayed: boolean;
  ms: number;
}

/**
 * Typed client of `tributary gateway`: `predict(event)` resolves with the prediction (or throws
 * GatewayHttpError: 400 bad event, 422 dead-lettered, 504 deadline naming the stage, 429/503
 * overload with retryAfter); `stream(event)` yields the update events as the gateway sends them.
 * Type parameters: the topology's input event type (any object; pass your generated type) → Prediction.
 */
export class GatewayClient<E = unknown, P = Prediction> {
  constructor(private readonly opts: GatewayClientOptions) {}

  private request(path: string, event: E, o: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (o.idempotencyKey) headers['idempotency-key'] = o.idempotencyKey;
    const q = o.timeoutMs !== undefined ? `?timeoutMs=${o.timeoutMs}` : '';
    return fetch(`${this.opts.url}${path}${q}`, { method: 'POST', headers, body: JSON.stringify(event), signal: o.signal });
  }

  private static async fail(res: Response): Promise<never> {
    const text = await res.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { error: text };
    }
    const ra = res.headers.get('retry-after');
    throw new GatewayHttpError(res.status, body, ra === null ? undefined : Number(ra));
  }

  async predict(event: E, o: RequestOptions = {}): Promise<PredictAnswer<P>> {
    const res = await this.request('/v1/predict', event, o);
    if (res.status !== 200) return GatewayClient.fail(res);
    return (await res.json()) as PredictAnswer<P>;
  }

  /** The update events of one request (accepted, features, prediction, shadow, dead-letter, timeout, end). */
  async *stream(event: E, o: RequestOptions = {}): AsyncGenerator<GatewayEvent> {
    const res = await this.request('/v1/stream', event, o);
    if (res.status !== 200 || !res.body) await GatewayClient.fail(res);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body! as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (data) yield JSON.parse(data) as GatewayEvent;
      }
    }
  }
}
