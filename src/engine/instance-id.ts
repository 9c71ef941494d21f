import { randomBytes } from 'node:crypto';
import { TributaryError } from '../util/errors';

/**
 * A process's instance id: its part of the shared transactions' transactional ids
 * (`<group>.<instance>.<k>`). Kafka accepts almost any transactional id, but this one also shows up
 * in logs, metrics and broker tooling, so it is kept to a plain, bounded charset.
 */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Why `id` is not a usable instance id, or undefined when it is. */
export function instanceIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'it is empty';
  if (id.length > 64) return `it has ${id.length} characters (at most 64)`;
  if (!INSTANCE_ID_PATTERN.test(id)) return 'only letters, digits, \'.\', \'_\' and \'-\' are allowed';
  return undefined;
}

/** The id, checked; `where` names its source in the error (an option, an env variable, a field). */
export function checkInstanceId(id: string, where: string): string {
  const problem = instanceIdProblem(id);
  if (problem) throw new TributaryError(`${where}: '${id}' is not a valid instance id: ${problem}`);
  return id;
}

/** A fresh random instance id (the default: one per process start). */
export function randomInstanceId(): string {
  return randomBytes(6).toString('hex');
}
