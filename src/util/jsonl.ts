import * as fs from 'node:fs';

/** The records of a JSON-lines file, blank lines skipped (a trailing newline is not a record). */
export function readJsonl<T>(file: string): T[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}
