import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from '../../src/stack/paths';

describe('structured logs', () => {
  it('writes JSON lines to stderr and never prints credentials', () => {
    // A child process, so the logger writes to a real stderr we can read.
    const code = `const { createLogger } = require(${JSON.stringify(path.join(repoRoot(), 'dist/util/logger.js'))});
      createLogger('t').info({ kafka: { sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'hunter2' } }, registry: { auth: { username: 'x', password: 'hunter3' } } }, 'connecting');`;
    const res = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    expect(res.status).toBe(0);
    const line = JSON.parse(res.stderr.trim().split('\n')[0]);
    expect(line.msg).toBe('connecting');
    expect(line.name).toBe('t');
    expect(res.stderr).not.toContain('hunter2');
    expect(res.stderr).not.toContain('hunter3');
  });
});
