/**
 * The repository's Python environment (./.venv) for python/tributary_features: created with
 * `python3 -m venv` and filled from python/requirements.txt, re-installed only when that file
 * changes (a stamp with its sha256). Run by `tributary setup --for tests` and by the parity test;
 * scripts/train-model.sh adds the training toolchain to the same venv.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NO_INSTALL_ENV } from './ensure-prerequisites';
import { repoRoot } from './paths';

export interface PythonEnv {
  /** The venv's interpreter. */
  python: string;
  /** PYTHONPATH holding python/ (the tributary_features package). */
  pythonPath: string;
  installed: boolean;
}

export function pythonEnvPaths(root = repoRoot()) {
  const venv = path.join(root, '.venv');
  return { venv, python: path.join(venv, 'bin', 'python'), requirements: path.join(root, 'python', 'requirements.txt'), stamp: path.join(venv, '.tributary-features.sha256'), pythonPath: path.join(root, 'python') };
}

/** Creates/updates ./.venv for the features package; throws with pip's output when it cannot. */
export function ensurePythonEnv(root = repoRoot(), python = process.env.PYTHON ?? 'python3'): PythonEnv {
  const p = pythonEnvPaths(root);
  const want = createHash('sha256').update(fs.readFileSync(p.requirements)).digest('hex');
  const have = fs.existsSync(p.stamp) ? fs.readFileSync(p.stamp, 'utf8').trim() : '';
  if (fs.existsSync(p.python) && have === want) return { python: p.python, pythonPath: p.pythonPath, installed: false };
  const command = `${python} -m venv .venv && .venv/bin/python -m pip install -r python/requirements.txt`;
  if (['1', 'true', 'yes'].includes((process.env[NO_INSTALL_ENV] ?? '').trim().toLowerCase())) {
    throw new Error(`the Python environment for python/tributary_features is missing or out of date and ${NO_INSTALL_ENV} is set; create it with: ${command}`);
  }
  try {
    if (!fs.existsSync(p.python)) execFileSync(python, ['-m', 'venv', p.venv], { stdio: 'pipe' });
    execFileSync(p.python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', p.requirements], { stdio: 'pipe', timeout: 600_000 });
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    throw new Error(`could not set up ${p.venv} for python/tributary_features (${String(e.stderr ?? e.message).trim().split('\n').pop()}); run: ${command}`);
  }
  fs.writeFileSync(p.stamp, `${want}\n`);
  return { python: p.python, pythonPath: p.pythonPath, installed: true };
}
