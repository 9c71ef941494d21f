"""Loads a definitions file and evaluates it column-wise over a batch of events (dicts, as decoded
from Avro or read from JSON). Mirrors src/features/declarative/{check,compile}.ts; every rule that
makes the two agree is in SEMANTICS.md. The TypeScript loader is the validator of record (paths
of bad nodes); this module raises DefinitionsError for what it cannot evaluate."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import numbers
import math
import os
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from .ops import ZoneClock, bucketize, fmod, max2, min2, murmur3_32, tzdb_version

HASH_HEX_CHARS = 16
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class DefinitionsError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# YAML 1.2 core scalars (what the TypeScript `yaml` package reads): PyYAML is YAML 1.1, where
# `NO`, `on`, `1_000` and `1:20` mean other things, and `1e3` is a string.
# ---------------------------------------------------------------------------------------------
class _Core12Loader(yaml.SafeLoader):
    pass


_Core12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_Core12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_Core12Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Core12Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _int12(loader, node):
    v = loader.construct_scalar(node)
    if v.startswith("0x"):
        return int(v[2:], 16)
    if v.startswith("0o"):
        return int(v[2:], 8)
    i = int(v, 10)
    # `-0` is an integer to PyYAML but the number -0 to the TypeScript reader: keep the sign.
    return -0.0 if i == 0 and v.startswith("-") else i


def _float12(loader, node):
    v = loader.construct_scalar(node).lower()
    if v.endswith(".inf"):
        return -math.inf if v.startswith("-") else math.inf
    if v == ".nan":
        return math.nan
    return float(v)


_Core12Loader.add_constructor("tag:yaml.org,2002:bool", lambda l, n: l.construct_scalar(n).lower() == "true")
_Core12Loader.add_constructor("tag:yaml.org,2002:int", _int12)
_Core12Loader.add_constructor("tag:yaml.org,2002:float", _float12)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Core12Loader)


# ---------------------------------------------------------------------------------------------
# Avro schema: the type a field path leads to (nullable unions looked through).
# ---------------------------------------------------------------------------------------------
def _named_types(schema: Any, names: Dict[str, Any]) -> None:
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            names[schema["name"]] = schema
            if schema.get("namespace"):
                names[f"{schema['namespace']}.{schema['name']}"] = schema
        for f in schema.get("fields", []) or []:
            _named_types(f["type"], names)
        if "items" in schema:
            _named_types(schema["items"], names)
        if "values" in schema:
            _named_types(schema["values"], names)
    elif isinstance(schema, list):
        for b in schema:
            _named_types(b, names)


def _kind(t: Any, names: Dict[str, Any]) -> Tuple[str, Any]:
    if isinstance(t, str) and t in names:
        t = names[t]
    name = t if isinstance(t, str) else (t.get("type") if isinstance(t, dict) else "union")
    if isinstance(name, dict):
        return _kind(name, names)
    if name in ("int", "long", "float", "double"):
        return "number", t
    if name == "boolean":
        return "boolean", t
    if name in ("string", "enum"):
        return "string", t
    return str(name), t


def field_kind(schema: Any, path: str) -> str:
    names: Dict[str, Any] = {}
    _named_types(schema, names)
    cur: Any = schema
    for seg in path.split("."):
        if isinstance(cur, list):
            cur = [b for b in cur if b != "null"][0]
        if isinstance(cur, str) and cur in names:
            cur = names[cur]
        fields = cur.get("fields") if isinstance(cur, dict) else None
        f = next((x for x in fields or [] if x["name"] == seg), None)
        if f is None:
            raise DefinitionsError(f"event has no field '{path}'")
        cur = f["type"]
    if isinstance(cur, list):
        cur = [b for b in cur if b != "null"][0]
    return _kind(cur, names)[0]


# ---------------------------------------------------------------------------------------------
# Columns: (kind, values, null mask). kind: number (float64), boolean (bool), string (object), null.
# ---------------------------------------------------------------------------------------------
class Col:
    __slots__ = ("kind", "v", "m")

    def __init__(self, kind: str, v: np.ndarray, m: np.ndarray) -> None:
        self.kind, self.v, self.m = kind, v, m


def _num(c: Col) -> np.ndarray:
    return c.v.astype(np.float64) if c.kind == "boolean" else c.v


_OPTIONS = {"field": ["default"], "clip": ["lower", "upper"], "bucketize": ["edges"], "hash": ["buckets", "seed"],
            "hour": ["timeZone"], "dayOfWeek": ["timeZone"], "lookup": ["key"], "ordinal": ["vocabulary", "unknown"],
            "in": ["values"], "if": ["then", "else"]}
_OPS = set(["str", "feature", "add", "sub", "mul", "div", "mod", "min", "max", "neg", "abs", "floor", "ceil", "sqrt",
            "log1p", "log", "exp", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "isNull", "isFinite",
            "coalesce"]) | set(_OPTIONS)
_MATH = {"log1p": math.log1p, "log": math.log, "exp": math.exp}


def _libm(fn, x: float) -> float:
    """math.* with IEEE results where Python raises (log of 0 / negatives, exp overflow)."""
    try:
        return fn(x)
    except (ValueError, OverflowError):
        if math.isnan(x):
            return math.nan
        if fn is math.exp:
            return math.inf
        if fn is math.log1p:
            return -math.inf if x == -1 else math.nan
        return -math.inf if x == 0 else math.nan


# ---------------------------------------------------------------------------------------------
# Plugin feature functions: a dotted operator key (`geo.haversineKm`) calls the Python twin a plugin
# declares (`python: './file.py:function'`). Same boundary as the TypeScript side (SEMANTICS.md):
# a null argument gives null without a call; doubles are passed as float, strings as str, booleans
# as bool; the result is a float (int accepted), or None for null.
# ---------------------------------------------------------------------------------------------
_FUNCTION_NAME = re.compile(r"^[a-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
_twin_modules: Dict[str, Any] = {}


def load_twin(ref: str) -> Callable[..., Any]:
    """The function `ref` names, `/path/file.py:function` (the TypeScript `pythonTwins()` gives absolute paths)."""
    file, sep, name = ref.rpartition(":")
    if not sep or not file.endswith(".py"):
        raise DefinitionsError(f"feature function twin {ref!r} is not 'file.py:function'")
    file = os.path.abspath(file)
    mod = _twin_modules.get(file)
    if mod is None:
        if not os.path.exists(file):
            raise DefinitionsError(f"feature function twin file not found: {file}")
        spec = importlib.util.spec_from_file_location(f"tributary_twin_{len(_twin_modules)}", file)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        _twin_modules[file] = mod
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise DefinitionsError(f"{file} has no function {name!r}")
    return fn


class FeatureSet:
    """Compiled view of one definitions file: `names`, `version`, `hash`, `compute(events)`.

    `functions` maps plugin feature function names to their Python twins: what the TypeScript
    `pythonTwins()` returns ({"twin": "/path/file.py:function", "args": ["double", ...]}: the
    declared argument types make a boolean passed to a double argument 1.0 / 0.0, as in
    TypeScript), or a bare callable / 'file.py:function' (arguments then keep their column's kind)."""

    def __init__(self, defs: Dict[str, Any], schema: Any, hash_: str, file: str = "",
                 functions: Optional[Dict[str, Union[str, Callable[..., Any]]]] = None) -> None:
        self.defs = defs
        self.schema = schema
        self.hash = hash_
        self.file = file
        self.set = defs["featureSet"]
        self.version = int(defs["version"])
        self.default_zone = defs.get("timeZone", "UTC")
        self.tables = defs.get("tables") or {}
        self.clocks: Dict[str, ZoneClock] = {}
        self.tzdb = tzdb_version()
        self.serving_only = set(defs.get("servingOnly") or [])
        # name -> (callable, declared argument types or None)
        self.functions: Dict[str, Tuple[Callable[..., Any], Optional[List[str]]]] = {}
        for name, fn in (functions or {}).items():
            if isinstance(fn, dict):
                self.functions[name] = (load_twin(fn["twin"]), list(fn["args"]) if fn.get("args") is not None else None)
            else:
                self.functions[name] = (load_twin(fn) if isinstance(fn, str) else fn, None)
        self.names: List[str] = []
        for f in defs["features"]:
            if "oneHot" in f:
                oh = f["oneHot"]
                bucket = oh.get("unknown") == "bucket"
                cols = oh.get("names") or [f"{f['name']}_{v}" for v in oh["vocabulary"]] + ([f"{f['name']}__unknown"] if bucket else [])
                self.names.extend(cols)
            else:
                self.names.append(f["name"])

    # -- evaluation -----------------------------------------------------------------------------
    def compute(self, events: Sequence[Dict[str, Any]]) -> np.ndarray:
        """Feature matrix (float64, one row per event, columns in `names` order)."""
        self._events = list(events)
        self._n = len(self._events)
        self._fields: Dict[Tuple[str, Any], Col] = {}
        self._scope: Dict[str, Tuple[str, Any]] = {}
        out = np.zeros((self._n, len(self.names)), dtype=np.float64)
        col = 0
        with np.errstate(all="ignore"):
            for f in self.defs["features"]:
                if "oneHot" in f:
                    oh = f["oneHot"]
                    vocab = {v: i for i, v in enumerate(oh["vocabulary"])}
                    bucket = oh.get("unknown") == "bucket"
                    width = len(vocab) + (1 if bucket else 0)
                    c = self._eval(oh["of"])
                    unknown = len(vocab) if bucket else -1
                    j = np.array([unknown if (c.kind == "null" or c.m[i]) else vocab.get(c.v[i], unknown) for i in range(self._n)], dtype=np.int64)
                    for k in range(width):
                        out[:, col + k] = (j == k).astype(np.float64)
                    names = oh.get("names") or [f"{f['name']}_{v}" for v in oh["vocabulary"]] + ([f"{f['name']}__unknown"] if bucket else [])
                    for k, nm in enumerate(names):
                        self._scope[nm] = ("onehot", (j, k))
                    col += width
                else:
                    c = self._eval(f["expr"])
                    fb = float(f.get("default", 0))
                    if c.kind == "null":
                        v = np.full(self._n, fb)
                    elif c.kind == "boolean":
                        v = np.where(c.m, fb, np.where(c.v, 1.0, 0.0))
                    else:
                        v = np.where(c.m, fb, c.v.astype(np.float64) + 0.0)
                    out[:, col] = v
                    self._scope[f["name"]] = ("scalar", out[:, col].copy())
                    col += 1
        return out

    def compute_one(self, event: Dict[str, Any]) -> List[float]:
        return self.compute([event])[0].tolist()

    def _full(self, kind: str, value: Any) -> Col:
        n = self._n
        if kind == "null":
            return Col("null", np.zeros(n), np.ones(n, dtype=bool))
        dtype = {"number": np.float64, "boolean": bool, "string": object}[kind]
        v = np.empty(n, dtype=dtype)
        v[:] = value
        return Col(kind, v, np.zeros(n, dtype=bool))

    def _field(self, path: str, default: Any) -> Col:
        key = (path, repr(default))
        if key in self._fields:
            return self._fields[key]
        kind = field_kind(self.schema, path)
        if kind not in ("number", "boolean", "string"):
            raise DefinitionsError(f"field '{path}' is {kind}")
        segs = path.split(".")
        vals: List[Any] = []
        for ev in self._events:
            cur: Any = ev
            for s in segs:
                cur = None if cur is None else cur.get(s)
            vals.append(default if cur is None and default is not None else cur)
        m = np.array([x is None for x in vals], dtype=bool)
        if kind == "number":
            v = np.array([0.0 if x is None else float(x) for x in vals], dtype=np.float64)
        elif kind == "boolean":
            v = np.array([bool(x) if x is not None else False for x in vals], dtype=bool)
        else:
            v = np.empty(self._n, dtype=object)
            v[:] = vals
        c = Col(kind, v, m)
        self._fields[key] = c
        return c

    def _clock(self, name: str) -> ZoneClock:
        if name not in self.clocks:
            self.clocks[name] = ZoneClock(name)
        return self.clocks[name]

    def _eval(self, e: Any) -> Col:
        n = self._n
        if e is None:
            return self._full("null", None)
        if isinstance(e, bool):
            return self._full("boolean", e)
        if isinstance(e, (int, float)):
            return self._full("number", float(e))
        if isinstance(e, str):
            return self._field(e, None)
        if not isinstance(e, dict):
            raise DefinitionsError(f"not an expression: {e!r}")
        ops = [k for k in e if k in _OPS]
        calls = [k for k in e if k not in _OPS and _FUNCTION_NAME.match(k)]
        if not ops and len(calls) == 1:
            return self._call(calls[0], e[calls[0]])
        if len(ops) != 1:
            raise DefinitionsError(f"expression needs exactly one operator: {list(e)}")
        op = ops[0]
        a = e[op]
        if op == "field":
            return self._field(a, e.get("default"))
        if op == "str":
            return self._full("string", a)
        if op == "feature":
            kind, val = self._scope[a]
            if kind == "scalar":
                return Col("number", val, np.zeros(n, dtype=bool))
            j, k = val
            return Col("number", (j == k).astype(np.float64), np.zeros(n, dtype=bool))
        if op in ("add", "sub", "mul", "div", "mod", "min", "max"):
            cs = [self._eval(x) for x in a]
            if any(c.kind == "null" for c in cs):
                return self._full("null", None)
            vs = [_num(c) for c in cs]
            m = np.logical_or.reduce([c.m for c in cs])
            acc = vs[0]
            for v in vs[1:]:
                acc = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
                       "div": lambda x, y: x / y, "mod": fmod, "min": min2, "max": max2}[op](acc, v)
            return Col("number", np.asarray(acc, dtype=np.float64), m)
        if op in ("neg", "abs", "floor", "ceil", "sqrt", "log1p", "log", "exp"):
            c = self._eval(a)
            if c.kind == "null":
                return c
            x = _num(c)
            if op in _MATH:
                fn = _MATH[op]
                v = np.array([_libm(fn, float(t)) for t in x], dtype=np.float64)
            else:
                v = {"neg": np.negative, "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "sqrt": np.sqrt}[op](x)
            return Col("number", v, c.m.copy())
        if op == "clip":
            c = self._eval(a)
            if c.kind == "null":
                return c
            lo = float(e.get("lower", -math.inf))
            hi = float(e.get("upper", math.inf))
            x = _num(c)
            return Col("number", min2(max2(x, np.full(n, lo)), np.full(n, hi)), c.m.copy())
        if op == "bucketize":
            c = self._eval(a)
            if c.kind == "null":
                return c
            v, nan = bucketize(e["edges"], _num(c))
            return Col("number", v, c.m | nan)
        if op == "hash":
            c = self._eval(a)
            if c.kind == "null":
                return c
            buckets, seed = int(e["buckets"]), int(e.get("seed", 0))
            v = np.array([0.0 if c.m[i] else float(murmur3_32(c.v[i].encode("utf-8"), seed) % buckets) for i in range(n)])
            return Col("number", v, c.m.copy())
        if op in ("hour", "dayOfWeek"):
            c = self._eval(a)
            if c.kind == "null":
                return c
            v, m = self._clock(e.get("timeZone", self.default_zone)).part(op, _num(c), c.m)
            return Col("number", v, m)
        if op == "lookup":
            t = self.tables[a]
            key = self._eval(e["key"])
            values = t["values"]
            default = t.get("default")
            res = [default if (key.kind == "null" or key.m[i]) else values.get(key.v[i], default) for i in range(n)]
            kinds = {type(x) for x in list(values.values()) + ([default] if default is not None else [])}
            kind = "string" if str in kinds else "number"
            m = np.array([x is None for x in res], dtype=bool)
            if kind == "number":
                v = np.array([0.0 if x is None else float(x) for x in res], dtype=np.float64)
            else:
                v = np.empty(n, dtype=object)
                v[:] = res
            return Col(kind, v, m)
        if op == "ordinal":
            c = self._eval(a)
            vocab = {s: i for i, s in enumerate(e["vocabulary"])}
            unk = float(e.get("unknown", -1))
            v = np.array([unk if (c.kind == "null" or c.m[i]) else float(vocab.get(c.v[i], unk)) for i in range(n)])
            return Col("number", v, np.zeros(n, dtype=bool))
        if op in ("eq", "ne", "lt", "le", "gt", "ge"):
            x, y = self._eval(a[0]), self._eval(a[1])
            if x.kind == "null" or y.kind == "null":
                return self._full("boolean", op == "ne")
            if x.kind != y.kind:
                xv, yv = _num(x), _num(y)
            else:
                xv, yv = x.v, y.v
            if op in ("eq", "ne"):
                r = np.array([xv[i] == yv[i] for i in range(n)], dtype=bool) if x.kind == "string" and y.kind == "string" else (xv == yv)
            else:
                r = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}[op](xv, yv)
            r = np.asarray(r, dtype=bool) & ~x.m & ~y.m
            return Col("boolean", ~r if op == "ne" else r, np.zeros(n, dtype=bool))
        if op in ("and", "or"):
            cs = [self._eval(x) for x in a]
            ts = [np.zeros(n, dtype=bool) if c.kind == "null" else (c.v.astype(bool) & ~c.m) for c in cs]
            r = np.logical_and.reduce(ts) if op == "and" else np.logical_or.reduce(ts)
            return Col("boolean", r, np.zeros(n, dtype=bool))
        if op == "not":
            c = self._eval(a)
            t = np.zeros(n, dtype=bool) if c.kind == "null" else (c.v.astype(bool) & ~c.m)
            return Col("boolean", ~t, np.zeros(n, dtype=bool))
        if op == "in":
            c = self._eval(a)
            if c.kind == "null":
                return self._full("boolean", False)
            vals = set(float(x) for x in e["values"]) if c.kind == "number" else set(e["values"])
            r = np.array([(not c.m[i]) and (c.v[i] in vals) for i in range(n)], dtype=bool)
            return Col("boolean", r, np.zeros(n, dtype=bool))
        if op == "isNull":
            c = self._eval(a)
            return Col("boolean", c.m.copy(), np.zeros(n, dtype=bool))
        if op == "isFinite":
            c = self._eval(a)
            if c.kind == "null":
                return self._full("boolean", False)
            r = ~c.m if c.kind == "boolean" else (np.isfinite(c.v) & ~c.m)
            return Col("boolean", r, np.zeros(n, dtype=bool))
        if op == "if":
            cond = self._eval(a)
            t = np.zeros(n, dtype=bool) if cond.kind == "null" else (cond.v.astype(bool) & ~cond.m)
            return self._merge([(t, self._eval(e["then"]))], self._eval(e["else"]))
        if op == "coalesce":
            cs = [self._eval(x) for x in a]
            pairs = [(~c.m, c) for c in cs[:-1]]
            return self._merge(pairs, cs[-1])
        raise DefinitionsError(f"unknown operator {op}")

    def _call(self, name: str, a: Any) -> Col:
        if name in self.serving_only:
            raise DefinitionsError(f"feature function '{name}' is servingOnly in {self.file or 'these definitions'}: "
                                   "it has no Python twin, so this feature set cannot be computed for training")
        entry = self.functions.get(name)
        if entry is None:
            raise DefinitionsError(f"no Python twin for feature function '{name}' (pass functions={{'{name}': 'file.py:function'}}, "
                                   "e.g. from pythonTwins() of the topology's plugins)")
        fn, types = entry
        n = self._n
        cs = [self._eval(x) for x in (a if isinstance(a, list) else [a])]
        if types is not None and len(types) != len(cs):
            raise DefinitionsError(f"feature function '{name}' takes {len(types)} arguments, got {len(cs)}")
        if any(c.kind == "null" for c in cs):
            return self._full("null", None)
        m = np.logical_or.reduce([c.m for c in cs]) if cs else np.zeros(n, dtype=bool)
        v = np.zeros(n, dtype=np.float64)
        m = m.copy()
        # Plain Python values, converted once per column: a double argument is a float (a boolean
        # column as 1.0 / 0.0, like the TypeScript side), booleans bool, strings str.
        cols = [(_num(c) if (types is None and c.kind == "number") or (types is not None and types[k] == "double") else c.v).tolist()
                for k, c in enumerate(cs)]
        for i in range(n):
            if m[i]:
                continue
            r = fn(*[col[i] for col in cols])
            if r is None:
                m[i] = True
            elif isinstance(r, numbers.Real) and not isinstance(r, bool):
                v[i] = float(r)
            else:
                raise DefinitionsError(f"feature function '{name}' returned {r!r}; it must return a number or None")
        return Col("number", v, m)

    def _merge(self, pairs: List[Tuple[np.ndarray, Col]], last: Col) -> Col:
        """First branch whose selector is true, else `last`; numbers and booleans mix to numbers."""
        n = self._n
        cols = [c for _, c in pairs] + [last]
        kinds = {c.kind for c in cols if c.kind != "null"}
        kind = "null" if not kinds else (kinds.pop() if len(kinds) == 1 else "number")
        if kind == "null":
            return self._full("null", None)

        def conv(c: Col) -> Col:
            if c.kind == "null":
                return Col(kind, self._full(kind, 0.0 if kind == "number" else (False if kind == "boolean" else "")).v, np.ones(n, dtype=bool))
            if kind == "number" and c.kind == "boolean":
                return Col("number", c.v.astype(np.float64), c.m)
            return c

        out = conv(last)
        v, m = out.v.copy(), out.m.copy()
        for sel, c in reversed(pairs):
            cc = conv(c)
            v = np.where(sel, cc.v, v)
            m = np.where(sel, cc.m, m)
        if kind == "string":
            v = v.astype(object)
        return Col(kind, v, m.astype(bool))


