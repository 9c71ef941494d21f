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
