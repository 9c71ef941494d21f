import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

// The test environment (test/helpers/node-environment.js) gives each test file a temp folder of its
// own, removed after the file: scratch folders made by tests must land in it.
describe('test scratch folder', () => {
  it('os.tmpdir() is a per-file folder, and processes a test starts inherit it', () => {
    const tmp = os.tmpdir();
    expect(path.basename(tmp)).toMatch(/^tributary-jest-/);
    expect(fs.statSync(tmp).isDirectory()).toBe(true);
    const child = execFileSync(process.execPath, ['-e', 'process.stdout.write(require("os").tmpdir())'], { env: process.env }).toString();
    expect(child).toBe(tmp);
  });
});
