import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export type PrerequisiteName = 'java' | 'mvn' | 'redis-server' | 'chromium' | 'promtool' | 'prometheus' | 'python3' | 'openssl';

interface PrerequisiteSpec {
  /** What it is needed for, shown in messages and the README. */
  purpose: string;
  /** Executables that satisfy it (any one). */
  binaries: readonly string[];
  /** Debian/Ubuntu packages that provide it. */
  packages: readonly string[];
  /** Debian/Ubuntu install command, shown in the error. */
  install: string;
}

export const MIN_JAVA_MAJOR = 17;

function spec(purpose: string, binaries: readonly string[], packages: readonly string[]): PrerequisiteSpec {
  return { purpose, binaries, packages, install: `apt-get update && apt-get install -y ${packages.join(' ')}` };
}

export const PREREQUISITES: Readonly<Record<PrerequisiteName, PrerequisiteSpec>> = {
  java: spec(`runs the Kafka broker and the schema registry (Java ${MIN_JAVA_MAJOR}+)`, ['java'], ['openjdk-17-jre-headless']),
  mvn: spec('downloads the Kafka and schema registry jars on first use', ['mvn'], ['maven']),
  'redis-server': spec('runs the local Redis', ['redis-server'], ['redis-server']),
  chromium: spec('renders the shadow report in a real headless browser in the tests', ['chromium', 'chromium-browser'], ['chromium']),
  promtool: spec('checks the /metrics exposition format in the tests', ['promtool'], ['prometheus']),
  prometheus: spec('scrapes the pipeline in the monitoring tests', ['prometheus'], ['prometheus']),
  openssl: spec('generates the CA and certificates for the TLS tests (keytool comes with Java)', ['openssl'], ['openssl']),
  python3: spec('runs the model training and parity tools (scripts/train-model.sh, with its venv)', ['python3'], ['python3', 'python3-venv']),
};

/** What each use needs: the demo and `stack up` need the servers; the test suite needs the tools its tests run too. */
export const PREREQUISITE_SETS = {
  stack: ['java', 'mvn', 'redis-server'],
  tests: ['java', 'mvn', 'redis-server', 'chromium', 'promtool', 'prometheus', 'openssl', 'python3'],
} as const satisfies Record<string, readonly PrerequisiteName[]>;
export type PrerequisiteSet = keyof typeof PREREQUISITE_SETS;

export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
  readonly installCommand: string;
  constructor(
    readonly prerequisite: PrerequisiteName,
    detail?: string,
  ) {
    const spec = PREREQUISITES[prerequisite];
    const what = detail ?? `\`${prerequisite}\` was not found on PATH`;
    super(`Missing prerequisite: ${what} (it ${spec.purpose}); install it with: ${spec.install}`);
    this.installCommand = spec.install;
  }
}

/** Absolute path of an executable found on PATH (or `name` itself if it already contains a slash), else undefined. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = name.includes(path.sep)
    ? [path.resolve(name)]
    : (env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      const st = fs.statSync(candidate);
      if (st.isFile()) {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
      }
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** `$JAVA_HOME/bin/java` when JAVA_HOME is set and valid, else `java` from PATH. */
export function findJava(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const javaHome = env.JAVA_HOME?.trim();
  if (javaHome) {
    const fromHome = findExecutable(path.join(javaHome, 'bin', 'java'), env);
    if (fromHome) return fromHome;
  }
  return findExecutable('java', env);
}

/** Parses the major version out of `java -version` output ("1.8.0_x" -> 8, "17.0.15" -> 17). */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return undefined;
  const first = Number(m[1]);
  return first === 1 && m[2] !== undefined ? Number(m[2]) : first;
}

function javaMajor(javaPath: string): number | undefined {
  try {
    // `java -version` writes to stderr; capture both streams.
    const out = execFileSync(javaPath, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    return parseJavaMajor(out);
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    return parseJavaMajor(`${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

export interface PrerequisiteOptions {
  /** Which tools to check (default: all three). */
  need?: readonly PrerequisiteName[];
  env?: NodeJS.ProcessEnv;
}

export type ResolvedPrerequisites = Partial<Record<PrerequisiteName, string>>;

/** Checks the named tools exist (and that java is recent enough); returns their paths or throws MissingPrerequisiteError. */
export function checkPrerequisites(opts: PrerequisiteOptions = {}): ResolvedPrerequisites {
  const env = opts.env ?? process.env;
  const need = opts.need ?? (['java', 'mvn', 'redis-server'] as const);
  const found: ResolvedPrerequisites = {};
  for (const name of need) {
    if (name === 'java') {
      const java = findJava(env);
      if (!java) throw new MissingPrerequisiteError('java');
      const major = javaMajor(java);
      if (major !== undefined && major < MIN_JAVA_MAJOR) {
        throw new MissingPrerequisiteError('java', `${java} is Java ${major}, Java ${MIN_JAVA_MAJOR}+ is required`);
      }
      found.java = java;
    } else {
      const exe = PREREQUISITES[name].binaries.map((b) => findExecutable(b, env)).find(Boolean);
      if (!exe) throw new MissingPrerequisiteError(name);
      found[name] = exe;
    }
  }
  return found;
}
