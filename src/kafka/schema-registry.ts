import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type * as avro from 'avsc';
import { TributaryError } from '../util/errors';

export class SchemaRegistryError extends TributaryError {}

/** Registry credentials come from config/env, never from the repo. */
export interface SchemaRegistryAuth {
  username: string;
  password: string;
}

export interface SchemaRegistryClientOptions {
  /** Base URL of the Confluent-compatible API, e.g. http://127.0.0.1:8081 or Apicurio's .../apis/ccompat/v7 */
  url: string;
  auth?: SchemaRegistryAuth;
}

/** Reads registry basic-auth from SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD when both are set. */
export function registryAuthFromEnv(env: NodeJS.ProcessEnv = process.env): SchemaRegistryAuth | undefined {
  const username = env.SCHEMA_REGISTRY_USERNAME;
  const password = env.SCHEMA_REGISTRY_PASSWORD;
  return username && password ? { username, password } : undefined;
}

/**
 * Schema registry access. Registration goes over the registry's REST API directly (plain
 * `POST /subjects/{subject}/versions`) because compatible servers differ in the subject-config
 * endpoints that the library's register() touches; encode/decode and the id->schema cache
 * use @kafkajs/confluent-schema-registry.
 */
export class SchemaRegistryClient {
  readonly registry: SchemaRegistry;
  private readonly idsBySubjectAndText = new Map<string, number>();

  constructor(private readonly options: SchemaRegistryClientOptions) {
    this.registry = new SchemaRegistry({ host: options.url, auth: options.auth ? { ...options.auth } : undefined });
  }

  get url(): string {
    return this.options.url;
  }

  /** Registers `schemaText` under `subject` (idempotent: an identical schema returns the existing id). */
  async register(subject: string, schemaText: string): Promise<number> {
    const cacheKey = `${subject}\u0000${schemaText}`;
    const cached = this.idsBySubjectAndText.get(cacheKey);
    if (cached !== undefined) return cached;
    const body = JSON.stringify({ schema: schemaText, schemaType: 'AVRO' });
    const res = await this.request(`/subjects/${encodeURIComponent(subject)}/versions`, { method: 'POST', body });
    const parsed = (await res.json()) as { id?: number };
    if (typeof parsed.id !== 'number') {
      throw new SchemaRegistryError(`registry answered without an id when registering subject '${subject}'`);
    }
    this.idsBySubjectAndText.set(cacheKey, parsed.id);
    return parsed.id;
  }

  async subjects(): Promise<string[]> {
    const res = await this.request('/subjects', { method: 'GET' });
    return (await res.json()) as string[];
  }

  /** The writer schema for a registry id (cached by the library). Throws UnknownSchemaIdError on 404. */
  async writerType(id: number): Promise<avro.Type> {
    try {
      return (await this.registry.getSchema(id)) as unknown as avro.Type;
    } catch (err) {
      if ((err as { status?: number }).status === 404) throw new UnknownSchemaIdError(id);
      throw new SchemaRegistryError(`could not fetch schema id ${id}: ${(err as Error).message}${authHint((err as { status?: number }).status)}`, { cause: err });
    }
  }

  private async request(pathname: string, init: { method: string; body?: string }): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
    if (this.options.auth) {
      const token = Buffer.from(`${this.options.auth.username}:${this.options.auth.password}`).toString('base64');
      headers.authorization = `Basic ${token}`;
    }
    let res: Response;
    try {
      res = await fetch(`${this.options.url.replace(/\/$/, '')}${pathname}`, { ...init, headers });
    } catch (err) {
      throw new SchemaRegistryError(`schema registry unreachable at ${this.options.url}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) {
      throw new SchemaRegistryError(`schema registry ${init.method} ${pathname} failed: ${res.status} ${await res.text()}${authHint(res.status)}`);
    }
    return res;
  }
}

/** What to check when the registry refuses the credentials (or their absence). */
function authHint(status: number | undefined): string {
  return status === 401 || status === 403 ? ' (the registry refused the credentials: check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD)' : '';
}

export class UnknownSchemaIdError extends TributaryError {
  constructor(readonly schemaId: number) {
    super(`schema id ${schemaId} is not known to the registry`);
  }
}

/** TopicNameStrategy, the Confluent default: the value schema of topic T lives under subject `T-value`. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}
