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
import { bucketize, fmod, fnResult, hashBucket, max2, MAX_TIME_MS, min2, MIN_TIME_MS, ZoneClock } from './runtime';
import type { CheckedDefinitions, Node } from './check';

export type FeatureBuffer = number[] | Float32Array | Float64Array;
export type ExtractInto = <T extends FeatureBuffer>(event: unknown, out: T, offset: number) => T;
export type ExtractVector = (event: unknown) => number[];

export interface CompiledFunction {
  extractInto: ExtractInto;
  /**
   * The vector of one event as a new array: the same computation as extractInto, generated as its
   * own function that returns an array literal of the columns (one allocation of exactly the
   * vector's size and element kind, no zero-fill, no second store per column), and that is not
   * shared with extractInto's buffer types (each function's stores stay monomorphic).
   */
  extract: ExtractVector;
  /** The generated source of extractInto (for tests and `--explain`-style debugging). */
  source: string;
  /** The generated source of extract. */
  extractSource: string;
  /** Builds a function from another source over the same pools (benchmark experiments only). */
  make?: (source: string) => ExtractInto;
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
  const fieldKey = (f: Extract<Node, { k: 'field' }>) => `${f.segments.join('.')}|${f.fallback === undefined ? '' : typeof f.fallback + String(f.fallback)}`;
  const fusedTables = fuseLookups(checked, tables);

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
        const key = fieldKey(node);
        const memo = fieldMemo.get(key);
        if (memo) return memo;
        for (const s of node.segments) if (!SEGMENT.test(s)) throw new Error('internal: bad field segment');
        const t = tmp();
        const access = node.segments.map((s) => `[${JSON.stringify(s)}]`);
        if (!node.nullable && node.fallback === undefined) {
          // No nullable union on the path: the decoded event has every segment (SEMANTICS.md).
          lines.push(`const ${t} = ev${access.join('')};`);
          fieldMemo.set(key, t);
          return t;
        }
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
        if (node.zone === 'UTC') return utcTime(node, x, 'null');
        return let_(guarded([[x, node.arg]], `${zone(node.zone)}.${node.part === 'hour' ? 'hour' : 'dayOfWeek'}(${asNum(x, node.arg)})`));
      }
      case 'lookup': {
        const t = tables[node.table];
        const def = t.default === undefined || t.default === null ? 'null' : typeof t.default === 'number' ? num(t.default) : pool(t.default);
        const r = tmp();
        const group = node.key.k === 'field' ? fusedTables.get(fieldKey(node.key)) : undefined;
        if (group && node.key.k === 'field') {
          // Several tables looked up by the same field: one hash lookup of a row of their values.
          const memoKey = `lookup|${fieldKey(node.key)}`;
          let row = fieldMemo.get(memoKey);
          if (!row) {
            const key = emit(node.key);
            row = tmp();
            lines.push(`const ${row} = ${pool(group.rows)}.get(${key});`);
            fieldMemo.set(memoKey, row);
          }
          const i = group.tables.indexOf(node.table);
          lines.push(`let ${r} = ${row} === undefined ? undefined : ${row}[${i}];`, `if (${r} === undefined) ${r} = ${def};`);
          return r;
        }
        const key = node.key.ty === 'null' ? 'null' : emit(node.key);
        const m = pool(new Map(Object.entries(t.values)));
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
        // Only the taken branch is evaluated (its field reads are not shared with code after it).
        const c = node.cond.ty === 'null' ? 'false' : emit(node.cond);
        const t = tmp();
        lines.push(`let ${t};`, `if (${truthy(c, node.cond)}) {`);
        for (const [part, open] of [[node.then, '} else {'], [node.else, '}']] as const) {
          const memo = new Map(fieldMemo);
          lines.push(`${t} = ${branch(part, node.ty)};`, open);
          fieldMemo.clear();
          for (const [k, v] of memo) fieldMemo.set(k, v);
        }
        return t;
      }
      case 'call': {
        // A null argument makes the result null without a call (SEMANTICS.md, plugin feature functions).
        if (node.args.some((a) => a.ty === 'null')) return 'null';
        const xs = node.args.map((a) => [emit(a), a] as [string, Node]);
        const vals = xs.map(([x, a], i) => (node.argTypes[i] === 'double' ? asNum(x, a) : x));
        const fn = checked.functions.get(node.fn);
        if (!fn) throw new Error(`internal: feature function '${node.fn}' not in the checked catalog`);
        const f = pool(fn.definition.compute);
        const name = pool(node.fn);
        const r = tmp();
        lines.push(`let ${r} = ${guarded(xs, `${f}(${vals.join(', ')})`)};`);
        // Only a number or null crosses the boundary; undefined counts as null.
        lines.push(`if (typeof ${r} !== 'number') ${r} = R.fnResult(${name}, ${r});`);
        return r;
      }
      case 'coalesce': {
        const xs = node.args.map((a) => branch(a, node.ty));
        return let_(xs.slice(0, -1).reduceRight((acc, x) => `(${x} !== null ? ${x} : ${acc})`, xs[xs.length - 1]));
      }
    }
  };
  /**
   * A UTC time part: ZoneClock's arithmetic inlined (same formulas, SEMANTICS.md), `outside` when
   * the instant is out of range (null, or directly the feature's default at the root of a feature).
   */
  const utcTime = (node: Extract<Node, { k: 'time' }>, x: string, outside: string): string => {
    const v = asNum(x, node.arg);
    // An Avro int/long is already whole; floor(t / 3600000) is exact in range and small enough for integer arithmetic.
    const ti = node.arg.k === 'field' && node.arg.integral ? v : `Math.floor(${v})`;
    const r = tmp();
    // In range, floor(t / 3600000) and floor(t / 86400000) lie within ±7.1e7: int32, so `| 0` is exact
    // and the remainder is an integer one, not a float64 fmod. Out of range (and NaN) the value is
    // discarded by the range test below.
    lines.push(`let ${r} = ${node.part === 'hour' ? `(Math.floor(${ti} / 3600000) | 0) % 24` : `((Math.floor(${ti} / 86400000) | 0) + 3) % 7`};`, `if (${r} < 0) ${r} += ${node.part === 'hour' ? 24 : 7};`);
    return let_(guarded([[x, node.arg]], `(${v} >= ${num(MIN_TIME_MS)} && ${v} <= ${num(MAX_TIME_MS)}) ? ${r} + 0 : ${outside}`));
  };
  /** A condition: a non-nullable boolean is used as is, otherwise only `true` counts (null is false). */
  const truthy = (x: string, node: Node) => (node.ty === 'boolean' && !node.nullable ? x : `${x} === true`);
  /** A branch value in the type of its if/coalesce: booleans become numbers where the result is a number. */
  const branch = (node: Node, ty: Node['ty']): string => {
    if (node.ty === 'null') return 'null';
    const x = emit(node);
    if (ty === 'number' && node.ty === 'boolean') return node.nullable ? `(${x} === null ? null : ${x} ? 1 : 0)` : `(${x} ? 1 : 0)`;
    return x;
  };

  /** Column writes of extractInto, by position in `lines` (extract returns the columns as one array literal instead). */
  const writes = new Map<number, string[]>();
  const write = (stmt: string) => {
    const at = lines.length;
    if (!writes.has(at)) writes.set(at, []);
    writes.get(at)!.push(stmt);
  };
  /** Each column's value as an expression over the locals, for extract's literal. */
  const columns: string[] = [];
  const oneHots: Array<{ slot: number; col: number }> = [];
  let col = 0;
  checked.features.forEach((f, slot) => {
    if (f.kind === 'scalar') {
      const e = f.expr;
      if (e.k === 'time' && e.zone === 'UTC' && !e.arg.nullable && e.arg.ty !== 'null') {
        // A UTC time part at the root: out of range writes the default directly (no null in between).
        lines.push(`const v${slot} = ${utcTime(e, emit(e.arg), num(f.fallback))};`);
        write(`out[o + ${col}] = v${slot};`);
        columns.push(`v${slot}`);
        col += 1;
        return;
      }
      const x = f.expr.ty === 'null' ? 'null' : emit(f.expr);
      // `+ 0` turns -0 into +0; skipped where the value cannot be -0 (it costs a conversion per event).
      const z = canBeNegZero(f.expr, tables) ? ' + 0' : '';
      let v = f.expr.ty === 'boolean' ? `(${truthy(x, f.expr)} ? 1 : 0)` : `${x}${z}`;
      if (f.expr.ty === 'null') v = num(f.fallback);
      else if (f.expr.nullable && f.expr.ty !== 'boolean') v = `(${x} === null ? ${num(f.fallback)} : ${x}${z})`;
      else if (f.expr.nullable) v = `(${x} === null ? ${num(f.fallback)} : ${x} === true ? 1 : 0)`;
      lines.push(`const v${slot} = ${v};`);
      write(`out[o + ${col}] = v${slot};`);
      columns.push(`v${slot}`);
      col += 1;
    } else {
      const x = f.of.ty === 'null' ? 'null' : emit(f.of);
      const m = pool(new Map(f.vocabulary.map((v, i) => [v, i])));
      lines.push(`let j${slot} = ${m}.get(${x});`, `if (j${slot} === undefined) j${slot} = ${f.bucket ? f.vocabulary.length : -1};`);
      const zeros: string[] = [];
      for (let i = 0; i < f.columns.length; i++) zeros.push(`out[o + ${col + i}] = 0;`);
      write([...zeros, `if (j${slot} >= 0) out[o + ${col} + j${slot}] = 1;`].join('\n  '));
      // extract: zeros in the literal, then the one set column (below).
      for (let i = 0; i < f.columns.length; i++) columns.push('0');
      oneHots.push({ slot, col });
      col += f.columns.length;
    }
  });
  // Pools become constants of the closure (P0, P1, ...): the hot function reads no array.
  const withWrites = lines.flatMap((l, i) => [...(writes.get(i) ?? []), l]).concat(writes.get(lines.length) ?? []);
  const intoBody = withWrites.join('\n  ').replace(/P\[(\d+)\]/g, 'P$1');
  const newBody = [...lines, `const out = [${columns.join(', ')}];`, ...oneHots.map(({ slot, col: c }) => `if (j${slot} >= 0) out[${c} + j${slot}] = 1;`)].join('\n  ').replace(/P\[(\d+)\]/g, 'P$1');
  const consts = pools.map((_, i) => `const P${i} = P[${i}];`).join('\n');
  const source = `"use strict";\n${consts}\nreturn function extractInto(ev, out, o) {\n  ${intoBody}\n  return out;\n};`;
  const extractSource = `"use strict";\n${consts}\nreturn function extract(ev) {\n  ${newBody}\n  return out;\n};`;
  const runtime = Object.freeze({ fmod, min2, max2, bucketize, hashBucket, fnResult });
  // The sources are generated from the validated tree only (see the module comment).
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = <F>(src: string) => new Function('R', 'P', src)(runtime, Object.freeze(pools)) as F;
  return { extractInto: make<ExtractInto>(source), extract: make<ExtractVector>(extractSource), source, extractSource, make: (src: string) => make<ExtractInto>(src) };
}

