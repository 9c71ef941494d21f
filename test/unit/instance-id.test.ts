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
