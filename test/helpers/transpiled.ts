import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../../src/stack/paths';

/**
 * A source file of the repository as CommonJS JavaScript, for a test that runs it in a child Node
 * process of its own: a heap no earlier test file touched, or V8 flags the jest worker must not get.
 */
export function transpiledSource(repoPath: string): string {
  const text = fs.readFileSync(path.join(repoRoot(), repoPath), 'utf8');
  return ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
}

/**
 * A JavaScript expression, for such a child process's script, whose value is the exports of the
 * source file `repoPath` (transpiled here, compiled there as a CommonJS module of its own).
 */
export function moduleExportsExpression(repoPath: string): string {
  const name = JSON.stringify(path.basename(repoPath).replace(/\.ts$/, '.js'));
  return `(() => { const Module = require('node:module'); const m = new Module(${name}); m._compile(${JSON.stringify(transpiledSource(repoPath))}, ${name}); return m.exports; })()`;
}
