import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CUDA_INSTALL_HINT, installedExecutionProviders, providerUnavailableReason } from '../../src/inference/execution-providers';
import { createSession, ExecutionProviderError } from '../../src/inference/onnx-model';
import { repoRoot } from '../../src/stack/paths';
import { firstWorkingProvider } from '../helpers/execution-providers';

const WEIGHTS = path.join(repoRoot(), 'models', 'fraud', '1', 'model.onnx');

describe('execution providers of the installed onnxruntime-node', () => {
  const installed = installedExecutionProviders();

  it('lists every backend the binding reports, cpu bundled, and a non-bundled one as installed exactly when its library is present', () => {
    expect(installed.map((p) => p.name)).toEqual(ort.listSupportedBackends().map((b) => b.name));
    expect(installed.find((p) => p.name === 'cpu')).toEqual({ name: 'cpu', bundled: true, installed: true });
    for (const p of installed.filter((x) => !x.bundled)) {
      expect(p.library).toMatch(new RegExp(`onnxruntime_providers_${p.name}\\.(so|dll)$`));
      expect({ name: p.name, installed: p.installed }).toEqual({ name: p.name, installed: fs.existsSync(p.library!) });
    }
  });

  it('selects the first configured provider that works on this machine (cpu without CUDA, cuda on a CUDA host)', async () => {
    const expected = await firstWorkingProvider(WEIGHTS, ['cuda', 'cpu']);
    const { session, provider } = await createSession(WEIGHTS, { executionProviders: ['cuda', 'cpu'] });
    await session.release();
    expect(provider).toBe(expected);
    // Without CUDA's provider library installed, cuda cannot be what was chosen.
    if (!installed.find((p) => p.name === 'cuda')?.installed) expect(provider).toBe('cpu');
  });

  it('names each provider this install lacks with how to install it, and fails when none is left', async () => {
    const missing = installed.filter((p) => !p.installed).map((p) => p.name);
    for (const name of missing) expect(providerUnavailableReason(name, installed)).toContain(CUDA_INSTALL_HINT);
    const err = await createSession(WEIGHTS, { executionProviders: [...missing, 'no-such-provider'] }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect((err as Error).message).toContain(`tried ${[...missing, 'no-such-provider'].join(', ')}`);
    expect((err as Error).message).toMatch(/no-such-provider: not supported by this onnxruntime-node build \(it supports cpu/);
    for (const name of missing) expect((err as Error).message).toContain(`${name}: not installed`);
  });
});

describe('installing with CUDA: what onnxruntime-node\'s install script would fetch', () => {
  // .npmrc skips the CUDA download by default (npm hands it to install scripts as
  // npm_config_onnxruntime_node_install=skip); ONNXRUNTIME_NODE_INSTALL=cuda12 at install time must
  // win over it. The real install script runs with its download step replaced by a report of what
  // it would install, so nothing is fetched.
  const script = require.resolve('onnxruntime-node/script/install.js');
  const preload = path.join(repoRoot(), 'test', 'helpers', 'ort-install-dry-run.js');
  const wouldInstall = (env: Record<string, string>): string[] => {
    const res = spawnSync(process.execPath, ['-r', preload, script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
    return res.stdout.trim() ? (JSON.parse(res.stdout) as string[]) : [];
  };
  const cudaPlatform = process.platform === 'linux' && process.arch === 'x64';

  it('.npmrc skips the download unless asked', () => {
    expect(fs.readFileSync(path.join(repoRoot(), '.npmrc'), 'utf8')).toMatch(/^onnxruntime-node-install=skip$/m);
    expect(wouldInstall({ npm_config_onnxruntime_node_install: 'skip' })).toEqual([]);
  });

  (cudaPlatform ? it : it.skip)('ONNXRUNTIME_NODE_INSTALL=cuda12 overrides the .npmrc skip and fetches the CUDA and TensorRT provider libraries', () => {
    const files = wouldInstall({ npm_config_onnxruntime_node_install: 'skip', ONNXRUNTIME_NODE_INSTALL: 'cuda12' });
    const cudaInstalled = installedExecutionProviders().find((p) => p.name === 'cuda')?.installed;
    // Already installed: the script has nothing left to fetch.
    if (cudaInstalled) expect(files).toEqual([]);
    else expect(files.map((f) => path.basename(f)).sort()).toEqual(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so']);
  });
});
