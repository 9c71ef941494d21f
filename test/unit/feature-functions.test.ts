/**
 * Plugin feature functions in TypeScript: defineFeatureFunction's checks, the loader's checks of a
 * call (unknown function, arity, argument types against the input schema, a missing Python twin,
 * servingOnly) with the path of the bad node, the boundary semantics of the compiled call (null
 * arguments, null / non-number results, -0), and the plugin loader's catalog (twin resolved beside
 * the plugin file, a missing twin file, a name registered twice).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as avro from 'avsc';
import { buildFeatureSet, FeatureDefinitionsError } from '../../src/features/declarative/load';
import { defineFeatureFunction, FeatureFunctionDefinitionError, FeatureFunctionResultError, pythonTwins, type FeatureFunctionCatalog, type FeatureFunctionDeclaration, type RegisteredFeatureFunction } from '../../src/features/declarative/functions';
import type { FeatureDefinitions } from '../../src/features/declarative/spec';
import { definePlugin, PluginDefinitionError } from '../../src/stages/define';
import { loadPlugins } from '../../src/stages/plugin-loader';
import { ProcessorRegistry } from '../../src/stages/registry';

const SCHEMA = {
  type: 'record', name: 'Ping', namespace: 'test.fn',
  fields: [
    { name: 'x', type: 'double' },
    { name: 'y', type: ['null', 'double'], default: null },
    { name: 'n', type: 'int' },
    { name: 'label', type: 'string' },
    { name: 'ok', type: 'boolean' },
    { name: 'site', type: { type: 'record', name: 'Site', fields: [{ name: 'code', type: ['null', 'string'], default: null }] } },
  ],
};
const type = avro.Type.forSchema(SCHEMA as avro.Schema);

const decl = (over: Partial<FeatureFunctionDeclaration> = {}): FeatureFunctionDeclaration => ({
  name: 'test.scaled',
  args: [{ name: 'value', type: 'double' }, { name: 'unit', type: 'string' }],
  returns: 'double',
  deterministic: true,
  sideEffects: false,
  compute: (v: number, unit: string) => (unit === 'k' ? v * 1000 : v),
  python: './scaled.py:scaled',
  ...over,
});
const registered = (d: FeatureFunctionDeclaration, twin = true): RegisteredFeatureFunction => ({ definition: defineFeatureFunction(d), pluginFile: '/plugins/x.ts', ...(twin ? { python: { file: '/plugins/scaled.py', function: 'scaled' } } : {}) });
const catalog = (...fs: RegisteredFeatureFunction[]): FeatureFunctionCatalog => new Map(fs.map((f) => [f.definition.name, f]));
const CATALOG = catalog(
  registered(decl()),
  registered(decl({ name: 'test.flag', args: [{ name: 'on', type: 'boolean' }], compute: (on: boolean) => (on ? 1 : 2) })),
  registered(decl({ name: 'test.noTwin', args: [{ name: 'v', type: 'double' }], compute: (v: number) => v, python: undefined }), false),
);
const defs = (features: FeatureDefinitions['features'], extra: Partial<FeatureDefinitions> = {}): FeatureDefinitions => ({ featureSet: 'fn', version: 1, features, ...extra });
const build = (d: FeatureDefinitions, fns: FeatureFunctionCatalog = CATALOG) => buildFeatureSet(d, type, 'fn.yaml', '0'.repeat(16), fns);
function problemsOf(d: FeatureDefinitions, fns: FeatureFunctionCatalog = CATALOG): string[] {
  try {
    build(d, fns);
  } catch (err) {
    if (err instanceof FeatureDefinitionsError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}
const event = (over: Record<string, unknown> = {}) => ({ x: 2.5, y: null, n: 3, label: 'k', ok: true, site: { code: null }, ...over });

describe('defineFeatureFunction', () => {
  it.each([
    ['a name without a namespace', { name: 'scaled' }, /^name: must be a dotted name/],
    ['a name that is not an identifier path', { name: 'test.9x' }, /^name: must be a dotted name/],
    ['an argument of an unknown type', { args: [{ name: 'v', type: 'float' as never }] }, /feature function 'test.scaled': args\[0\]\.type: must be one of double, string, boolean/],
    ['a duplicate argument', { args: [{ name: 'v', type: 'double' as const }, { name: 'v', type: 'double' as const }] }, /args\[1\]\.name: duplicate argument 'v'/],
    ['a result that is not a double', { returns: 'string' as never }, /returns: must be 'double'/],
    ['undeclared determinism', { deterministic: undefined as never }, /deterministic: must be declared true or false/],
    ['undeclared side effects', { sideEffects: undefined as never }, /sideEffects: must be declared true or false/],
    ['no compute', { compute: 3 as never }, /compute: must be a function/],
    ['a malformed twin', { python: 'scaled.py' }, /python: must be '\.\/file\.py:function'/],
  ])('refuses %s, naming the member', (_what, over, expected) => {
    let err: unknown;
    try {
      defineFeatureFunction(decl(over as Partial<FeatureFunctionDeclaration>));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FeatureFunctionDefinitionError);
    expect((err as Error).message).toMatch(expected);
  });

  it('definePlugin takes functions, alone or with processors, and refuses undefined ones', () => {
    const f = defineFeatureFunction(decl());
    expect(definePlugin({ functions: [f] }).functions).toEqual([f]);
    expect(() => definePlugin({ functions: [decl() as never] })).toThrow(/functions\[0\]: is not made by defineFeatureFunction/);
    expect(() => definePlugin({})).toThrow(PluginDefinitionError);
  });
});

describe('calls in declarative definitions: checked against the input schema, with the path', () => {
  it.each([
    ['an unknown function', { 'test.nope': ['x'] }, "features[1].expr.test.nope: unknown feature function 'test.nope' (registered by the topology's plugins: test.scaled, test.flag, test.noTwin)"],
    ['too few arguments', { 'test.scaled': ['x'] }, 'features[1].expr.test.scaled: takes 2 arguments, test.scaled(value: double, unit: string); got 1'],
    ['too many arguments', { 'test.flag': ['ok', 'ok'] }, 'features[1].expr.test.flag: takes 1 argument, test.flag(on: boolean); got 2'],
    ['a string for a double', { 'test.scaled': ['label', 'label'] }, "features[1].expr.test.scaled[0]: is a string; argument 'value' of test.scaled(value: double, unit: string) is a double"],
    ['a number for a string', { 'test.scaled': ['x', 'n'] }, "features[1].expr.test.scaled[1]: is a number; argument 'unit' of test.scaled(value: double, unit: string) is a string"],
    ['a number for a boolean', { 'test.flag': 'x' }, "features[1].expr.test.flag[0]: is a number; argument 'on' of test.flag(on: boolean) is a boolean"],
    ['a missing field inside the call', { 'test.scaled': ['nope', 'label'] }, "features[1].expr.test.scaled[0]: event has no field 'nope' (fields: x, y, n, label, ok, site)"],
    ['options beside the call', { 'test.flag': 'ok', default: 1 }, 'features[1].expr.default: a feature function call takes no options (arguments go in its list)'],
    ['a function without a Python twin', { 'test.noTwin': 'x' }, "features[1].expr.test.noTwin: feature function 'test.noTwin' declares no Python twin (python: './file.py:function'), so training cannot compute it; list it under servingOnly to serve it without one"],
  ])('refuses %s', (_what, expr, expected) => {
    // The bad call is the second feature: the path must say so.
    expect(problemsOf(defs([{ name: 'a', expr: 'x' }, { name: 'b', expr: expr as never }]))).toEqual([expected]);
  });

  it('a nested call reports its own path', () => {
    expect(problemsOf(defs([{ name: 'a', expr: { clip: { add: [1, { 'test.scaled': ['x', 3] }] }, lower: 0 } }]))).toEqual([
      "features[0].expr.clip.add[1].test.scaled[1]: is a number; argument 'unit' of test.scaled(value: double, unit: string) is a string",
    ]);
  });

  it('without plugins, a call names none registered', () => {
    expect(problemsOf(defs([{ name: 'a', expr: { 'geo.haversineKm': [1, 2, 3, 4] } }]), new Map())).toEqual([
      "features[0].expr.geo.haversineKm: unknown feature function 'geo.haversineKm' (the topology's plugins register no feature function)",
    ]);
  });

  it('servingOnly accepts a function without a twin and must name registered functions', () => {
    expect(problemsOf(defs([{ name: 'a', expr: { 'test.noTwin': 'x' } }], { servingOnly: ['test.noTwin'] }))).toEqual([]);
    expect(problemsOf(defs([{ name: 'a', expr: 'x' }], { servingOnly: ['test.gone'] }))[0]).toMatch(/^servingOnly\[0\]: no feature function 'test.gone'/);
  });
});

describe('the compiled call: the boundary pinned in SEMANTICS.md', () => {
  it('passes float64 (booleans as 0/1 to a double), strings and booleans; a null argument gives null without a call', () => {
    const seen: unknown[][] = [];
    const spy = catalog(registered(decl({ compute: (v: number, u: string) => (seen.push([v, u]), u === 'k' ? v * 1000 : v) })), ...[...CATALOG.values()].slice(1));
    const set = build(defs([
      { name: 'a', expr: { 'test.scaled': ['x', 'label'] } },
      { name: 'b', expr: { 'test.scaled': ['y', 'label'] }, default: -7 },
      { name: 'c', expr: { 'test.scaled': ['ok', { str: 'm' }] } },
      { name: 'd', expr: { 'test.scaled': ['n', 'site.code'] }, default: -8 },
      { name: 'e', expr: { 'test.flag': { not: 'ok' } } },
      { name: 'f', expr: { mul: [{ 'test.scaled': ['x', { str: 'k' }] }, 2] } },
    ]), spy);
    expect(set.extract(event())).toEqual([2500, -7, 1, -8, 2, 5000]);
    // y and site.code were null: no call for b and d.
    expect(seen).toEqual([[2.5, 'k'], [1, 'm'], [2.5, 'k']]);
    // NaN and ±∞ are values, passed through.
    expect(set.extract(event({ x: NaN }))[0]).toBeNaN();
    expect(set.extract(event({ x: -Infinity }))[0]).toBe(-Infinity);
  });

  it('a null or undefined result takes the default; -0 is written as +0; another result type throws naming the function', () => {
    let result: unknown = null;
    const fns = catalog(registered(decl({ name: 'test.any', args: [{ name: 'v', type: 'double' }], compute: () => result as number })));
    const set = build(defs([{ name: 'a', expr: { 'test.any': 'x' }, default: 4 }]), fns);
    expect(set.extract(event())).toEqual([4]);
    result = undefined;
    expect(set.extract(event())).toEqual([4]);
    result = -0;
    expect(Object.is(set.extract(event())[0], 0)).toBe(true);
    result = '3';
    expect(() => set.extract(event())).toThrow(FeatureFunctionResultError);
    expect(() => set.extract(event())).toThrow(/feature function 'test.any' returned a string \(3\); it must return a number or null/);
  });

  it('the generated source calls the function through a pool constant, never with user text', () => {
    const set = build(defs([{ name: 'a', expr: { 'test.scaled': ['x', { str: '"); process.exit(1); ("' }] } }]));
    expect(set.source).not.toContain('process.exit');
    expect(set.source).toMatch(/P\d+\(t\d+, P\d+\)/);
  });
});

describe('plugin loader: feature functions from a module', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fn-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);

  it('registers a TypeScript plugin\'s function with its twin resolved beside the plugin file (no compile step)', () => {
    // Domain-free on purpose: the engine's unit tests run with either example folder deleted
    // (scripts/check-without-example.sh); the IoT example's own plugin is covered by its parity test.
    fs.mkdirSync(path.join(dir, 'plugins'), { recursive: true });
    write('plugins/scale.py', 'def scale(v, unit, on):\n    return v * 2.0 if on else v\n');
    write(
      'plugins/scale.ts',
      "import { defineFeatureFunction } from 'tributary';\n" +
        "export default defineFeatureFunction({ name: 'units.scale', args: [{ name: 'v', type: 'double' }, { name: 'unit', type: 'string' }, { name: 'on', type: 'boolean' }], returns: 'double', deterministic: true, sideEffects: false, compute: (v: number, _unit: string, on: boolean): number => (on ? v * 2 : v), python: './scale.py:scale' });\n",
    );
    const res = loadPlugins(['./plugins/scale.ts'], dir, new ProcessorRegistry());
    expect(res.errors).toEqual([]);
    const f = res.functions.get('units.scale')!;
    expect(f.python).toEqual({ file: path.join(dir, 'plugins', 'scale.py'), function: 'scale' });
    expect(res.plugins[0].functions).toEqual([{ name: 'units.scale', deterministic: true, sideEffects: false, python: `${f.python!.file}:scale` }]);
    expect(pythonTwins(res.functions)).toEqual({ 'units.scale': { twin: `${f.python!.file}:scale`, args: ['double', 'string', 'boolean'] } });
  });

  it('reports a missing twin file, a name registered twice and a bad definition at plugins[i]', () => {
    const fn = (name: string, py: string) => `const { defineFeatureFunction } = require('tributary');\nmodule.exports = defineFeatureFunction({ name: '${name}', args: [{ name: 'v', type: 'double' }], returns: 'double', deterministic: true, sideEffects: false, compute: (v) => v, python: '${py}' });\n`;
    write('twin.py', 'def f(v):\n    return v\n');
    write('a.js', fn('t.same', './twin.py:f'));
    write('b.js', fn('t.same', './twin.py:f'));
    write('c.js', fn('t.lost', './lost.py:f'));
    write('d.js', fn('nodots', './twin.py:f'));
    const res = loadPlugins(['./a.js', './b.js', './c.js', './d.js'], dir, new ProcessorRegistry());
    expect(res.errors.map((e) => `${e.path}: ${e.detail}`)).toEqual([
      "plugins[1]: feature function 't.same' is already registered by plugins[0] (./a.js)",
      `plugins[2]: feature function 't.lost': python: twin file not found: ${path.join(dir, 'lost.py')}`,
      expect.stringMatching(/^plugins\[3\]: name: must be a dotted name/),
    ]);
    expect([...res.functions.keys()]).toEqual(['t.same']);
  });
});