/** Every node of a tree (pre-order). */
function* nodes(n: Node): Generator<Node> {
  yield n;
  for (const v of Object.values(n)) {
    if (v && typeof v === 'object' && 'k' in v) yield* nodes(v as Node);
    else if (Array.isArray(v)) for (const x of v) if (x && typeof x === 'object' && 'k' in x) yield* nodes(x as Node);
  }
}

/**
 * Tables looked up by the same field path (e.g. a country's currency and its risk flag): one Map
 * from key to the row of their values, so an event hashes the key once. Per field path with two or
 * more distinct tables.
 */
function fuseLookups(checked: CheckedDefinitions, tables: Record<string, { values: Record<string, number | string> }>): Map<string, { tables: string[]; rows: Map<string, Array<number | string | undefined>> }> {
  const byField = new Map<string, Set<string>>();
  const roots = checked.features.map((f) => (f.kind === 'scalar' ? f.expr : f.of));
  for (const root of roots) {
    for (const n of nodes(root)) {
      if (n.k !== 'lookup' || n.key.k !== 'field') continue;
      const k = `${n.key.segments.join('.')}|${n.key.fallback === undefined ? '' : typeof n.key.fallback + String(n.key.fallback)}`;
      if (!byField.has(k)) byField.set(k, new Set());
      byField.get(k)!.add(n.table);
    }
  }
  const out = new Map<string, { tables: string[]; rows: Map<string, Array<number | string | undefined>> }>();
  for (const [k, set] of byField) {
    if (set.size < 2) continue;
    const names = [...set];
    const rows = new Map<string, Array<number | string | undefined>>();
    names.forEach((t, i) => {
      for (const [key, v] of Object.entries(tables[t].values)) {
        if (!rows.has(key)) rows.set(key, new Array(names.length).fill(undefined));
        rows.get(key)![i] = v;
      }
    });
    out.set(k, { tables: names, rows });
  }
  return out;
}

