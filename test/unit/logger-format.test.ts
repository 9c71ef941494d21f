import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatHumanLine } from '../../src/util/log-format';
import { redactSecrets, redactUrlCredentials, secretForms } from '../../src/util/redact';
import { Progress, progressText } from '../../src/util/progress';
import { repoRoot } from '../../src/stack/paths';

const LOGGER = path.join(repoRoot(), 'dist/util/logger.js');

/** Runs `code` in a child with the built logger, so it writes to a real stderr. */
function child(code: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['-e', `const L = require(${JSON.stringify(LOGGER)}); ${code}`], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
}

describe('log output', () => {
  it('human lines: time, level, name, message, fields; no pid or JSON braces', () => {
    const line = formatHumanLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 3, 4), pid: 1, name: 'stack', msg: 'port taken', port: 9092, dir: '/a b' }), { colour: false });
    expect(line).toBe('12:03:04 WARN  stack port taken port=9092 dir="/a b"\n');
    expect(formatHumanLine('not json', { colour: false })).toBe('not json\n');
    expect(formatHumanLine(JSON.stringify({ level: 50, msg: 'x', err: { message: 'boom', stack: 'Error: boom\n at y' } }), { colour: true })).toContain('\u001b[');
  });

  it('TRIBUTARY_LOG_FORMAT=human and json choose the format; configureLogging changes the level of loggers made earlier', () => {
    const human = child(`L.createLogger('t').info({ n: 1 }, 'hello')`, { TRIBUTARY_LOG_FORMAT: 'human' });
    expect(human.stderr).toMatch(/^\d\d:\d\d:\d\d INFO  t hello n=1\n$/);
    const json = child(`L.createLogger('t').info('hello')`, { TRIBUTARY_LOG_FORMAT: 'json' });
    expect(JSON.parse(json.stderr).msg).toBe('hello');
    const quiet = child(`const l = L.createLogger('t'); L.configureLogging({ level: 'warn' }); l.info('hidden'); l.warn('shown')`, { TRIBUTARY_LOG_FORMAT: 'json' });
    expect(quiet.stderr).not.toContain('hidden');
    expect(quiet.stderr).toContain('shown');
  });
});

describe('secret redaction', () => {
  it('removes the password of any scheme://user:pass@ URL and keeps the rest', () => {
    expect(redactUrlCredentials('connecting to redis://alice:s3cr%40t@127.0.0.1:6379/0 now')).toBe('connecting to redis://alice:[redacted]@127.0.0.1:6379/0 now');
    expect(redactUrlCredentials('{"url":"http://u:p@registry:8080/apis"}')).toBe('{"url":"http://u:[redacted]@registry:8080/apis"}');
    expect(redactUrlCredentials('rediss://:onlypass@h:1')).toBe('rediss://:[redacted]@h:1');
    expect(redactUrlCredentials('redis://127.0.0.1:6379 and user@example.org')).toBe('redis://127.0.0.1:6379 and user@example.org');
  });

  it('removes secrets from the environment in plain, URL-encoded and base64 user:pass forms', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-redact-'));
    const file = path.join(dir, 'pw');
    fs.writeFileSync(file, 'file-secret-123\n');
    const env = { REDIS_URL: 'redis://bob:p%2Fw0rd!@h:1', SCHEMA_REGISTRY_USERNAME: 'reg', SCHEMA_REGISTRY_PASSWORD: 'reg-pass-9', KAFKA_SASL_PASSWORD_FILE: file };
    const forms = secretForms(env);
    const basic = Buffer.from('reg:reg-pass-9').toString('base64');
    const text = `a reg-pass-9 b ${basic} c p/w0rd! d ${encodeURIComponent('p/w0rd!')} e file-secret-123`;
    const out = redactSecrets(text, forms);
    for (const secret of ['reg-pass-9', basic, 'p/w0rd!', 'p%2Fw0rd!', 'file-secret-123']) expect(out).not.toContain(secret);
    expect(out.match(/\[redacted\]/g)).toHaveLength(5);
    // A cluster URL (not parseable as a WHATWG URL) still gives its password.
    expect(redactSecrets('pw c1u5ter-pw!', secretForms({ REDIS_URL: 'redis+cluster://u:c1u5ter-pw!@h:1,h:2' }))).toBe('pw [redacted]');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the built logger redacts a URL with credentials given as a field, in the message and in an error', () => {
    const res = child(`const l = L.createLogger('t'); l.info({ endpoints: { redisUrl: 'redis://u:hunter22@h:1' } }, 'using redis://u:hunter22@h:1'); l.error({ err: new Error('cannot reach http://x:hunter22@r/') }, 'failed')`, { TRIBUTARY_LOG_FORMAT: 'json' });
    expect(res.stderr.split('\n').filter(Boolean)).toHaveLength(2);
    expect(res.stderr).not.toContain('hunter22');
    expect(res.stderr).toContain('redis://u:[redacted]@h:1');
  });
});

describe('progress', () => {
  it('one text format: bar, percent, done/total, rate, ETA, extra', () => {
    expect(progressText({ done: 250, total: 1000, rate: 50, etaMs: 15000, extra: 'x 1' }, 'rows', 8)).toBe('[##......] 25.0% 250/1000 rows  50 rows/s  ETA 0:15  x 1');
    expect(progressText({ done: 0, total: 10, rate: 0, etaMs: null }, 'runs', 4)).toContain('ETA --:--');
  });

  it('computes rate and ETA from elapsed time; draws in place on a terminal and ends the line', () => {
    let now = 0;
    const written: string[] = [];
    const stream = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const bar = new Progress({ unit: 'rows', stream, terminal: true, now: () => now });
    now = 2000;
    bar.update({ done: 100, total: 300 });
    expect(written[0]).toBe(`\r${progressText({ done: 100, total: 300, rate: 50, etaMs: 4000 }, 'rows')}\u001b[K`);
    now = 2050;
    bar.update({ done: 110, total: 300 }); // throttled
    expect(written).toHaveLength(1);
    now = 6000;
    bar.update({ done: 300, total: 300 });
    bar.end();
    expect(written.slice(-1)).toEqual(['\n']);
    expect(written[1]).toContain('100.0% 300/300 rows');
  });
});

describe('log lines and a progress bar on one terminal', () => {
  it('a log line written while a bar is drawn goes above it and the bar is drawn again', () => {
    const { aroundBar, setBarLine } = jest.requireActual('../../src/util/terminal-line') as typeof import('../../src/util/terminal-line');
    expect(aroundBar('line\n')).toBe('line\n');
    setBarLine('[##..] 50%');
    expect(aroundBar('line\n')).toBe('\r\u001b[Kline\n\r[##..] 50%\u001b[K');
    setBarLine(undefined);
    expect(aroundBar('line\n')).toBe('line\n');
  });
});
