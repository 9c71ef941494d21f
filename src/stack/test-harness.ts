import { createLogger } from '../util/logger';
import { ENDPOINT_ENV, resolveEndpoints, type StackEndpoints } from '../util/endpoints';
import { LocalStack, type LocalStackOptions } from './local-stack';
import { startContainerStack } from './testcontainers-stack';

export interface TestStack {
  endpoints: StackEndpoints;
  /** Stops what this call started; a no-op for env endpoints and for a local stack that was already up. */
  stop(): Promise<void>;
}

export interface TestStackOptions {
  env?: NodeJS.ProcessEnv;
  local?: LocalStackOptions;
}

/**
 * Servers for integration tests, in order of preference:
 *  1. KAFKA_BROKERS + SCHEMA_REGISTRY_URL + REDIS_URL all set: use them as-is;
 *  2. TRIBUTARY_TESTCONTAINERS=1: containers (needs a container engine);
 *  3. the local stack: reused (and left running) when already up, else started here and stopped by `stop()`.
 *     Any of the three env variables that is set still overrides its own endpoint.
 */
export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  const env = opts.env ?? process.env;
  const log = createLogger('stack.test-harness');
  const noop = async (): Promise<void> => undefined;

  const allFromEnv = Object.values(ENDPOINT_ENV).every((name) => Boolean(env[name]?.trim()));
  if (allFromEnv) {
    const endpoints = resolveEndpoints({ env });
    log.info({ endpoints }, 'using endpoints from the environment');
    return { endpoints, stop: noop };
  }

  if (env.TRIBUTARY_TESTCONTAINERS === '1') {
    const containers = await startContainerStack();
    log.info({ endpoints: containers.endpoints }, 'started container stack');
    return containers;
  }

  const stack = new LocalStack({ env, ...opts.local });
  const status = await stack.status();
  if (status.state === 'running') {
    log.info({ stateFile: stack.stateFile }, 'reusing the running local stack (it will be left running)');
    return { endpoints: resolveEndpoints({ env, stateFile: stack.stateFile }), stop: noop };
  }
  await stack.up();
  return {
    endpoints: resolveEndpoints({ env, stateFile: stack.stateFile }),
    stop: async () => {
      await stack.down();
    },
  };
}
