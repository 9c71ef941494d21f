import { startTestStack, type TestStack } from '../../src/stack/test-harness';

/** Key on globalThis where the teardown finds the stop handle (setup and teardown share the jest parent process). */
export const TEST_STACK_KEY = '__tributaryTestStack__';

/**
 * Jest globalSetup for the integration project: resolves (or starts) the stack and publishes its endpoints through
 * process.env, which the test environments (other module registries / workers) inherit.
 */
export default async function globalSetup(): Promise<void> {
  const stack = await startTestStack();
  process.env.KAFKA_BROKERS = stack.endpoints.brokers.join(',');
  process.env.SCHEMA_REGISTRY_URL = stack.endpoints.schemaRegistryUrl;
  process.env.REDIS_URL = stack.endpoints.redisUrl;
  process.env.TRIBUTARY_STACK_SOURCE = stack.endpoints.source;
  (globalThis as Record<string, unknown>)[TEST_STACK_KEY] = stack satisfies TestStack;
}
