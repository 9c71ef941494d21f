import { ensurePrerequisites } from '../../src/stack/ensure-prerequisites';

/**
 * Jest globalSetup of every project: installs the system packages the tests run (chromium, prometheus,
 * redis-server, ...) when missing, the same code path as the demo and `tributary setup` (TRIBUTARY_NO_INSTALL=1 to skip).
 */
export default async function prerequisitesSetup(): Promise<void> {
  await ensurePrerequisites({ set: 'tests' });
}
