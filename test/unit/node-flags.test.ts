import * as childProcess from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../src/stack/paths';
import { pretenuringFlag, RECOMMENDED_NODE_FLAGS, semiSpaceMiB, V8_DEFAULT_SEMI_SPACE_MIB } from '../../src/util/node-flags';
import { moduleExportsExpression } from '../helpers/transpiled';

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

describe('allocation-site pretenuring, off in a pipeline process', () => {
  it('reads the flag either way from NODE_OPTIONS and the process flags, the last one winning', () => {
    expect(pretenuringFlag([], '')).toBeUndefined();
    expect(pretenuringFlag(['--no-allocation-site-pretenuring'], '')).toBe(false);
    expect(pretenuringFlag(['--allocation_site_pretenuring'], '--no-allocation-site-pretenuring')).toBe(true);
    expect(pretenuringFlag(['--trace-gc'], '--no_allocation_site_pretenuring --max-semi-space-size=32')).toBe(false);
    expect(pretenuringFlag(['--allocation-site-pretenuring-x'], '')).toBeUndefined();
  });

  /**
   * A child Node process loads node-flags.ts (transpiled here), optionally applies the pipeline's
   * flags, then keeps every object a literal site makes — the survival V8 pretenures a site for —
   * with V8 tracing its decisions. Returns how many sites V8 moved to the old generation.
   */
  function tenuredSites(opts: { apply: boolean; nodeArgs?: string[] }): { tenured: number; state: unknown } {
    const script = `
      const m = ${moduleExportsExpression('src/util/node-flags.ts')};
      const state = ${opts.apply ? 'm.applyPipelineV8Flags()' : 'null'};
      const keep = [];
      function make(i) { return { a: i, b: [i], c: 'x' + i }; }
      for (let r = 0; r < 20; r++) { for (let i = 0; i < 50000; i++) keep.push(make(i)); if (keep.length > 5e5) keep.length = 0; }
      process.stderr.write('STATE ' + JSON.stringify(state) + '\\n');`;
    const out = childProcess.spawnSync(process.execPath, [...(opts.nodeArgs ?? []), '--trace-pretenuring-statistics', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 });
    expect(out.status).toBe(0);
    const tenured = out.stdout.split('\n').filter((l) => /pretenuring: AllocationSite.*=> tenure$/.test(l)).length;
    const stateLine = out.stderr.split('\n').find((l) => l.startsWith('STATE ')) ?? 'STATE null';
    return { tenured, state: JSON.parse(stateLine.slice('STATE '.length)) };
  }

  it('V8 pretenures a site whose objects survive; after applyPipelineV8Flags it does not', () => {
    const plain = tenuredSites({ apply: false });
    expect(plain.tenured).toBeGreaterThan(0);
    const applied = tenuredSites({ apply: true });
    expect(applied.state).toEqual({ pretenuring: false, source: 'pipeline' });
    expect(applied.tenured).toBe(0);
  });

  it('a process given the flag keeps it: --allocation-site-pretenuring leaves V8 pretenuring', () => {
    const kept = tenuredSites({ apply: true, nodeArgs: ['--allocation-site-pretenuring'] });
    expect(kept.state).toEqual({ pretenuring: true, source: 'flag' });
    expect(kept.tenured).toBeGreaterThan(0);
  });
});
