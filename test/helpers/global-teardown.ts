import type { TestStack } from '../../src/stack/test-harness';
import { TEST_STACK_KEY } from './global-setup';

/** Jest globalTeardown: stops what global setup started (a no-op when it reused a running stack or env endpoints). */
export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as Record<string, unknown>;
  const stack = holder[TEST_STACK_KEY] as TestStack | undefined;
  delete holder[TEST_STACK_KEY];
  if (stack) await stack.stop();
}
