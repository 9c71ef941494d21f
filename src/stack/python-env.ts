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
  if (!fs.existsSync(p.python)) execFileSync(python, ['-m', 'venv', p.venv], { stdio: 'pipe' });
  execFileSync(p.python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', p.requirements], { stdio: 'pipe', timeout: 600_000 });
  fs.writeFileSync(p.stamp, `${want}\n`);
  return { python: p.python, pythonPath: p.pythonPath, installed: true };
}
