import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { claimHostInstance, hostPart, NoFreeInstanceSlotError } from '../../src/engine/host-instance';
import { checkInstanceId, instanceIdProblem, randomInstanceId } from '../../src/engine/instance-id';
import { instanceId } from '../../src/cli/options';

describe('instance ids (shared transactions\' transactional ids)', () => {
  it('accepts pod-like names up to 64 characters and refuses the rest with the reason', () => {
    for (const ok of ['tributary-0', 'pod_1.eu-west', 'a', 'x'.repeat(64)]) expect(instanceIdProblem(ok)).toBeUndefined();
    expect(instanceIdProblem('')).toBe('it is empty');
    expect(instanceIdProblem('x'.repeat(65))).toBe('it has 65 characters (at most 64)');
    for (const bad of ['pod 0', 'a/b', 'ü', 'a:b', 'x\n']) expect(instanceIdProblem(bad)).toMatch(/only letters, digits/);
  });

  it('names where a bad id came from (library option, CLI flag)', () => {
    expect(() => checkInstanceId('a b', 'instanceId')).toThrow("instanceId: 'a b' is not a valid instance id: only letters");
    expect(() => instanceId('a b')).toThrow(/expected an instance id \(\[A-Za-z0-9._-\], 1-64 characters\)/);
    expect(instanceId('pod-3')).toBe('pod-3');
  });

  it('the default is random per start and itself valid', () => {
    const a = randomInstanceId();
    expect(instanceIdProblem(a)).toBeUndefined();
    expect(randomInstanceId()).not.toBe(a);
  });
});

describe('default instance id: this host\'s lowest free slot (src/engine/host-instance.ts)', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-instances-'));
    dirs.push(d);
    return d;
  };
  const sleeper = () => spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('live holders keep their slots; a dead holder\'s slot is taken over, so a restart gets the same id', async () => {
    const dir = tmp();
    const first = sleeper();
    const second = sleeper();
    try {
      const a = claimHostInstance({ dir, scope: 'fraud-detection', hostname: 'node-7', pid: first.pid! });
      const b = claimHostInstance({ dir, scope: 'fraud-detection', hostname: 'node-7', pid: second.pid! });
      expect([a.id, b.id]).toEqual(['node-7-0', 'node-7-1']);
      expect(instanceIdProblem(a.id)).toBeUndefined();
      // Another topology's slots are its own.
      expect(claimHostInstance({ dir, scope: 'iot', hostname: 'node-7', pid: second.pid! }).id).toBe('node-7-0');
      // kill -9 of the first holder: its file stays, and the next start takes the slot back.
      first.kill('SIGKILL');
      await exited(first);
      expect(fs.readFileSync(a.file!, 'utf8').trim()).toBe(String(first.pid));
      const restarted = claimHostInstance({ dir, scope: 'fraud-detection', hostname: 'node-7', pid: process.pid });
      expect(restarted.id).toBe('node-7-0');
      expect(fs.readFileSync(a.file!, 'utf8').trim()).toBe(String(process.pid));
      // The same process asking again gets its own slot back; releasing removes the file (twice is harmless).
      expect(claimHostInstance({ dir, scope: 'fraud-detection', hostname: 'node-7', pid: process.pid }).id).toBe('node-7-0');
      restarted.release();
      expect(fs.existsSync(a.file!)).toBe(false);
      b.release();
      b.release();
      expect(fs.existsSync(b.file!)).toBe(false);
    } finally {
      first.kill('SIGKILL');
      second.kill('SIGKILL');
    }
  });

  it('a file naming this very pid is a predecessor\'s (a container\'s pid 1 restarted on the same volume), and is taken over', () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'pod-a'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'pod-a', 'fraud.0.pid'), '1\n');
    expect(claimHostInstance({ dir, scope: 'fraud', hostname: 'pod-a', pid: 1 }).id).toBe('pod-a-0');
  });

  it('host names outside the id charset are cleaned and bounded; all slots held is a named error', () => {
    expect(hostPart('my host/ü')).toBe('my_host__');
    expect(hostPart('h'.repeat(80))).toHaveLength(56);
    expect(instanceIdProblem(`${hostPart('h'.repeat(80))}-63`)).toBeUndefined();
    const dir = tmp();
    const holder = sleeper();
    try {
      claimHostInstance({ dir, scope: 's', hostname: 'h', pid: holder.pid!, maxSlots: 1 });
      expect(() => claimHostInstance({ dir, scope: 's', hostname: 'h', pid: process.pid, maxSlots: 1 })).toThrow(NoFreeInstanceSlotError);
      expect(() => claimHostInstance({ dir, scope: 's', hostname: 'h', pid: process.pid, maxSlots: 1 })).toThrow(/no free instance slot under .*h: 1 live processes hold one \(give this process --instance-id\)/);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
