/**
 * Compiles checked feature definitions (check.ts) into one JavaScript function, generated once at
 * load time: `extractInto(event, out, offset)` writes every column of the vector.
 *
 * Safety: the generated source is built only from the validated tree. It contains generated
 * identifiers (t0, v1, j2), operators, numbers formatted from `number` values, and field names that
 * matched the Avro name pattern (quoted with JSON.stringify). Every string from the definitions
 * (vocabularies, table keys and values, string literals) is passed in as data (pools), never
 * spliced into the source.
 *
 * Semantics (pinned in SEMANTICS.md, mirrored by python/tributary_features): float64 throughout,
 * operands evaluated left to right, n-ary add/mul/min/max folded left to right, null propagates
 * through arithmetic and functions and is false in logic and comparisons, a null feature takes its
 * `default`, booleans are 0/1, -0 is written as +0.
 */
import { bucketize, fmod, hashBucket, max2, min2, ZoneClock } from './runtime';
import type { CheckedDefinitions, Node } from './check';

export type FeatureBuffer = number[] | Float32Array | Float64Array;
export type ExtractInto = <T extends FeatureBuffer>(event: unknown, out: T, offset: number) => T;

export interface CompiledFunction {
  extractInto: ExtractInto;
  /** The generated source (for tests and `--explain`-style debugging). */
  source: string;
}

