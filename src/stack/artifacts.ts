import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { createLogger, type Logger } from '../util/logger';
import { cacheDir as defaultCacheDir, repoRoot } from '../util/paths';
import { checkPrerequisites } from './prerequisites';
import { runCommand } from './process';

export const KAFKA_VERSION = '3.9.1';
export const REGISTRY_VERSION = '3.0.9';
const REGISTRY_ARTIFACT = `io.apicurio:apicurio-registry-app:${REGISTRY_VERSION}:tar.gz:all`;
const REGISTRY_JAR = `apicurio-registry-app-${REGISTRY_VERSION}-runner.jar`;
const MARKER = '.installed.json';
const MAVEN_TIMEOUT_MS = 30 * 60_000;

export interface ArtifactOptions {
  /** Default `$TRIBUTARY_HOME/cache`. */
  cacheDir?: string;
  /** Where scripts/kafka/pom.xml lives; default the repo root. */
  repoRoot?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface ArtifactPaths {
  kafkaVersion: string;
  /** `<cache>/kafka-3.9.1`. */
  kafkaHome: string;
  /** `<cache>/kafka-3.9.1/libs`: every jar the broker and the tools need. */
  kafkaLibsDir: string;
  /** Java classpath for the broker and tools: `<libs>/*`. */
  kafkaClasspath: string;
  registryVersion: string;
  /** `<cache>/apicurio-registry-3.0.9`: the extracted distribution. */
  registryHome: string;
  /** The Quarkus runner jar inside registryHome. */
  registryJar: string;
}

export class ArtifactInstallError extends Error {
  override readonly name = 'ArtifactInstallError';
}

interface Marker {
  version: string;
  fingerprint: string;
  installedAt: string;
}

export function kafkaPomPath(root: string = repoRoot()): string {
  return path.join(root, 'scripts', 'kafka', 'pom.xml');
}

/** Where the artifacts live (whether or not they are installed yet). */
export function artifactPaths(cache: string = defaultCacheDir()): ArtifactPaths {
  const kafkaHome = path.join(cache, `kafka-${KAFKA_VERSION}`);
  const kafkaLibsDir = path.join(kafkaHome, 'libs');
  const registryHome = path.join(cache, `apicurio-registry-${REGISTRY_VERSION}`);
  return {
    kafkaVersion: KAFKA_VERSION,
    kafkaHome,
    kafkaLibsDir,
    kafkaClasspath: path.join(kafkaLibsDir, '*'),
    registryVersion: REGISTRY_VERSION,
    registryHome,
    registryJar: path.join(registryHome, REGISTRY_JAR),
  };
}

/** sha256 of the pom, so editing its dependencies triggers a re-install; undefined when the pom is absent. */
function kafkaFingerprint(pom: string): string | undefined {
  try {
    return createHash('sha256').update(fs.readFileSync(pom)).digest('hex');
  } catch {
    return undefined;
  }
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/** Marker present and matching; with no fingerprint to compare (pom absent), any marker will do. */
function isInstalled(dir: string, fingerprint: string | undefined): boolean {
  const m = readMarker(dir);
  return m !== undefined && (fingerprint === undefined || m.fingerprint === fingerprint);
}

/** True when both artifacts are present and match the current pom (no Maven needed). */
export function artifactsInstalled(opts: ArtifactOptions = {}): boolean {
  const paths = artifactPaths(opts.cacheDir ?? defaultCacheDir());
  return isInstalled(paths.kafkaHome, kafkaFingerprint(kafkaPomPath(opts.repoRoot))) && isInstalled(paths.registryHome, REGISTRY_ARTIFACT);
}

function tail(output: string, lines = 15): string {
  return output.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Fills `finalDir` by running `fill(tmpDir)` in a private temp dir, then renaming it into place, so a crash or a
 * concurrent installer never leaves a half-filled directory behind a marker.
 */
async function installInto(finalDir: string, fingerprint: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const tmpDir = `${finalDir}.tmp-${process.pid}-${Date.now()}`;
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
  try {
    await fill(tmpDir);
    const marker: Marker = { version: path.basename(finalDir), fingerprint, installedAt: new Date().toISOString() };
    fs.writeFileSync(path.join(tmpDir, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
    if (isInstalled(finalDir, fingerprint)) return; // someone else finished first
    fs.rmSync(finalDir, { recursive: true, force: true });
    fs.renameSync(tmpDir, finalDir);
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

async function mvn(mvnPath: string, args: string[], cwd: string, what: string, log: Logger): Promise<void> {
  const started = Date.now();
  // Maven runs quietly; say something now and then so a first run on a slow network doesn't look stuck.
  const heartbeat = setInterval(() => log.info({ seconds: Math.round((Date.now() - started) / 1000) }, `still waiting for Maven to ${what}`), 15_000);
  heartbeat.unref();
  const result = await runCommand(mvnPath, ['-q', '-B', ...args], { cwd, timeoutMs: MAVEN_TIMEOUT_MS }).finally(() => clearInterval(heartbeat));
  if (result.code !== 0) {
    throw new ArtifactInstallError(`Maven failed to ${what} (exit ${result.code}):\n${tail(result.output)}`);
  }
}

/**
 * Makes sure the Kafka jars and the Apicurio registry distribution are in the cache, fetching them with Maven
 * on first use. A marker file in each directory makes later calls free.
 */
export async function ensureArtifacts(opts: ArtifactOptions = {}): Promise<ArtifactPaths> {
  const log = opts.logger ?? createLogger('stack.artifacts');
  const cache = opts.cacheDir ?? defaultCacheDir();
  const paths = artifactPaths(cache);
  const pom = kafkaPomPath(opts.repoRoot);
  const kafkaPrint = kafkaFingerprint(pom);
  const kafkaReady = isInstalled(paths.kafkaHome, kafkaPrint);
  const registryReady = isInstalled(paths.registryHome, REGISTRY_ARTIFACT);
  if (kafkaReady && registryReady) {
    log.debug({ cache }, 'artifacts already installed');
    return paths;
  }
  const mvnPath = checkPrerequisites({ need: ['mvn'], env: opts.env }).mvn!;
  fs.mkdirSync(cache, { recursive: true });

  if (!kafkaReady) {
    if (kafkaPrint === undefined) throw new ArtifactInstallError(`Cannot install Kafka: ${pom} is missing`);
    const started = Date.now();
    log.info({ version: KAFKA_VERSION, dir: paths.kafkaHome }, 'fetching Kafka jars with Maven (first run only)');
    await installInto(paths.kafkaHome, kafkaPrint, async (tmp) => {
      const libs = path.join(tmp, 'libs');
      await mvn(mvnPath, ['-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`], tmp, `fetch Kafka ${KAFKA_VERSION}`, log);
      const jars = fs.readdirSync(libs).filter((f) => f.endsWith('.jar'));
      if (!jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
        throw new ArtifactInstallError(`Maven finished but kafka_2.13-${KAFKA_VERSION}.jar is missing from ${libs}`);
      }
    });
    log.info({ version: KAFKA_VERSION, ms: Date.now() - started }, 'Kafka jars installed');
  }

  if (!registryReady) {
    const started = Date.now();
    log.info({ version: REGISTRY_VERSION, dir: paths.registryHome }, 'fetching Apicurio Registry with Maven (first run only, ~110 MB)');
    await installInto(paths.registryHome, REGISTRY_ARTIFACT, async (tmp) => {
      const download = path.join(tmp, '.download');
      fs.mkdirSync(download);
      // Run outside the repo so Maven does not pick up a project pom.
      await mvn(mvnPath, ['dependency:copy', `-Dartifact=${REGISTRY_ARTIFACT}`, `-DoutputDirectory=${download}`], download, `fetch Apicurio Registry ${REGISTRY_VERSION}`, log);
      const archive = fs.readdirSync(download).find((f) => f.endsWith('.tar.gz'));
      if (!archive) throw new ArtifactInstallError(`Maven finished but no .tar.gz was written to ${download}`);
      log.info({ archive }, 'extracting Apicurio Registry');
      const untar = await runCommand('tar', ['-xzf', path.join(download, archive), '-C', tmp], { timeoutMs: 10 * 60_000 });
      if (untar.code !== 0) throw new ArtifactInstallError(`tar failed to extract ${archive}:\n${tail(untar.output)}`);
      fs.rmSync(download, { recursive: true, force: true });
      if (!fs.existsSync(path.join(tmp, REGISTRY_JAR))) {
        throw new ArtifactInstallError(`${REGISTRY_JAR} not found after extracting ${archive}`);
      }
    });
    log.info({ version: REGISTRY_VERSION, ms: Date.now() - started }, 'Apicurio Registry installed');
  }
  return paths;
}