def load_schema(name_or_path: str) -> Any:
    """An Avro schema (parsed JSON) by name in <repo>/schemas/ or by path."""
    p = name_or_path if os.path.exists(name_or_path) else os.path.join(REPO_ROOT, "schemas", f"{name_or_path}.avsc")
    with open(p, "r", encoding="utf-8") as f:
        return json.load(f)


def load_feature_set(path: str, schema: Any = None,
                     functions: Optional[Dict[str, Union[str, Callable[..., Any]]]] = None) -> FeatureSet:
    """Reads a definitions file; `schema` is the input Avro schema (parsed JSON, a path or a name),
    default the file's `input:` from <repo>/schemas (the package's own; an example's input schema
    lives in its folder, e.g. examples/fraud/schemas/transaction.avsc: pass its path); `functions`:
    the Python twins of the plugin feature functions the definitions call (name -> callable or
    'file.py:function')."""
    with open(path, "rb") as f:
        raw = f.read()
    defs = parse_yaml(raw.decode("utf-8"))
    if schema is None:
        if not defs.get("input"):
            raise DefinitionsError(f"{path}: input (the Avro schema name) is required when no schema is given")
        schema = defs["input"]
    if isinstance(schema, str):
        schema = load_schema(schema)
    return FeatureSet(defs, schema, hashlib.sha256(raw).hexdigest()[:HASH_HEX_CHARS], path, functions)
