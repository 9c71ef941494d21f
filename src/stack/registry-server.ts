import * as fs from 'fs';
import * as path from 'path';
import { REGISTRY_VERSION } from './artifacts';
import { pollUntilAnswering, type LaunchedServer } from './launched';
import { LOCALHOST } from './ports';
import { spawnDetached, wholeArg } from './process';
import type { RegistryState } from '../util/stack-state';

export interface RegistryServerOptions {
  /** The Apicurio Quarkus runner jar (its lib/ dir must sit next to it). */
  runnerJar: string;
  /** Server dir (created if missing): log file and temp files go here. */
  dataDir: string;
  port: number;
  javaPath?: string;
  /** Max heap, default `384m`. */
  heap?: string;
}

export type RegistryServerInfo = RegistryState;

/** Path of Apicurio's Confluent-compatible API. */
export const CCOMPAT_PATH = '/apis/ccompat/v7';

export function registryUrl(port: number): string {
  return `http://${LOCALHOST}:${port}${CCOMPAT_PATH}`;
}

/** Command-line fragments that identify this registry's process. */
export function registryProcessMarkers(port: number): string[] {
  return [wholeArg(`-Dquarkus.http.port=${port}`), 'apicurio-registry-app'];
}

export function registryLogFile(dataDir: string): string {
  return path.join(dataDir, 'registry.log');
}

/** True when GET <url>/subjects answers 200. */
export async function registryAnswers(url: string, timeoutMs = 3_000): Promise<boolean> {
  try {
    const res = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => undefined);
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Spawns Apicurio Registry (in-memory storage) detached. Does not wait for it to answer. */
export async function launchRegistryServer(opts: RegistryServerOptions): Promise<LaunchedServer<RegistryServerInfo>> {
  const tmp = path.join(opts.dataDir, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const logFile = registryLogFile(opts.dataDir);
  const proc = await spawnDetached(
    opts.javaPath ?? 'java',
    [
      `-Xmx${opts.heap ?? '384m'}`,
      '-XX:+ExitOnOutOfMemoryError',
      `-Djava.io.tmpdir=${tmp}`,
      `-Dquarkus.http.port=${opts.port}`,
      `-Dquarkus.http.host=${LOCALHOST}`,
      `-Dapicurio.import.work-dir=${tmp}`,
      `-Dapicurio.storage.snapshot.location=${tmp}`,
      '-jar',
      opts.runnerJar,
    ],
    { cwd: opts.dataDir, logFile },
  );
  const url = registryUrl(opts.port);
  const info: RegistryServerInfo = { url, pid: proc.pid, port: opts.port, dataDir: opts.dataDir, logFile, version: REGISTRY_VERSION };
  return {
    info,
    waitUntilReady: (timeoutMs) =>
      pollUntilAnswering({
        server: 'registry',
        what: `GET ${url}/subjects`,
        proc,
        logFile,
        timeoutMs,
        intervalMs: 500,
        answers: () => registryAnswers(url, 2_000),
      }),
  };
}

export async function startRegistryServer(opts: RegistryServerOptions, timeoutMs = 120_000): Promise<RegistryServerInfo> {
  const launched = await launchRegistryServer(opts);
  await launched.waitUntilReady(timeoutMs);
  return launched.info;
}
