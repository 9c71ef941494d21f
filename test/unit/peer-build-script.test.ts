import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * bench/peers/kstreams/build.sh's contract with its callers (the peer's integration test and the
 * bench): stdout's last line is the jar's path, whatever Maven prints. Maven itself is replaced by
 * a stand-in on PATH that fails offline (a fresh machine's empty local repository) and, online,
 * prints what Maven 3.8 prints — output ending in colour codes without a newline, which used to
 * glue onto the path. The real build runs in test/integration/peer-kstreams.test.ts.
 */
const repo = path.resolve(__dirname, '../..');

function copyPeer(): { root: string; script: string; jar: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-build-'));
  const peer = path.join(root, 'bench/peers/kstreams');
  fs.mkdirSync(peer, { recursive: true });
  for (const f of ['build.sh', 'pom.xml']) fs.copyFileSync(path.join(repo, 'bench/peers/kstreams', f), path.join(peer, f));
  fs.cpSync(path.join(repo, 'bench/peers/kstreams/src'), path.join(peer, 'src'), { recursive: true });
  // The schemas the jar packs: only their times matter here (the fraud example may be absent:
  // CI runs the unit tests with each example folder deleted).
  for (const f of ['examples/fraud/schemas/transaction.avsc', 'schemas/prediction.avsc']) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), '{}\n');
  }
  return { root, script: path.join(peer, 'build.sh'), jar: path.join(peer, 'target', 'tributary-kstreams-peer.jar') };
}

function fakeTools(root: string): string {
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin);
  const mvn = ['#!/usr/bin/env bash', 'if [[ "$1" == "-o" ]]; then echo "offline: a dependency is not in the local repository"; exit 1; fi', "printf 'online build output\\n\\033[0m\\033[0m'", 'mkdir -p target && touch target/tributary-kstreams-peer.jar'].join('\n');
  fs.writeFileSync(path.join(bin, 'mvn'), `${mvn}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'java'), '#!/usr/bin/env bash\nexit 0\n', { mode: 0o755 });
  return bin;
}

describe('the Kafka Streams peer build script', () => {
  it('prints the jar path as the last line of stdout when the build had to go online, Maven output on stderr', () => {
    const { root, script, jar } = copyPeer();
    try {
      const bin = fakeTools(root);
      const run = spawnSync('bash', [script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      expect(run.status).toBe(0);
      expect(run.stdout.trim().split('\n').pop()).toBe(jar);
      expect(run.stderr).toContain('online build output');
      // A second call finds the jar newer than its inputs: no build, the same path.
      const again = spawnSync('bash', [script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      expect(again.stdout).toBe(`${jar}\n`);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
