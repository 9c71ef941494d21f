import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseBrokers, resolveEndpoints, StackNotRunningError } from '../../src/stack/endpoints';
import { checkPrerequisites, MissingPrerequisiteError, parseJavaMajor } from '../../src/stack/prerequisites';
import { writeState, type StackState } from '../../src/stack/state';

/** Larger than any Linux pid_max (2^22), so never a live process. */
const DEAD_PID = 4_194_304 + 17;

function state(pid: number): StackState {
  return {
    version: 1,
    startedAt: '2025-01-01T00:00:00.000Z',
    kafka: { brokers: ['127.0.0.1:40001'], pid, port: 40001, controllerPort: 40002, dataDir: '/x/kafka', logFile: '/x/kafka/kafka.log', version: '3.9.1' },
    registry: { url: 'http://127.0.0.1:40003/apis/ccompat/v7', pid, port: 40003, dataDir: '/x/registry', logFile: '/x/registry/registry.log', version: '3.0.9' },
    redis: { url: 'redis://127.0.0.1:40004', pid, port: 40004, dataDir: '/x/redis', logFile: '/x/redis/redis.log' },
  };
}

describe('resolveEndpoints', () => {
  let dir: string;
  let stateFile: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-endpoints-'));
    stateFile = path.join(dir, 'state.json');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const allEnv = { KAFKA_BROKERS: 'k1:9, k2:9,', SCHEMA_REGISTRY_URL: 'http://sr:1', REDIS_URL: 'redis://r:2' };

  test('all three env variables win, without reading any state file', () => {
    writeState(stateFile, state(process.pid));
    expect(resolveEndpoints({ env: allEnv, stateFile })).toEqual({
      brokers: ['k1:9', 'k2:9'],
      schemaRegistryUrl: 'http://sr:1',
      redisUrl: 'redis://r:2',
      source: 'env',
    });
    expect(resolveEndpoints({ env: allEnv, stateFile: path.join(dir, 'missing.json') }).source).toBe('env');
  });

  test('without env, the state file of a running stack is used', () => {
    writeState(stateFile, state(process.pid));
    expect(resolveEndpoints({ env: {}, stateFile })).toEqual({
      brokers: ['127.0.0.1:40001'],
      schemaRegistryUrl: 'http://127.0.0.1:40003/apis/ccompat/v7',
      redisUrl: 'redis://127.0.0.1:40004',
      source: 'local',
    });
  });

  test('env overrides per variable; the rest comes from the state file', () => {
    writeState(stateFile, state(process.pid));
    const e = resolveEndpoints({ env: { REDIS_URL: 'redis://elsewhere:7', KAFKA_BROKERS: '' }, stateFile });
    expect(e).toEqual({ brokers: ['127.0.0.1:40001'], schemaRegistryUrl: 'http://127.0.0.1:40003/apis/ccompat/v7', redisUrl: 'redis://elsewhere:7', source: 'local' });
  });

  test('no env and no state file: StackNotRunningError telling what to run', () => {
    let caught: unknown;
    try {
      resolveEndpoints({ env: { REDIS_URL: 'redis://r:2' }, stateFile });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StackNotRunningError);
    expect((caught as Error).message).toContain('tributary stack up');
    expect((caught as Error).message).toContain('KAFKA_BROKERS, SCHEMA_REGISTRY_URL');
    expect((caught as Error).message).not.toContain('REDIS_URL');
  });

  test('a state file whose processes are gone is reported as not running', () => {
    writeState(stateFile, state(DEAD_PID));
    expect(() => resolveEndpoints({ env: {}, stateFile })).toThrow(StackNotRunningError);
    expect(() => resolveEndpoints({ env: {}, stateFile })).toThrow(/not running: kafka \(pid \d+\), registry .* gone; run `tributary stack up`/);
    // ...unless env covers every server it would have needed.
    expect(resolveEndpoints({ env: allEnv, stateFile }).source).toBe('env');
  });

  test('a corrupt state file is reported as not running', () => {
    fs.writeFileSync(stateFile, '{ nope');
    expect(() => resolveEndpoints({ env: {}, stateFile })).toThrow(StackNotRunningError);
  });

  test('parseBrokers trims and drops empties', () => {
    expect(parseBrokers(' a:1 ,b:2,, ')).toEqual(['a:1', 'b:2']);
  });
});

describe('prerequisites', () => {
  test('a missing tool gives a one-line message with the install command', () => {
    const emptyPath = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-empty-path-'));
    try {
      let caught: unknown;
      try {
        checkPrerequisites({ need: ['redis-server'], env: { PATH: emptyPath } });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(MissingPrerequisiteError);
      const err = caught as MissingPrerequisiteError;
      expect(err.name).toBe('MissingPrerequisiteError');
      expect(err.prerequisite).toBe('redis-server');
      expect(err.installCommand).toBe('apt-get update && apt-get install -y redis-server');
      expect(err.message).not.toContain('\n');
      expect(err.message).toContain('redis-server');
      expect(err.message).toContain('apt-get update && apt-get install -y redis-server');

      expect(() => checkPrerequisites({ need: ['java'], env: { PATH: emptyPath } })).toThrow(/install it with: apt-get update && apt-get install -y openjdk-17/);
      expect(() => checkPrerequisites({ need: ['mvn'], env: { PATH: emptyPath } })).toThrow(/apt-get install -y maven/);
    } finally {
      fs.rmSync(emptyPath, { recursive: true, force: true });
    }
  });

  test('tools found on PATH are returned with their paths', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fake-path-'));
    try {
      const fake = path.join(dir, 'redis-server');
      fs.writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 });
      expect(checkPrerequisites({ need: ['redis-server'], env: { PATH: dir } })).toEqual({ 'redis-server': fake });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('java version parsing', () => {
    expect(parseJavaMajor('openjdk version "17.0.15" 2025-04-15')).toBe(17);
    expect(parseJavaMajor('java version "1.8.0_392"')).toBe(8);
    expect(parseJavaMajor('openjdk version "21" 2023-09-19')).toBe(21);
    expect(parseJavaMajor('garbage')).toBeUndefined();
  });
});