const isNegZero = (v: unknown) => Object.is(v, -0);

/** Whether a number-valued node may evaluate to -0 (conservative: true when unsure). */
export function canBeNegZero(n: Node, tables: Record<string, { values: Record<string, number | string>; default?: number | string | null }>): boolean {
  const z = (x: Node) => canBeNegZero(x, tables);
  switch (n.k) {
    case 'const': return isNegZero(n.value);
    case 'field': return n.ty === 'number' || isNegZero(n.fallback);
    case 'feature': return false; // columns are written without -0
    case 'arith':
      if (n.op === 'add') return n.args.every(z); // x + y is -0 only when both are -0
      if (n.op === 'sub') return z(n.args[0]);
      if (n.op === 'min' || n.op === 'max') return n.args.some(z);
      return true;
    case 'unary':
      if (n.op === 'abs' || n.op === 'log' || n.op === 'exp') return false;
      if (n.op === 'neg' || n.op === 'ceil') return true;
      return z(n.arg); // floor, sqrt, log1p keep the sign of a zero
    case 'clip': return z(n.arg) || isNegZero(n.lo) || isNegZero(n.hi);
    case 'ordinal': return isNegZero(n.unknown);
    case 'lookup': {
      const t = tables[n.table];
      return Object.values(t.values).some(isNegZero) || isNegZero(t.default);
    }
    case 'if': return z(n.then) || z(n.else);
    case 'coalesce': return n.args.some(z);
    case 'call': return true; // a plugin function may return -0
    default: return false; // buckets, hashes, time parts, booleans, comparisons
  }
}
