import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

/** What the installed onnxruntime-node offers for one execution provider. */
export interface ExecutionProviderInfo {
  name: string;
  /** Built into the binding (cpu, webgpu, ...); the others need a provider library beside it. */
  bundled: boolean;
  /** Bundled, or its provider library is present. Installed is not yet usable: CUDA also needs a GPU and driver. */
  installed: boolean;
  /** The provider library onnxruntime loads for a non-bundled provider. */
  library?: string;
}

/**
 * How to get the non-bundled providers: onnxruntime-node's install script fetches the CUDA 12 build
 * (CUDA and TensorRT provider libraries) when ONNXRUNTIME_NODE_INSTALL=cuda12 is set at install time;
 * this project's .npmrc skips that download otherwise (README, "GPU").
 */
export const CUDA_INSTALL_HINT = 'install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` on a machine with CUDA 12 and cuDNN 9 (README, "GPU")';

/** The directory holding onnxruntime-node's binding for this platform (where provider libraries go). */
export function onnxruntimeBindingDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const bin = path.join(pkg, 'bin');
  for (const napi of fs.readdirSync(bin).sort().reverse()) {
    const dir = path.join(bin, napi, process.platform, process.arch);
    if (fs.existsSync(path.join(dir, 'onnxruntime_binding.node'))) return dir;
  }
  throw new Error(`onnxruntime-node has no binding for ${process.platform}/${process.arch} under ${bin}`);
}

function providerLibraryName(provider: string): string {
  return process.platform === 'win32' ? `onnxruntime_providers_${provider}.dll` : `libonnxruntime_providers_${provider}.so`;
}

/** Every provider the installed onnxruntime-node knows, and whether this install has it. */
export function installedExecutionProviders(): ExecutionProviderInfo[] {
  const dir = onnxruntimeBindingDir();
  return ort.listSupportedBackends().map(({ name, bundled }) => {
    if (bundled) return { name, bundled, installed: true };
    const library = path.join(dir, providerLibraryName(name));
    return { name, bundled, installed: fs.existsSync(library), library };
  });
}

/**
 * Why `provider` cannot even be tried with this install, or undefined when it can (whether it then
 * works depends on the machine: a GPU, its driver, the CUDA libraries).
 */
export function providerUnavailableReason(provider: string, providers: ExecutionProviderInfo[] = installedExecutionProviders()): string | undefined {
  const info = providers.find((p) => p.name === provider);
  if (!info) return `not supported by this onnxruntime-node build (it supports ${providers.map((p) => p.name).join(', ')})`;
  if (!info.installed) return `not installed (${info.library} is missing); ${CUDA_INSTALL_HINT}`;
  return undefined;
}