/** A JS literal for a number taken from the validated tree. */
function num(n: number): string {
  if (typeof n !== 'number' || Number.isNaN(n)) throw new Error('internal: not a number literal');
  if (Object.is(n, -0)) return '(-0)';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '(-Infinity)';
  return `(${String(n)})`;
}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function compileDefinitions(checked: CheckedDefinitions): CompiledFunction {
  const lines: string[] = [];
  const pools: unknown[] = [];
  const pool = (v: unknown): string => {
    pools.push(v);
    return `P[${pools.length - 1}]`;
  };
  const zones = new Map<string, string>();
  const zone = (z: string): string => {
    let ref = zones.get(z);
    if (!ref) {
      ref = pool(new ZoneClock(z));
      zones.set(z, ref);
    }
    return ref;
  };
  let n = 0;
  const tmp = () => `t${n++}`;
  const fieldMemo = new Map<string, string>();
  const tables = checked.defs.tables ?? {};

  /** As a number: booleans become 1/0 (the value must not be null here). */
  const asNum = (x: string, node: Node) => (node.ty === 'boolean' ? `(${x} ? 1 : 0)` : x);
  /** `cond ? null : expr` over the nullable operands. */
  const guarded = (ops: Array<[string, Node]>, expr: string) => {
    const checks = ops.filter(([, nd]) => nd.nullable).map(([x]) => `${x} === null`);
    return checks.length ? `(${checks.join(' || ')}) ? null : ${expr}` : expr;
  };
  const let_ = (expr: string) => {
    const t = tmp();
    lines.push(`const ${t} = ${expr};`);
    return t;
  };

  const emit = (node: Node): string => {
    switch (node.k) {
      case 'const':
        if (node.value === null) return 'null';
        if (typeof node.value === 'number') return num(node.value);
        if (typeof node.value === 'boolean') return node.value ? 'true' : 'false';
        return pool(node.value);
      case 'field': {
        const key = `${node.segments.join('.')}|${node.fallback === undefined ? '' : typeof node.fallback + String(node.fallback)}`;
        const memo = fieldMemo.get(key);
        if (memo) return memo;
        for (const s of node.segments) if (!SEGMENT.test(s)) throw new Error('internal: bad field segment');
        const t = tmp();
        const access = node.segments.map((s) => `[${JSON.stringify(s)}]`);
        lines.push(`let ${t} = ev;`);
        for (const a of access) lines.push(`${t} = ${t} == null ? null : ${t}${a};`);
        lines.push(`if (${t} === undefined) ${t} = null;`);
        if (node.fallback !== undefined) {
          const fb = typeof node.fallback === 'number' ? num(node.fallback) : typeof node.fallback === 'boolean' ? String(node.fallback) : pool(node.fallback);
          lines.push(`if (${t} === null) ${t} = ${fb};`);
        }
        fieldMemo.set(key, t);
        return t;
      }
      case 'feature':
        return node.column === undefined ? `v${node.slot}` : `(j${node.slot} === ${node.column} ? 1 : 0)`;
      case 'arith': {
        if (node.args.some((a) => a.ty === 'null')) return 'null';
        const xs = node.args.map((a) => [emit(a), a] as [string, Node]);
        const vals = xs.map(([x, a]) => asNum(x, a));
        let expr: string;
        switch (node.op) {
          case 'add': expr = vals.join(' + '); break;
          case 'mul': expr = vals.join(' * '); break;
          case 'sub': expr = `${vals[0]} - ${vals[1]}`; break;
          case 'div': expr = `${vals[0]} / ${vals[1]}`; break;
          case 'mod': expr = `R.fmod(${vals[0]}, ${vals[1]})`; break;
          default: {
            const f = node.op === 'min' ? 'R.min2' : 'R.max2';
            expr = vals.slice(1).reduce((acc, v) => `${f}(${acc}, ${v})`, vals[0]);
          }
        }
        return let_(guarded(xs, expr));
      }
      case 'unary': {
        if (node.arg.ty === 'null') return 'null';
        const x = emit(node.arg);
        const v = asNum(x, node.arg);
        const fn = { neg: `-${v}`, abs: `Math.abs(${v})`, floor: `Math.floor(${v})`, ceil: `Math.ceil(${v})`, sqrt: `Math.sqrt(${v})`, log1p: `Math.log1p(${v})`, log: `Math.log(${v})`, exp: `Math.exp(${v})` }[node.op];
        return let_(guarded([[x, node.arg]], fn));
      }
      case 'clip': {
        if (node.arg.ty === 'null') return 'null';
        const x = emit(node.arg);
        return let_(guarded([[x, node.arg]], `R.min2(R.max2(${asNum(x, node.arg)}, ${num(node.lo)}), ${num(node.hi)})`));
      }
      case 'bucketize': {
        if (node.arg.ty === 'null') return 'null';
        const x = emit(node.arg);
        return let_(guarded([[x, node.arg]], `R.bucketize(${pool(Object.freeze([...node.edges]))}, ${asNum(x, node.arg)})`));
      }
      case 'hash': {
        if (node.arg.ty === 'null') return 'null';
        const x = emit(node.arg);
        return let_(guarded([[x, node.arg]], `R.hashBucket(${x}, ${num(node.seed)}, ${num(node.buckets)})`));
      }
      case 'time': {
        if (node.arg.ty === 'null') return 'null';
        const x = emit(node.arg);
        return let_(guarded([[x, node.arg]], `${zone(node.zone)}.${node.part === 'hour' ? 'hour' : 'dayOfWeek'}(${asNum(x, node.arg)})`));
      }
      case 'lookup': {
        const t = tables[node.table];
        const key = node.key.ty === 'null' ? 'null' : emit(node.key);
        const def = t.default === undefined || t.default === null ? 'null' : typeof t.default === 'number' ? num(t.default) : pool(t.default);
        const m = pool(new Map(Object.entries(t.values)));
        const r = tmp();
        lines.push(`let ${r} = ${m}.get(${key});`, `if (${r} === undefined) ${r} = ${def};`);
        return r;
      }
      case 'ordinal': {
        const x = node.arg.ty === 'null' ? 'null' : emit(node.arg);
        const m = pool(new Map(node.vocabulary.map((v, i) => [v, i])));
        const r = tmp();
        lines.push(`let ${r} = ${m}.get(${x});`, `if (${r} === undefined) ${r} = ${num(node.unknown)};`);
        return r;
      }
      case 'cmp': {
        if (node.a.ty === 'null' || node.b.ty === 'null') return node.op === 'ne' ? 'true' : 'false';
        const a = emit(node.a);
        const b = emit(node.b);
        const mixed = node.a.ty !== node.b.ty;
        const av = mixed ? asNum(a, node.a) : a;
        const bv = mixed ? asNum(b, node.b) : b;
        const js = { eq: '===', ne: '===', lt: '<', le: '<=', gt: '>', ge: '>=' }[node.op];
        const nulls = [[a, node.a], [b, node.b]].filter(([, nd]) => (nd as Node).nullable).map(([x]) => `${x} !== null && `).join('');
        const test = `(${nulls}${av} ${js} ${bv})`;
        return let_(node.op === 'ne' ? `!${test}` : test);
      }
      case 'logic': {
        const xs = node.args.map((a) => (a.ty === 'null' ? 'false' : `${emit(a)} === true`));
        return let_(`(${xs.join(node.op === 'and' ? ' && ' : ' || ')})`);
      }
      case 'not':
        return node.arg.ty === 'null' ? 'true' : let_(`${emit(node.arg)} !== true`);
      case 'in': {
        if (node.arg.ty === 'null') return 'false';
        return let_(`${pool(new Set(node.values))}.has(${emit(node.arg)})`);
      }
      case 'isNull':
        if (node.arg.ty === 'null') return 'true';
        return node.arg.nullable ? let_(`${emit(node.arg)} === null`) : (emit(node.arg), 'false');
      case 'isFinite': {
        if (node.arg.ty === 'null') return 'false';
        const x = emit(node.arg);
        return let_(node.arg.ty === 'boolean' ? `${x} !== null` : `(${x} !== null && Number.isFinite(${x}))`);
      }
      case 'if': {
        const c = node.cond.ty === 'null' ? 'false' : emit(node.cond);
        const th = branch(node.then, node.ty);
        const el = branch(node.else, node.ty);
        return let_(`${c} === true ? ${th} : ${el}`);
      }
      case 'coalesce': {
        const xs = node.args.map((a) => branch(a, node.ty));
        return let_(xs.slice(0, -1).reduceRight((acc, x) => `(${x} !== null ? ${x} : ${acc})`, xs[xs.length - 1]));
      }
    }
  };
  /** A branch value in the type of its if/coalesce: booleans become numbers where the result is a number. */
  const branch = (node: Node, ty: Node['ty']): string => {
    if (node.ty === 'null') return 'null';
    const x = emit(node);
    if (ty === 'number' && node.ty === 'boolean') return node.nullable ? `(${x} === null ? null : ${x} ? 1 : 0)` : `(${x} ? 1 : 0)`;
    return x;
  };

  let col = 0;
  checked.features.forEach((f, slot) => {
    if (f.kind === 'scalar') {
      const x = f.expr.ty === 'null' ? 'null' : emit(f.expr);
      let v = f.expr.ty === 'boolean' ? `(${x} === true ? 1 : 0)` : `${x} + 0`;
      if (f.expr.ty === 'null') v = num(f.fallback);
      else if (f.expr.nullable && f.expr.ty !== 'boolean') v = `(${x} === null ? ${num(f.fallback)} : ${x} + 0)`;
      else if (f.expr.nullable) v = `(${x} === null ? ${num(f.fallback)} : ${x} === true ? 1 : 0)`;
      lines.push(`const v${slot} = ${v};`, `out[o + ${col}] = v${slot};`);
      col += 1;
    } else {
      const x = f.of.ty === 'null' ? 'null' : emit(f.of);
      const m = pool(new Map(f.vocabulary.map((v, i) => [v, i])));
      lines.push(`let j${slot} = ${m}.get(${x});`, `if (j${slot} === undefined) j${slot} = ${f.bucket ? f.vocabulary.length : -1};`);
      for (let i = 0; i < f.columns.length; i++) lines.push(`out[o + ${col + i}] = 0;`);
      lines.push(`if (j${slot} >= 0) out[o + ${col} + j${slot}] = 1;`);
      col += f.columns.length;
    }
  });
  const source = `"use strict";\nreturn function extractInto(ev, out, o) {\n  ${lines.join('\n  ')}\n  return out;\n};`;
  const runtime = Object.freeze({ fmod, min2, max2, bucketize, hashBucket });
  // The source is generated from the validated tree only (see the module comment).
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const extractInto = new Function('R', 'P', source)(runtime, Object.freeze(pools)) as ExtractInto;
  return { extractInto, source };
}
