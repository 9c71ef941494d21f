import * as fs from 'fs';
import * as path from 'path';

export type ServerName = 'kafka' | 'registry' | 'redis';

export interface KafkaState {
  brokers: string[];
  pid: number;
  port: number;
  controllerPort: number;
  /** Server dir: server.properties, log4j.properties, the log file and the KRaft log dirs. */
  dataDir: string;
  logFile: string;
  version: string;
}

export interface RegistryState {
  /** Confluent-compatible base URL (Apicurio's ccompat API). */
  url: string;
  pid: number;
  port: number;
  dataDir: string;
  logFile: string;
  version: string;
}

export interface RedisState {
  url: string;
  pid: number;
  port: number;
  dataDir: string;
  logFile: string;
}

/** Contents of `$TRIBUTARY_HOME/stack/state.json`. */
export interface StackState {
  version: 1;
  startedAt: string;
  kafka: KafkaState;
  registry: RegistryState;
  redis: RedisState;
}

export class StateFileError extends Error {
  override readonly name = 'StateFileError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function hasPid(v: unknown): boolean {
  return isRecord(v) && Number.isInteger(v.pid) && Number.isInteger(v.port);
}

/** Parses and shape-checks a state file's text. */
export function parseState(text: string, file = 'state file'): StackState {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (
    !isRecord(data) ||
    data.version !== 1 ||
    !hasPid(data.kafka) ||
    !hasPid(data.registry) ||
    !hasPid(data.redis) ||
    !Array.isArray((data.kafka as Record<string, unknown>).brokers) ||
    typeof (data.registry as Record<string, unknown>).url !== 'string' ||
    typeof (data.redis as Record<string, unknown>).url !== 'string'
  ) {
    throw new StateFileError(`${file} does not look like a version 1 tributary stack state`);
  }
  return data as unknown as StackState;
}

/** The state in `file`, or undefined when there is none. */
export function readState(file: string): StackState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseState(text, file);
}

/** Writes atomically (temp file + rename) so readers never see half a file. */
export function writeState(file: string, state: StackState): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export function removeState(file: string): void {
  fs.rmSync(file, { force: true });
}
