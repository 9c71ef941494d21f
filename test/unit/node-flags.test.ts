import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../src/stack/paths';
import { RECOMMENDED_NODE_FLAGS, semiSpaceMiB, V8_DEFAULT_SEMI_SPACE_MIB } from '../../src/util/node-flags';

const root = repoRoot();

describe('the Node flags a Tributary process runs with', () => {
  it('reads the max semi-space from NODE_OPTIONS and the process flags, the last one winning, else V8 default', () => {
    expect(semiSpaceMiB([], '')).toEqual({ mib: V8_DEFAULT_SEMI_SPACE_MIB, source: 'default' });
    expect(semiSpaceMiB(['--max-semi-space-size=32'], '')).toEqual({ mib: 32, source: 'flag' });
    expect(semiSpaceMiB(['--max_semi_space_size=48'], '--max-semi-space-size=8')).toEqual({ mib: 48, source: 'flag' });
    expect(semiSpaceMiB(['--trace-gc'], '--max-semi-space-size=8 --enable-source-maps')).toEqual({ mib: 8, source: 'flag' });
  });

  it('every way the repository starts a pipeline passes the recommended flags: the executable, the demo script, docker-compose', () => {
    const shebang = fs.readFileSync(path.join(root, 'src', 'cli', 'main.ts'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${RECOMMENDED_NODE_FLAGS.join(' ')}`);
    const scripts = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.demo).toContain(`node ${RECOMMENDED_NODE_FLAGS.join(' ')} dist/cli/main.js demo`);
    const compose = fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    const nodeCommands = compose.split('\n').filter((l) => l.includes('"dist/cli/main.js"'));
    expect(nodeCommands.length).toBeGreaterThan(0);
    for (const line of nodeCommands) expect(line).toContain(`["node", ${RECOMMENDED_NODE_FLAGS.map((f) => `"${f}"`).join(', ')}, "dist/cli/main.js"`);
  });
});
