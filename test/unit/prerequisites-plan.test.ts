import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensurePrerequisites, findMissing, instructionLine, packagesFor, planInstall, PrerequisitesError, type InstallPlan } from '../../src/stack/ensure-prerequisites';
import { PREREQUISITE_SETS } from '../../src/stack/prerequisites';

const ROOT_WITH_APT = { isRoot: true, hasApt: true, optedOut: false };

/** A PATH directory holding fake executables named `names`. */
function fakePath(names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-prereq-'));
  for (const n of names) fs.writeFileSync(path.join(dir, n), n === 'java' ? '#!/bin/sh\necho \'openjdk version "17.0.9"\' >&2\n' : '#!/bin/sh\n', { mode: 0o755 });
  return dir;
}

describe('prerequisites: which packages, and whether to install', () => {
  it('maps missing tools to their Debian packages, each once', () => {
    const missing = findMissing(PREREQUISITE_SETS.tests, { PATH: fakePath(['java', 'mvn']) });
    expect(missing.map((m) => m.name)).toEqual(['redis-server', 'chromium', 'promtool', 'prometheus', 'openssl', 'python3']);
    expect(packagesFor(missing)).toEqual(['redis-server', 'chromium', 'prometheus', 'openssl', 'python3', 'python3-venv']);
    expect(findMissing(PREREQUISITE_SETS.stack, { PATH: fakePath(['java', 'mvn', 'redis-server']) })).toEqual([]);
    // chromium-browser (Ubuntu's name) satisfies chromium.
    expect(findMissing(['chromium'], { PATH: fakePath(['chromium-browser']) })).toEqual([]);
  });

  it('installs as root with apt; instructs when not root, without apt, or opted out', () => {
    const missing = [{ name: 'redis-server' as const, detail: '' }, { name: 'chromium' as const, detail: '' }];
    expect(planInstall([], ROOT_WITH_APT)).toEqual({ action: 'none' });
    expect(planInstall(missing, ROOT_WITH_APT)).toMatchObject({ action: 'install', packages: ['redis-server', 'chromium'] });
    const notRoot = planInstall(missing, { ...ROOT_WITH_APT, isRoot: false }) as Extract<InstallPlan, { action: 'instruct' }>;
    expect(notRoot).toMatchObject({ action: 'instruct', reason: 'not running as root' });
    expect(notRoot.command).toBe("sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends redis-server chromium'");
    const noApt = planInstall(missing, { ...ROOT_WITH_APT, hasApt: false }) as Extract<InstallPlan, { action: 'instruct' }>;
    expect(noApt.reason).toBe('apt-get is not available');
    expect(noApt.command).toContain('redis-server, chromium');
    const optedOut = planInstall(missing, { ...ROOT_WITH_APT, optedOut: true }) as Extract<InstallPlan, { action: 'instruct' }>;
    expect(optedOut.reason).toBe('TRIBUTARY_NO_INSTALL is set');
    const line = instructionLine(notRoot);
    expect(line).not.toContain('\n');
    expect(line).toMatch(/^Missing prerequisites: redis-server \(runs the local Redis\); chromium \(.*\)\. Not installed automatically \(not running as root\); run: sudo/);
  });

  it('runs apt-get update and install once with the packages, then re-checks (fake apt that "installs" into PATH)', async () => {
    const dir = fakePath(['java', 'mvn']);
    const calls: string[][] = [];
    const lines: string[] = [];
    const apt = async (args: readonly string[]) => {
      calls.push([...args]);
      if (args[0] === 'install') for (const n of ['redis-server']) fs.writeFileSync(path.join(dir, n), '#!/bin/sh\n', { mode: 0o755 });
      return { code: 0, output: '' };
    };
    const res = await ensurePrerequisites({ set: 'stack', env: { PATH: dir }, facts: ROOT_WITH_APT, apt, out: (l) => lines.push(l) });
    expect(res).toEqual({ installed: ['redis-server'], stillMissing: [] });
    expect(calls).toEqual([['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'redis-server']]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^installing system packages .*redis-server/);
  });

  it('fails with one line when not root; only reports when opted out; reports a package that did not provide the tool', async () => {
    const env = { PATH: fakePath(['java', 'mvn']) };
    const apt = jest.fn(async () => ({ code: 0, output: '' }));
    await expect(ensurePrerequisites({ set: 'stack', env, facts: { ...ROOT_WITH_APT, isRoot: false }, apt })).rejects.toThrow(PrerequisitesError);
    const lines: string[] = [];
    await expect(ensurePrerequisites({ set: 'stack', env, facts: { ...ROOT_WITH_APT, optedOut: true }, apt, out: (l) => lines.push(l) })).resolves.toEqual({ installed: [], stillMissing: ['redis-server'] });
    expect(lines[0]).toContain('TRIBUTARY_NO_INSTALL');
    expect(apt).not.toHaveBeenCalled();
    await expect(ensurePrerequisites({ set: 'stack', env, facts: ROOT_WITH_APT, apt, out: () => undefined })).rejects.toThrow(/still missing: .*redis-server/);
    const failing = async () => ({ code: 100, output: 'E: Unable to locate package redis-server' });
    await expect(ensurePrerequisites({ set: 'stack', env, facts: ROOT_WITH_APT, apt: failing, out: () => undefined })).rejects.toThrow(/apt-get update failed \(exit 100\):\nE: Unable to locate/);
  });
});
