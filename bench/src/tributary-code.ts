/**
 * Which Tributary code a run measures. By default the bench's own compile of this checkout's src/
 * (bench/dist/src); `--tributary-dir LABEL=PATH` points at another checkout's built `dist/` (run
 * `npm run build` there first), so one run can measure, say, old main and new main side by side.
 * The modules are loaded at run time by path, so the other checkout's code (and its node_modules)
 * is what runs, not this one's.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as PipelineModule from '../../src/stages/pipeline';
import type * as LoaderModule from '../../src/stages/load-topology';
import type * as BuiltinModule from '../../src/stages/builtin';
import { repoRoot } from '../../src/stack/paths';

export interface TributaryCodeRef {
  /** '' for this checkout; otherwise the label given on the command line (used in system names). */
  label: string;
  /** Checkout root: topologies/, models/ and schemas/ are read from here. */
  root: string;
  /** Folder holding the compiled modules (stages/pipeline.js, topology/loader.js, ...). */
  dist: string;
  /** Set for an exported commit (`--compare-ref`): the folder is not a git checkout. */
  commit?: string;
}

export interface TributaryCode {
  ref: TributaryCodeRef;
  pipeline: typeof PipelineModule;
  loader: typeof LoaderModule;
  builtin: typeof BuiltinModule;
  /** Heuristic: does this engine know the `fuse` option? (its compiled pipeline mentions it). */
  knowsFuse: boolean;
}

export class TributaryCodeError extends Error {
  override readonly name = 'TributaryCodeError';
}

/** This checkout, as compiled by `npm run bench` (bench/dist/src). */
export function ownCode(): TributaryCodeRef {
  return { label: '', root: repoRoot(), dist: path.join(repoRoot(), 'bench', 'dist', 'src') };
}

/** `LABEL=PATH[,LABEL=PATH...]` (a bare PATH gets the folder's name as its label; PATH `this` = this checkout). */
export function parseCodeRefs(arg: string | undefined): TributaryCodeRef[] {
  if (!arg) return [ownCode()];
  return arg.split(',').map((item) => {
    const eq = item.indexOf('=');
    const where = eq >= 0 ? item.slice(eq + 1) : item;
    const dir = path.resolve(where);
    const label = eq >= 0 ? item.slice(0, eq) : path.basename(dir);
    if (!/^[A-Za-z0-9_.-]+$/.test(label)) throw new TributaryCodeError(`--tributary-dir: label '${label}' must be letters, digits, '.', '_' or '-'`);
    // `this`: this checkout's working tree as the bench compiles it (no separate build needed)
    if (where === 'this') return { ...ownCode(), label };
    const dist = path.join(dir, 'dist');
    if (!fs.existsSync(path.join(dist, 'stages', 'pipeline.js'))) throw new TributaryCodeError(`--tributary-dir ${item}: ${dist}/stages/pipeline.js not found (run 'npm run build' in that checkout)`);
    return { label, root: dir, dist };
  });
}

/**
 * This checkout's sources that are newer than the bench's compile of them (bench/dist/src): the
 * bench would measure old code under this checkout's commit. `npm run bench` compiles first; running
 * bench/dist/bench/src/main.js directly after editing src/ does not. Sources with no compiled file
 * are not the bench's (it compiles what its entry points import; a new import makes its importer stale).
 */
export function staleCompiles(root: string, dist: string): string[] {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const js = path.join(dist, path.relative(path.join(root, 'src'), file)).replace(/\.ts$/, '.js');
        if (fs.existsSync(js) && fs.statSync(js).mtimeMs < fs.statSync(file).mtimeMs) stale.push(path.relative(root, file));
      }
    }
  };
  walk(path.join(root, 'src'));
  return stale;
}

/** Fails when this checkout's compile is older than its sources (see staleCompiles); other refs are compiled apart. */
export function assertCompiledCurrent(ref: TributaryCodeRef): void {
  if (ref.dist !== ownCode().dist) return;
  const stale = staleCompiles(ref.root, ref.dist);
  if (stale.length > 0) throw new TributaryCodeError(`${path.relative(ref.root, ref.dist)} is older than ${stale.length} source file(s) (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', …' : ''}): run 'npm run bench' (it compiles first) or 'npx tsc -p bench/tsconfig.json'`);
}

export function loadCode(ref: TributaryCodeRef): TributaryCode {
  const req = (m: string) => require(path.join(ref.dist, m)) as unknown;
  const pipelineFile = path.join(ref.dist, 'stages', 'pipeline.js');
  return {
    ref,
    pipeline: req('stages/pipeline.js') as typeof PipelineModule,
    // Checkouts from before plugins had the runtime loader in topology/loader.js (same call shape).
    loader: req(fs.existsSync(path.join(ref.dist, 'stages', 'load-topology.js')) ? 'stages/load-topology.js' : 'topology/loader.js') as typeof LoaderModule,
    builtin: req('stages/builtin.js') as typeof BuiltinModule,
    knowsFuse: /\bfuse\b/.test(fs.readFileSync(pipelineFile, 'utf8')),
  };
}

export interface CodeState {
  commit: string;
  /** Uncommitted changes under src/ of that checkout (the bench measures the working tree). */
  srcDirty: boolean;
  dirtyFiles: string[];
}

export function gitState(root: string): CodeState {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const dirty = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).map((l) => l.slice(3));
  return { commit: git(['rev-parse', 'HEAD']) || 'unknown', srcDirty: dirty.length > 0, dirtyFiles: dirty };
}

/**
 * `--compare-ref REF`: exports the commit REF of this repository (git archive, no worktree) into a
 * cache folder under the OS temp dir, links this checkout's node_modules into it and compiles it
 * with its own tsconfig.build.json, once per commit.
 */
export function exportRef(ref: string, log: (msg: string) => void): TributaryCodeRef {
  const git = (args: string[]) => execFileSync('git', args, { cwd: repoRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  let sha: string;
  try {
    sha = git(['rev-parse', '--verify', `${ref}^{commit}`]);
  } catch {
    throw new TributaryCodeError(`--compare-ref ${ref}: not a commit of this repository`);
  }
  const label = ref.replace(/[^A-Za-z0-9_.-]/g, '_');
  const dir = path.join(os.tmpdir(), `tributary-bench-${sha.slice(0, 12)}`);
  const dist = path.join(dir, 'dist');
  if (!fs.existsSync(path.join(dist, 'stages', 'pipeline.js'))) {
    log(`--compare-ref ${ref}: exporting ${sha.slice(0, 10)} to ${dir} and compiling it`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('bash', ['-c', `git archive --format=tar ${sha} | tar -x -C "${dir}"`], { cwd: repoRoot(), stdio: ['ignore', 'ignore', 'pipe'] });
    fs.symlinkSync(path.join(repoRoot(), 'node_modules'), path.join(dir, 'node_modules'));
    try {
      execFileSync(path.join(repoRoot(), 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      throw new TributaryCodeError(`--compare-ref ${ref}: compiling ${sha.slice(0, 10)} failed: ${String((err as { stdout?: Buffer }).stdout ?? (err as Error).message).slice(0, 2000)}`);
    }
  }
  return { label, root: dir, dist, commit: sha };
}
