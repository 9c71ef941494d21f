import { isPidAlive } from './process-alive';
import { stateFilePath } from './paths';
import { readState, type StackState } from './stack-state';

/** Where the pipeline finds its servers. */
export interface StackEndpoints {
  brokers: string[];
  /** Base URL for a Confluent-compatible schema registry client. */
  schemaRegistryUrl: string;
  redisUrl: string;
  source: 'env' | 'local' | 'testcontainers';
}

export const ENDPOINT_ENV = {
  brokers: 'KAFKA_BROKERS',
  schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
  redisUrl: 'REDIS_URL',
} as const;

export class StackNotRunningError extends Error {
  override readonly name = 'StackNotRunningError';
}

export interface ResolveEndpointsOptions {
  env?: NodeJS.ProcessEnv;
  /** Default `$TRIBUTARY_HOME/stack/state.json`. */
  stateFile?: string;
}

/** Parses a comma-separated broker list ("a:1, b:2,") into ["a:1", "b:2"]. */
export function parseBrokers(list: string): string[] {
  return list
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
}

export function endpointsFromState(state: StackState): StackEndpoints {
  return { brokers: [...state.kafka.brokers], schemaRegistryUrl: state.registry.url, redisUrl: state.redis.url, source: 'local' };
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/**
 * Endpoints for the pipeline. Each of KAFKA_BROKERS (comma list), SCHEMA_REGISTRY_URL and REDIS_URL, when set,
 * wins for its own server; the rest come from the local stack's state file. `source` is 'env' only when all three
 * come from the environment, else 'local'. Throws StackNotRunningError when something is still missing, or
 * when the state file's processes needed for it are gone.
 */
export function resolveEndpoints(opts: ResolveEndpointsOptions = {}): StackEndpoints {
  const env = opts.env ?? process.env;
  const brokersEnv = envValue(env, ENDPOINT_ENV.brokers);
  const fromEnv = {
    brokers: brokersEnv ? parseBrokers(brokersEnv) : undefined,
    schemaRegistryUrl: envValue(env, ENDPOINT_ENV.schemaRegistryUrl),
    redisUrl: envValue(env, ENDPOINT_ENV.redisUrl),
  };
  if (fromEnv.brokers?.length && fromEnv.schemaRegistryUrl && fromEnv.redisUrl) {
    return { brokers: fromEnv.brokers, schemaRegistryUrl: fromEnv.schemaRegistryUrl, redisUrl: fromEnv.redisUrl, source: 'env' };
  }

  const file = opts.stateFile ?? stateFilePath();
  const missing = (Object.keys(ENDPOINT_ENV) as Array<keyof typeof ENDPOINT_ENV>)
    .filter((k) => (k === 'brokers' ? !fromEnv.brokers?.length : !fromEnv[k]))
    .map((k) => ENDPOINT_ENV[k]);
  let state: StackState | undefined;
  try {
    state = readState(file);
  } catch (err) {
    throw new StackNotRunningError(`${(err as Error).message}; run \`tributary stack up\``);
  }
  if (!state) {
    throw new StackNotRunningError(
      `The local stack is not running (no ${file}) and ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set; run \`tributary stack up\``,
    );
  }
  const needed: Array<[string, number]> = [];
  if (!fromEnv.brokers?.length) needed.push(['kafka', state.kafka.pid]);
  if (!fromEnv.schemaRegistryUrl) needed.push(['registry', state.registry.pid]);
  if (!fromEnv.redisUrl) needed.push(['redis', state.redis.pid]);
  const dead = needed.filter(([, pid]) => !isPidAlive(pid)).map(([name, pid]) => `${name} (pid ${pid})`);
  if (dead.length > 0) {
    throw new StackNotRunningError(`The local stack in ${file} is not running: ${dead.join(', ')} gone; run \`tributary stack up\``);
  }
  const local = endpointsFromState(state);
  return {
    brokers: fromEnv.brokers?.length ? fromEnv.brokers : local.brokers,
    schemaRegistryUrl: fromEnv.schemaRegistryUrl ?? local.schemaRegistryUrl,
    redisUrl: fromEnv.redisUrl ?? local.redisUrl,
    source: 'local',
  };
}
