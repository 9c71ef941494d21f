import * as fs from 'fs';
import * as path from 'path';

const PACKAGE_NAME = 'tributary';

export class RepoRootNotFoundError extends Error {
  override readonly name = 'RepoRootNotFoundError';
  constructor(start: string) {
    super(`Could not find the tributary package root (a package.json named "${PACKAGE_NAME}") above ${start}`);
  }
}

function isTributaryRoot(dir: string): boolean {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
    return pkg.name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

function walkUp(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (isTributaryRoot(dir)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

let cachedRoot: string | undefined;

/**
 * The repository (package) root: the nearest directory above this module with a package.json named
 * "tributary". Works from src/ (ts-jest) and from dist/ (after tsc); falls back to the working directory.
 */
export function repoRoot(): string {
  if (cachedRoot) return cachedRoot;
  const found = walkUp(__dirname) ?? walkUp(process.cwd());
  if (!found) throw new RepoRootNotFoundError(__dirname);
  cachedRoot = found;
  return found;
}

/** $TRIBUTARY_HOME, default `<repo root>/.tributary`. */
export function tributaryHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.TRIBUTARY_HOME?.trim();
  return fromEnv ? path.resolve(fromEnv) : path.join(repoRoot(), '.tributary');
}

/** Downloaded server artifacts (Kafka jars, Apicurio registry). */
export function cacheDir(home: string = tributaryHome()): string {
  return path.join(home, 'cache');
}

/** Directory holding the local stack's state file and per-server data dirs. */
export function stackDir(home: string = tributaryHome()): string {
  return path.join(home, 'stack');
}

export const STATE_FILE_NAME = 'state.json';

/** `$TRIBUTARY_HOME/stack/state.json`, or `<stateDir>/state.json` for an explicit stack dir. */
export function stateFilePath(dir: string = stackDir()): string {
  return path.join(dir, STATE_FILE_NAME);
}
