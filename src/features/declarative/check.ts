/**
 * Checks parsed feature definitions against an input Avro schema and turns them into a typed tree
 * (IR) that compile.ts generates code from. Every problem names the path of the bad node inside the
 * definitions (`features[3].expr.mul[1]`) and, for field references, the field path.
 *
 * Types: `number` (Avro int/long/float/double), `boolean`, `string` (Avro string/enum); a node is
 * `nullable` when it may be null at run time (a nullable union on a field path, an unknown lookup
 * without default, a bucketized NaN, ...). Only identifiers, numbers and strings taken from this
 * validated tree reach the code generator.
 */
import type { Type } from 'avsc';
import { parseFieldPath, resolveFieldPath } from '../../util/field-path';
import { FUNCTION_NAME_PATTERN, type FeatureFunctionCatalog, type RegisteredFeatureFunction } from './functions';
import { FEATURE_NAME_PATTERN, OPERATORS, type Expr, type FeatureDefinitions, type FeatureSpec, type OneHotFeatureSpec, type TableSpec } from './spec';

export type Ty = 'number' | 'string' | 'boolean' | 'null';

interface Base {
  ty: Ty;
  nullable: boolean;
}
export type Node = Base &
  (
    | { k: 'const'; value: number | boolean | string | null }
    | { k: 'field'; segments: string[]; fallback?: number | boolean | string; integral: boolean }
    | { k: 'feature'; slot: number; column?: number }
    | { k: 'arith'; op: 'add' | 'sub' | 'mul' | 'div' | 'mod' | 'min' | 'max'; args: Node[] }
    | { k: 'unary'; op: 'neg' | 'abs' | 'floor' | 'ceil' | 'sqrt' | 'log1p' | 'log' | 'exp'; arg: Node }
    | { k: 'clip'; arg: Node; lo: number; hi: number }
    | { k: 'bucketize'; arg: Node; edges: number[] }
    | { k: 'hash'; arg: Node; buckets: number; seed: number }
    | { k: 'time'; part: 'hour' | 'dayOfWeek'; arg: Node; zone: string }
    | { k: 'lookup'; table: string; key: Node }
    | { k: 'ordinal'; arg: Node; vocabulary: string[]; unknown: number }
    | { k: 'cmp'; op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'; a: Node; b: Node }
    | { k: 'logic'; op: 'and' | 'or'; args: Node[] }
    | { k: 'not'; arg: Node }
    | { k: 'in'; arg: Node; values: Array<string | number> }
    | { k: 'isNull'; arg: Node }
    | { k: 'isFinite'; arg: Node }
    | { k: 'if'; cond: Node; then: Node; else: Node }
    | { k: 'coalesce'; args: Node[] }
    | { k: 'call'; fn: string; args: Node[]; argTypes: Array<'double' | 'string' | 'boolean'> }
  );

/** A checked feature: a scalar (one column) or a one-hot (several). */
export type CheckedFeature =
  | { kind: 'scalar'; name: string; expr: Node; fallback: number; ty: Ty }
  | { kind: 'oneHot'; name: string; of: Node; vocabulary: string[]; bucket: boolean; columns: string[] };

export interface CheckedDefinitions {
  defs: FeatureDefinitions;
  features: CheckedFeature[];
  /** Output column names in vector order. */
  names: string[];
  /** Time zones used (checked to exist in this runtime's time-zone database). */
  zones: string[];
  /** Plugin feature functions the expressions call, by name. */
  functions: FeatureFunctionCatalog;
}

/** One problem: path inside the definitions and what is wrong. */
export interface DefinitionProblem {
  path: string;
  message: string;
}

export class DefinitionsError extends Error {
  constructor(readonly problems: DefinitionProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    this.name = 'DefinitionsError';
  }
}

interface AvroLike {
  typeName: string;
  symbols?: string[];
}

function avroTy(t: Type): Ty | string {
  const name = (t as unknown as AvroLike).typeName;
  if (['int', 'long', 'float', 'double'].includes(name)) return 'number';
  if (name === 'boolean') return 'boolean';
  if (name === 'string' || name === 'enum') return 'string';
  return name;
}

/** A valid IANA zone for this runtime (Intl). */
export function zoneProblem(zone: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return null;
  } catch {
    return `unknown time zone '${zone}' (an IANA name such as UTC or Europe/Paris)`;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Checks `defs` (already structure-checked by definitionsFileSchema) against the input record type.
 * Throws DefinitionsError listing every problem.
 */
export function checkDefinitions(defs: FeatureDefinitions, input: Type, functions: FeatureFunctionCatalog = new Map()): CheckedDefinitions {
  const problems: DefinitionProblem[] = [];
  const bad = (path: string, message: string): Node => {
    problems.push({ path, message });
    return { k: 'const', value: null, ty: 'null', nullable: true };
  };
  const defaultZone = defs.timeZone ?? 'UTC';
  const zones = new Set<string>();
  if (defs.timeZone) {
    const z = zoneProblem(defs.timeZone);
    if (z) problems.push({ path: 'timeZone', message: z });
  }
  const tables = new Map<string, TableSpec & { ty: Ty }>();
  for (const [name, t] of Object.entries(defs.tables ?? {})) {
    const kinds = new Set([...Object.values(t.values), ...(t.default === undefined || t.default === null ? [] : [t.default])].map((v) => typeof v));
    if (kinds.size > 1) problems.push({ path: `tables.${name}`, message: 'values and default must be all numbers or all strings' });
    for (const [k, v] of Object.entries(t.values)) if (typeof v === 'number' && !Number.isFinite(v)) problems.push({ path: `tables.${name}.values.${k}`, message: 'must be a finite number' });
    tables.set(name, { ...t, ty: kinds.has('string') ? 'string' : 'number' });
  }
  for (const [what, p] of [['eventTime', defs.eventTime], ['key', defs.key]] as const) {
    if (p === undefined) continue;
    const r = resolveFieldPath(input, p);
    if (!r.ok) problems.push({ path: what, message: r.problem });
    else if (what === 'eventTime' && avroTy(r.type) !== 'number') problems.push({ path: what, message: `field '${p}' is ${avroTy(r.type)}; the event time is a number of ms since the epoch` });
  }

  const servingOnly = new Set(defs.servingOnly ?? []);
  const used = new Map<string, RegisteredFeatureFunction>();
  (defs.servingOnly ?? []).forEach((name, i) => {
    if (!functions.has(name)) problems.push({ path: `servingOnly[${i}]`, message: `no feature function '${name}' (${registered()})` });
  });
  function registered(): string {
    return functions.size ? `registered by the topology's plugins: ${[...functions.keys()].join(', ')}` : "the topology's plugins register no feature function";
  }

  /** A call of a plugin feature function: `{ ns.fn: [args...] }` (one argument may be written without the list). */
  const call = (name: string, v: unknown, path: string): Node => {
    const at = `${path}.${name}`;
    const f = functions.get(name);
    if (!f) return bad(at, `unknown feature function '${name}' (${registered()})`);
    const d = f.definition;
    if (!f.python && !servingOnly.has(name)) return bad(at, `feature function '${name}' declares no Python twin (python: './file.py:function'), so training cannot compute it; list it under servingOnly to serve it without one`);
    const raw = Array.isArray(v) ? v : d.args.length === 1 ? [v] : null;
    const sig = `${name}(${d.args.map((a) => `${a.name}: ${a.type}`).join(', ')})`;
    if (!raw || raw.length !== d.args.length) return bad(at, `takes ${d.args.length} argument${d.args.length === 1 ? '' : 's'}, ${sig}; got ${raw ? raw.length : 'no list'}`);
    const args = raw.map((x, i) => check(x, `${at}[${i}]`));
    let ok = true;
    args.forEach((a, i) => {
      const want = d.args[i].type;
      const fits = a.ty === 'null' || (want === 'double' ? a.ty === 'number' || a.ty === 'boolean' : want === 'string' ? a.ty === 'string' : a.ty === 'boolean');
      if (!fits) {
        ok = false;
        bad(`${at}[${i}]`, `is a ${a.ty}; argument '${d.args[i].name}' of ${sig} is a ${want}`);
      }
    });
    if (!ok) return { k: 'const', value: null, ty: 'null', nullable: true };
    used.set(name, f);
    return { k: 'call', fn: name, args, argTypes: d.args.map((a) => a.type), ty: 'number', nullable: true };
  };

  /** Scalar features seen so far, by name -> slot; one-hot columns -> (slot, column). */
  const scope = new Map<string, { slot: number; column?: number }>();

  const check = (e: Expr | unknown, path: string): Node => {
    if (e === null) return { k: 'const', value: null, ty: 'null', nullable: true };
    if (typeof e === 'number') return Number.isNaN(e) ? bad(path, 'NaN is not a literal; use a field or an expression') : { k: 'const', value: e, ty: 'number', nullable: false };
    if (typeof e === 'boolean') return { k: 'const', value: e, ty: 'boolean', nullable: false };
    if (typeof e === 'string') return fieldRef(e, undefined, path);
    if (Array.isArray(e)) return bad(path, 'a list is not an expression (operands go under an operator, e.g. { add: [a, b] })');
    if (!isObj(e)) return bad(path, 'is not an expression');
    const keys = Object.keys(e);
    const ops = keys.filter((k) => k in OPERATORS);
    const calls = keys.filter((k) => !(k in OPERATORS) && FUNCTION_NAME_PATTERN.test(k));
    if (ops.length === 0 && calls.length === 1) {
      if (keys.length > 1) return bad(`${path}.${keys.find((k) => k !== calls[0])}`, `a feature function call takes no options (arguments go in its list)`);
      return call(calls[0], e[calls[0]], path);
    }
    if (ops.length === 0 && calls.length > 1) return bad(path, `more than one feature function: ${calls.join(', ')}`);
    if (ops.length !== 1) return bad(path, ops.length === 0 ? `no operator (one of ${Object.keys(OPERATORS).join(', ')}); got ${keys.join(', ') || 'an empty map'}` : `more than one operator: ${ops.join(', ')}`);
    const op = ops[0];
    const extra = keys.filter((k) => k !== op && !OPERATORS[op].includes(k));
    if (extra.length > 0) return bad(`${path}.${extra[0]}`, `is not an option of '${op}' (options: ${OPERATORS[op].join(', ') || 'none'})`);
    const v = e[op];
    const at = `${path}.${op}`;
    const list = (min: number, max = Infinity): Node[] | null => {
      if (!Array.isArray(v) || v.length < min || v.length > max) {
        bad(at, max === min ? `takes a list of ${min} operands` : `takes a list of at least ${min} operands`);
        return null;
      }
      return v.map((x, i) => check(x, `${at}[${i}]`));
    };
    const numeric = (n: Node, p: string): Node => (n.ty === 'number' || n.ty === 'boolean' || n.ty === 'null' ? n : bad(p, `is a ${n.ty}; '${op}' needs a number`));
    const stringy = (n: Node, p: string): Node => (n.ty === 'string' || n.ty === 'null' ? n : bad(p, `is a ${n.ty}; '${op}' needs a string (or enum)`));
    const anyNull = (ns: Node[]) => ns.some((n) => n.nullable);
    switch (op) {
      case 'field':
        if (typeof v !== 'string') return bad(at, 'must be a field path');
        if (e.default !== undefined && !['number', 'string', 'boolean'].includes(typeof e.default)) return bad(`${path}.default`, 'must be a number, string or boolean');
        return fieldRef(v, e.default as number | string | boolean | undefined, at);
      case 'str':
        return typeof v === 'string' ? { k: 'const', value: v, ty: 'string', nullable: false } : bad(at, 'must be a string');
      case 'feature': {
        const ref = typeof v === 'string' ? scope.get(v) : undefined;
        if (!ref) return bad(at, `no earlier feature '${String(v)}' (a feature may use those defined before it)`);
        return { k: 'feature', slot: ref.slot, column: ref.column, ty: 'number', nullable: false };
      }
      case 'add': case 'mul': case 'min': case 'max': case 'sub': case 'div': case 'mod': {
        const args = op === 'sub' || op === 'div' || op === 'mod' ? list(2, 2) : list(2);
        if (!args) return bad(at, 'bad operands');
        args.forEach((a, i) => numeric(a, `${at}[${i}]`));
        return { k: 'arith', op, args, ty: 'number', nullable: anyNull(args) };
      }
      case 'neg': case 'abs': case 'floor': case 'ceil': case 'sqrt': case 'log1p': case 'log': case 'exp': {
        const arg = numeric(check(v, at), at);
        return { k: 'unary', op, arg, ty: 'number', nullable: arg.nullable };
      }
      case 'clip': {
        const arg = numeric(check(v, at), at);
        const lo = e.lower ?? -Infinity;
        const hi = e.upper ?? Infinity;
        if (typeof lo !== 'number' || Number.isNaN(lo)) return bad(`${path}.lower`, 'must be a number');
        if (typeof hi !== 'number' || Number.isNaN(hi)) return bad(`${path}.upper`, 'must be a number');
        if (e.lower === undefined && e.upper === undefined) return bad(path, "'clip' needs lower, upper or both");
        if (lo > hi) return bad(path, `lower ${lo} > upper ${hi}`);
        return { k: 'clip', arg, lo, hi, ty: 'number', nullable: arg.nullable };
      }
      case 'bucketize': {
        const arg = numeric(check(v, at), at);
        const edges = e.edges;
        if (!Array.isArray(edges) || edges.length === 0 || !edges.every(finite)) return bad(`${path}.edges`, 'must be a non-empty list of finite numbers');
        if (edges.some((x, i) => i > 0 && !(x > edges[i - 1]))) return bad(`${path}.edges`, 'must be strictly increasing');
        return { k: 'bucketize', arg, edges: edges as number[], ty: 'number', nullable: true };
      }
      case 'hash': {
        const arg = stringy(check(v, at), at);
        const buckets = e.buckets;
        const seed = e.seed ?? 0;
        if (!Number.isInteger(buckets) || (buckets as number) < 1 || (buckets as number) > 2 ** 31) return bad(`${path}.buckets`, 'must be an integer 1..2^31');
        if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) > 0xffffffff) return bad(`${path}.seed`, 'must be an integer 0..2^32-1');
        return { k: 'hash', arg, buckets: buckets as number, seed: seed as number, ty: 'number', nullable: arg.nullable };
      }
      case 'hour': case 'dayOfWeek': {
        const arg = numeric(check(v, at), at);
        const zone = e.timeZone ?? defaultZone;
        if (typeof zone !== 'string') return bad(`${path}.timeZone`, 'must be an IANA time zone name');
        const z = zoneProblem(zone);
        if (z) return bad(`${path}.timeZone`, z);
        zones.add(zone);
        return { k: 'time', part: op, arg, zone, ty: 'number', nullable: true };
      }
      case 'lookup': {
        const t = typeof v === 'string' ? tables.get(v) : undefined;
        if (!t) return bad(at, `no table '${String(v)}' in tables (declared: ${[...tables.keys()].join(', ') || 'none'})`);
        if (e.key === undefined) return bad(path, "'lookup' needs a key");
        const key = stringy(check(e.key, `${path}.key`), `${path}.key`);
        return { k: 'lookup', table: v as string, key, ty: t.ty, nullable: t.default === undefined || t.default === null };
      }
      case 'ordinal': {
        const arg = stringy(check(v, at), at);
        const vocab = e.vocabulary;
        if (!Array.isArray(vocab) || vocab.length === 0 || !vocab.every((x) => typeof x === 'string') || new Set(vocab).size !== vocab.length) return bad(`${path}.vocabulary`, 'must be a non-empty list of distinct strings');
        const unknown = e.unknown ?? -1;
        if (!finite(unknown)) return bad(`${path}.unknown`, 'must be a finite number');
        return { k: 'ordinal', arg, vocabulary: vocab as string[], unknown, ty: 'number', nullable: false };
      }
      case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': {
        const args = list(2, 2);
        if (!args) return bad(at, 'bad operands');
        const [a, b] = args;
        const kind = (n: Node) => (n.ty === 'boolean' ? 'number' : n.ty);
        if (op !== 'eq' && op !== 'ne') {
          args.forEach((x, i) => { if (x.ty === 'string') bad(`${at}[${i}]`, `strings are compared with eq/ne/in only ('${op}' orders numbers)`); });
        } else if (a.ty !== 'null' && b.ty !== 'null' && kind(a) !== kind(b)) {
          return bad(at, `compares a ${a.ty} with a ${b.ty}`);
        }
        return { k: 'cmp', op, a, b, ty: 'boolean', nullable: false };
      }
      case 'and': case 'or': {
        const args = list(2);
        if (!args) return bad(at, 'bad operands');
        args.forEach((a, i) => { if (a.ty !== 'boolean' && a.ty !== 'null') bad(`${at}[${i}]`, `is a ${a.ty}; '${op}' needs booleans`); });
        return { k: 'logic', op, args, ty: 'boolean', nullable: false };
      }
      case 'not': {
        const arg = check(v, at);
        if (arg.ty !== 'boolean' && arg.ty !== 'null') return bad(at, `is a ${arg.ty}; 'not' needs a boolean`);
        return { k: 'not', arg, ty: 'boolean', nullable: false };
      }
      case 'in': {
        const arg = check(v, at);
        const values = e.values;
        if (!Array.isArray(values) || values.length === 0) return bad(`${path}.values`, 'must be a non-empty list');
        const want = arg.ty === 'string' ? 'string' : 'number';
        if (arg.ty === 'boolean') return bad(at, "'in' takes a string or a number");
        if (!values.every((x) => (want === 'string' ? typeof x === 'string' : finite(x)))) return bad(`${path}.values`, `must all be ${want === 'string' ? 'strings' : 'finite numbers'}, like the value tested`);
        return { k: 'in', arg, values: values as Array<string | number>, ty: 'boolean', nullable: false };
      }
      case 'isNull':
        return { k: 'isNull', arg: check(v, at), ty: 'boolean', nullable: false };
      case 'isFinite': {
        const arg = numeric(check(v, at), at);
        return { k: 'isFinite', arg, ty: 'boolean', nullable: false };
      }
      case 'if': {
        const cond = check(v, at);
        if (cond.ty !== 'boolean' && cond.ty !== 'null') return bad(at, `is a ${cond.ty}; 'if' needs a boolean condition`);
        if (!('then' in e) || !('else' in e)) return bad(path, "'if' needs then and else");
        const th = check(e.then, `${path}.then`);
        const el = check(e.else, `${path}.else`);
        const ty = unify([th, el], path);
        return { k: 'if', cond, then: th, else: el, ty, nullable: th.nullable || el.nullable };
      }
      case 'coalesce': {
        const args = list(2);
        if (!args) return bad(at, 'bad operands');
        const ty = unify(args, at);
        return { k: 'coalesce', args, ty, nullable: args[args.length - 1].nullable };
      }
      default:
        return bad(at, `unknown operator '${op}'`);
    }
  };

  /** Common type of branches: numbers and booleans mix to number; null fits anything. */
  const unify = (ns: Node[], path: string): Ty => {
    const tys = new Set(ns.map((n) => n.ty).filter((t) => t !== 'null'));
    if (tys.size === 0) return 'null';
    if (tys.size === 1) return [...tys][0];
    if (!tys.has('string')) return 'number';
    bad(path, `mixes ${[...tys].join(' and ')} values`);
    return 'null';
  };

  const fieldRef = (p: string, fallback: number | string | boolean | undefined, path: string): Node => {
    try {
      parseFieldPath(p);
    } catch (err) {
      return bad(path, `${(err as Error).message}; a string literal is written { str: "..." }`);
    }
    const r = resolveFieldPath(input, p);
    if (!r.ok) return bad(path, r.problem);
    const ty = avroTy(r.type);
    if (ty !== 'number' && ty !== 'string' && ty !== 'boolean') return bad(path, `field '${p}' is ${ty}; features read numbers, booleans, strings and enums`);
    if (fallback !== undefined && (ty === 'number' ? typeof fallback !== 'number' : typeof fallback !== ty)) return bad(path, `default of field '${p}' must be a ${ty}`);
    const integral = ['int', 'long'].includes((r.type as unknown as AvroLike).typeName) && (fallback === undefined || Number.isInteger(fallback));
    return { k: 'field', segments: p.split('.'), fallback, integral, ty, nullable: r.nullable && fallback === undefined };
  };

  const features: CheckedFeature[] = [];
  const names: string[] = [];
  const nameRe = new RegExp(FEATURE_NAME_PATTERN);
  defs.features.forEach((f: FeatureSpec, i) => {
    const at = `features[${i}]`;
    if ('oneHot' in f && f.oneHot) {
      const oh = (f as OneHotFeatureSpec).oneHot;
      const of = check(oh.of, `${at}.oneHot.of`);
      if (of.ty !== 'string' && of.ty !== 'null') bad(`${at}.oneHot.of`, `is a ${of.ty}; one-hot encodes strings (bucketize numbers first... or use eq)`);
      const bucket = oh.unknown === 'bucket';
      const columns = oh.names ?? [...oh.vocabulary.map((v) => `${f.name}_${v}`), ...(bucket ? [`${f.name}__unknown`] : [])];
      if (columns.length !== oh.vocabulary.length + (bucket ? 1 : 0)) bad(`${at}.oneHot.names`, `must have ${oh.vocabulary.length + (bucket ? 1 : 0)} names (one per vocabulary entry${bucket ? ', then the unknown bucket' : ''})`);
      columns.forEach((c, j) => {
        if (!nameRe.test(c)) bad(`${at}.oneHot.vocabulary[${j}]`, `column name '${c}' is not a feature name (${FEATURE_NAME_PATTERN}); give oneHot.names`);
      });
      columns.forEach((c, j) => scope.set(c, { slot: features.length, column: j }));
      features.push({ kind: 'oneHot', name: f.name, of, vocabulary: oh.vocabulary, bucket, columns });
      names.push(...columns);
    } else {
      const s = f as { name: string; expr: Expr; default?: number };
      const expr = check(s.expr, `${at}.expr`);
      if (expr.ty === 'string') bad(`${at}.expr`, 'is a string; a feature is a number (encode strings with oneHot, ordinal, hash or lookup)');
      features.push({ kind: 'scalar', name: s.name, expr, fallback: s.default ?? 0, ty: expr.ty });
      scope.set(s.name, { slot: features.length - 1 });
      names.push(s.name);
    }
  });
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) problems.push({ path: 'features', message: `duplicate feature name '${n}'` });
  });
  if (problems.length > 0) throw new DefinitionsError(problems);
  return { defs, features, names, zones: [...zones], functions: used };
}
