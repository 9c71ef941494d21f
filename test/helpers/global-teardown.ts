import { TEST_STACK_KEY, type GlobalTestStack } from './global-setup';

/**
 * Jest globalTeardown: stops what global setup started (a no-op when it reused a running stack or env endpoints)
 * and puts the endpoint env variables back as they were.
 */
export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as Record<string, unknown>;
  const handle = holder[TEST_STACK_KEY] as GlobalTestStack | undefined;
  delete holder[TEST_STACK_KEY];
  if (!handle) return;
  try {
    await handle.stack.stop();
  } finally {
    for (const [key, value] of Object.entries(handle.previousEnv)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}
