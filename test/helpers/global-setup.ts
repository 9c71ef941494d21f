import { startTestStack, type TestStack } from '../../src/stack/test-harness';
import prerequisitesSetup from './prerequisites-setup';

/** Key on globalThis where the teardown finds what setup did (setup and teardown share the jest parent process). */
export const TEST_STACK_KEY = '__tributaryTestStack__';

/** Env variables this setup publishes; their previous values are restored by the teardown (matters in watch mode). */
const PUBLISHED = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL', 'TRIBUTARY_STACK_SOURCE'] as const;

export interface GlobalTestStack {
  stack: TestStack;
  previousEnv: Record<string, string | undefined>;
}

/**
 * Jest globalSetup for the integration and fault projects: installs missing system packages, then resolves (or starts) the stack and publishes its endpoints through
 * process.env, which the test environments (other module registries / workers) inherit.
 */
export default async function globalSetup(): Promise<void> {
  await prerequisitesSetup();
  const stack = await startTestStack();
  const previousEnv = Object.fromEntries(PUBLISHED.map((k) => [k, process.env[k]]));
  process.env.KAFKA_BROKERS = stack.endpoints.brokers.join(',');
  process.env.SCHEMA_REGISTRY_URL = stack.endpoints.schemaRegistryUrl;
  process.env.REDIS_URL = stack.endpoints.redisUrl;
  process.env.TRIBUTARY_STACK_SOURCE = stack.endpoints.source;
  const handle: GlobalTestStack = { stack, previousEnv };
  (globalThis as Record<string, unknown>)[TEST_STACK_KEY] = handle;
}
