/**
 * `tributary init DIR`: scaffolds a pipeline folder from templates/init — topology, Avro schema,
 * feature definitions (features/features.yaml, declarative), a model folder in the
 * repository layout models/<name>/<version>/ with a card template, a README and example events.
 * The result validates as written and runs once a model file is dropped in (README inside).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { repoRoot } from '../../util/paths';
import { UsageError, wantsJson } from '../options';

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Where the templates live (shipped with the package). */
export function initTemplateDir(): string {
  return path.join(repoRoot(), 'templates', 'init');
}

export interface InitOptions {
  /** Pipeline name (topics, model, consumer groups); default the folder's name. */
  name?: string;
  /** Write into a folder that already has files (never overwrites one). */
  force?: boolean;
}

export interface InitResult {
  dir: string;
  name: string;
  files: string[];
}

/** Placeholders of the templates, from the pipeline name. */
function substitutions(name: string): Record<string, string> {
  const snake = name.replace(/-/g, '_');
  return {
    name,
    schema: `${name}-event`,
    namespace: `pipelines.${snake}`,
    setName: `${snake}_features`,
    createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    schemaUrl: path.join(repoRoot(), 'topologies', 'topology.schema.json'),
    definitionsSchemaUrl: path.join(repoRoot(), 'topologies', 'feature-definitions.schema.json'),
  };
}

/** Template path segments that become names: EVENT.avsc, models/MODEL/. */
function targetPath(rel: string, subs: Record<string, string>): string {
  return rel
    .split(path.sep)
    .map((seg) => (seg === 'EVENT.avsc' ? `${subs.schema}.avsc` : seg === 'MODEL' ? subs.name : seg))
    .join(path.sep);
}

function listFiles(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(full, base) : [path.relative(base, full)];
  });
}

/** Writes the scaffold; refuses a name that is not a topic/model name and a folder with files (unless force; never overwrites). */
export function scaffoldPipeline(dir: string, options: InitOptions = {}): InitResult {
  const abs = path.resolve(dir);
  const name = options.name ?? path.basename(abs).toLowerCase();
  if (!NAME.test(name)) throw new UsageError(`pipeline name '${name}' must be lowercase letters, digits and '-', starting with a letter (give --name)`);
  if (fs.existsSync(abs) && fs.readdirSync(abs).length > 0 && !options.force) throw new UsageError(`${abs} is not empty (use --force to add the scaffold's files next to what is there)`);
  const subs = substitutions(name);
  const templates = initTemplateDir();
  const planned = listFiles(templates).sort().map((rel) => ({ from: path.join(templates, rel), to: path.join(abs, targetPath(rel, subs)) }));
  const clash = planned.filter((p) => fs.existsSync(p.to));
  if (clash.length > 0) throw new UsageError(`would overwrite ${clash.map((p) => path.relative(abs, p.to)).join(', ')}`);
  for (const p of planned) {
    const text = fs.readFileSync(p.from, 'utf8').replace(/\{\{(\w+)\}\}/g, (m, key: string) => subs[key] ?? m);
    fs.mkdirSync(path.dirname(p.to), { recursive: true });
    fs.writeFileSync(p.to, text);
  }
  return { dir: abs, name, files: planned.map((p) => path.relative(abs, p.to)) };
}

export function registerInitCommands(program: Command): void {
  program
    .command('init')
    .description('scaffold a pipeline folder: topology, Avro schema, feature definitions, model card template, README, example events')
    .argument('<dir>', 'folder to create (its name names the pipeline unless --name)')
    .option('--name <name>', 'pipeline name: topics, model and consumer groups (default: the folder name)')
    .option('--force', 'write into a folder that already has files (never overwrites one)')
    .action((dir: string, opts: { name?: string; force?: boolean }, cmd: Command) => {
      const result = scaffoldPipeline(dir, opts);
      if (wantsJson(cmd)) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const rel = path.relative(process.cwd(), result.dir) || '.';
      process.stdout.write(
        [
          `created pipeline '${result.name}' in ${rel}:`,
          ...result.files.map((f) => `  ${f}`),
          'next:',
          `  cd ${rel} && tributary validate topology.yaml`,
          `  put an ONNX model in models/${result.name}/1/model.onnx and its sha256 in model.json (README.md: First run)`,
          '  tributary run topology.yaml',
          '',
        ].join('\n'),
      );
    });
}
