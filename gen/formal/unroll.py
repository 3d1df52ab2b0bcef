"""Structurally hashed BMC and k-induction of a harness (Yosys ``write_btor`` model + yices).

Why this engine exists: the equivalence miter of a pipelined core against its
``stages=0`` form compares two copies of the same datapath. SymbiYosys'
``smtbmc`` poses each time step incrementally, with the registers of every step
as separate unknowns tied by equalities, so the solver has to rediscover that
the two multiplier/adder/normalizer trees compute the same function -- hard for
a SAT solver (the dot-product lane k=2 with an FP16 accumulator does not close
in 15 minutes). Here the transition system is unrolled by *substitution*: the
value of every register in step t+1 is the term of its next-state function in
step t, and every term is hash-consed (an operator applied to the same
argument terms is the same term) with light rewriting (constant folding,
``x == x``, ``ite(c, x, x)``, slices of concatenations and extensions). When
the pipeline is the combinational datapath with registers inserted, the
pipelined output after ``latency`` steps and the reference output on the
shadowed input become the *same term* and the miter folds to false; whatever
does not fold is decided by yices on one non-incremental QF_BV query.

Semantics (the same as SymbiYosys): the model is the flattened harness after
``prep -flatten; async2sync; dffunmap; setundef -undriven -anyseq``
(immediate ``assert`` -> BTOR ``bad``, ``assume`` -> ``constraint``); inputs
and undriven bits are free in every step; registers start from their initial
values (base case) or anywhere (induction step).

- :func:`bmc` (base case, ``depth`` = k): no assertion fails in steps
  ``0 .. k-1`` from the initial state while all assumptions hold.
- :func:`induction` (``depth`` = k): from *any* state, if the assertions hold
  in k consecutive steps (assumptions holding), they hold in the next one.
  Together with ``bmc(k)`` this proves the assertions in every reachable step.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

__all__ = ["BtorModel", "parse_btor", "Unroller", "bmc", "induction", "CheckResult", "UnrollError",
           "cross_check"]


class UnrollError(RuntimeError):
    """The model uses something this engine does not handle (arrays, rotations...)."""


@dataclass
class BtorModel:
    """A parsed BTOR2 model: node table plus the states, inputs, properties."""

    nodes: dict          # id -> (op, width, args, params, name)
    order: list          # node ids in file order (topological for expressions)
    states: list         # state ids
    inputs: list         # input ids
    init: dict           # state id -> node id of its initial value
    next: dict           # state id -> node id of its next value
    bads: list           # (node id, description)
    constraints: list    # node ids


def parse_btor(text: str) -> BtorModel:
    """Parse Yosys' ``write_btor`` output (bit-vector sorts only)."""
    sorts, nodes, order = {}, {}, []
    states, inputs, bads, constraints = [], [], [], []
    init, nxt = {}, {}
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        tok = line.split()
        nid, op = int(tok[0]), tok[1]
        if op == "sort":
            if tok[2] != "bitvec":
                raise UnrollError(f"BTOR sort {tok[2]} (memories) is not supported by the unrolling engine")
            sorts[nid] = int(tok[3])
            continue
        if op in ("init", "next"):
            (init if op == "init" else nxt)[int(tok[3])] = int(tok[4])
            continue
        if op == "bad":
            bads.append((int(tok[2]), " ".join(tok[3:]) or f"bad {nid}"))
            continue
        if op == "constraint":
            constraints.append(int(tok[2]))
            continue
        if op in ("fair", "justice", "output"):
            continue
        width = sorts[int(tok[2])]
        rest = tok[3:]
        name = None
        if op in ("state", "input"):
            name = rest[0] if rest else None
            args, params = [], ()
            (states if op == "state" else inputs).append(nid)
        elif op in ("const", "constd", "consth", "zero", "one", "ones"):
            if op == "const":
                value = int(rest[0], 2)
            elif op == "constd":
                value = int(rest[0]) % (1 << width)
            elif op == "consth":
                value = int(rest[0], 16)
            else:
                value = {"zero": 0, "one": 1, "ones": (1 << width) - 1}[op]
            op, args, params = "const", [], (value,)
        elif op == "slice":
            args, params = [int(rest[0])], (int(rest[1]), int(rest[2]))
        elif op in ("uext", "sext"):
            args, params = [int(rest[0])], (int(rest[1]),)
        else:
            args, params = [int(x) for x in rest], ()
        nodes[nid] = (op, width, args, params, name)
        order.append(nid)
    return BtorModel(nodes=nodes, order=order, states=states, inputs=inputs, init=init, next=nxt,
                     bads=bads, constraints=constraints)


_BINARY = {"and": "bvand", "or": "bvor", "xor": "bvxor", "nand": "bvnand", "nor": "bvnor", "xnor": "bvxnor",
           "add": "bvadd", "sub": "bvsub", "mul": "bvmul", "udiv": "bvudiv", "urem": "bvurem",
           "sdiv": "bvsdiv", "srem": "bvsrem", "smod": "bvsmod", "sll": "bvshl", "srl": "bvlshr",
           "sra": "bvashr"}
_COMPARE = {"eq": "=", "ult": "bvult", "ulte": "bvule", "ugt": "bvugt", "ugte": "bvuge",
            "slt": "bvslt", "slte": "bvsle", "sgt": "bvsgt", "sgte": "bvsge"}

# SMT-LIB form of each BTOR operator: {0}.. the argument terms, then the operator's
# parameters; {w} the result width, {wa} the first argument's width, {ones} its all-ones value.
_SMT_FORMS = {
    "const": "(_ bv{0} {w})",
    "not": "(bvnot {0})", "neg": "(bvneg {0})",
    "inc": "(bvadd {0} (_ bv1 {w}))", "dec": "(bvsub {0} (_ bv1 {w}))",
    "implies": "(bvor (bvnot {0}) {1})", "iff": "(bvxnor {0} {1})",
    "neq": "(ite (= {0} {1}) #b0 #b1)",
    "redor": "(ite (= {0} (_ bv0 {wa})) #b0 #b1)", "redand": "(ite (= {0} (_ bv{ones} {wa})) #b1 #b0)",
    "concat": "(concat {0} {1})", "slice": "((_ extract {1} {2}) {0})",
    "uext": "((_ zero_extend {1}) {0})", "sext": "((_ sign_extend {1}) {0})",
    "ite": "(ite (= {0} #b1) {1} {2})",
    **{op: f"({fn} {{0}} {{1}})" for op, fn in _BINARY.items()},
    **{op: f"(ite ({fn} {{0}} {{1}}) #b1 #b0)" for op, fn in _COMPARE.items()},
}


def _signed(v, w):
    return v - (1 << w) if v >> (w - 1) & 1 else v


class Unroller:
    """Hash-consed bit-vector terms; ``term(op, width, args, params)`` returns a term id."""

    def __init__(self):
        self._table = {}
        self.info = []           # tid -> (op, width, args, params)
        self._vars = 0

    # -- construction ----------------------------------------------------------------------
    def _intern(self, op, width, args=(), params=()):
        key = (op, width, tuple(args), tuple(params))
        tid = self._table.get(key)
        if tid is None:
            tid = len(self.info)
            self.info.append(key)
            self._table[key] = tid
        return tid

    def const(self, width, value):
        return self._intern("const", width, (), (value & ((1 << width) - 1),))

    def var(self, width, name):
        self._vars += 1
        return self._intern("var", width, (), (f"v{self._vars}_{name}",))

    def _cval(self, t):
        op, _, _, params = self.info[t]
        return params[0] if op == "const" else None

    def width(self, t):
        return self.info[t][1]

    def term(self, op, width, args, params=()):
        """Build ``op(args)`` with rewriting; every argument is a term id."""
        c = [self._cval(a) for a in args]
        allc = all(v is not None for v in c)
        mask = (1 << width) - 1
        if op == "not":
            (a,) = args
            if allc:
                return self.const(width, ~c[0])
            if self.info[a][0] == "not":
                return self.info[a][2][0]
        elif op in ("and", "or", "xor"):
            a, b = args
            if allc:
                v = {"and": c[0] & c[1], "or": c[0] | c[1], "xor": c[0] ^ c[1]}[op]
                return self.const(width, v)
            if a > b:
                a, b = b, a
                c = c[::-1]
            if op == "and":
                if 0 in c:
                    return self.const(width, 0)
                if c[0] == mask:
                    return b
                if c[1] == mask:
                    return a
                if a == b:
                    return a
            elif op == "or":
                if mask in c:
                    return self.const(width, mask)
                if c[0] == 0:
                    return b
                if c[1] == 0:
                    return a
                if a == b:
                    return a
            else:
                if a == b:
                    return self.const(width, 0)
                if c[0] == 0:
                    return b
                if c[1] == 0:
                    return a
            args = [a, b]
        elif op in ("eq", "neq"):
            a, b = args
            if a == b:
                return self.const(1, 1 if op == "eq" else 0)
            if allc:
                return self.const(1, int((c[0] == c[1]) == (op == "eq")))
            if a > b:
                args = [b, a]
        elif op == "ite":
            s, a, b = args
            if c[0] is not None:
                return a if c[0] else b
            if a == b:
                return a
            if width == 1 and c[1] == 1 and c[2] == 0:
                return s
        elif op == "concat":
            return self._concat(self._pieces(args[0]) + self._pieces(args[1]))
        elif op == "slice":
            (a,) = args
            hi, lo = params
            wa = self.width(a)
            if lo == 0 and hi == wa - 1:
                return a
            if c[0] is not None:
                return self.const(width, c[0] >> lo)
            aop, _, aargs, aparams = self.info[a]
            if aop == "concat":
                high, low = aargs
                wl = self.width(low)
                if hi < wl:
                    return self.term("slice", width, [low], (hi, lo))
                if lo >= wl:
                    return self.term("slice", width, [high], (hi - wl, lo - wl))
                # spanning both halves: the concatenation of the two slices (canonical form)
                return self._concat(self._pieces(self.term("slice", hi - wl + 1, [high], (hi - wl, 0)))
                                    + self._pieces(self.term("slice", wl - lo, [low], (wl - 1, lo))))
            elif aop == "slice":
                return self.term("slice", width, [aargs[0]], (hi + aparams[1], lo + aparams[1]))
            elif aop in ("uext", "sext"):
                inner = aargs[0]
                wi = self.width(inner)
                if hi < wi:
                    return self.term("slice", width, [inner], (hi, lo))
                if aop == "uext" and lo >= wi:
                    return self.const(width, 0)
        elif op in ("uext", "sext"):
            (a,) = args
            if params[0] == 0:
                return a
            if c[0] is not None:
                wa = self.width(a)
                return self.const(width, c[0] if op == "uext" else _signed(c[0], wa))
            if op == "uext":       # canonical: zero bits concatenated
                return self._concat([self.const(params[0], 0)] + self._pieces(a))
        elif op in ("add", "sub", "mul") and allc:
            v = {"add": c[0] + c[1], "sub": c[0] - c[1], "mul": c[0] * c[1]}[op]
            return self.const(width, v)
        elif op == "neg" and allc:
            return self.const(width, -c[0])
        elif op == "redor":
            if allc:
                return self.const(1, int(c[0] != 0))
            if self.width(args[0]) == 1:
                return args[0]
        elif op == "redand":
            if allc:
                return self.const(1, int(c[0] == (1 << self.width(args[0])) - 1))
            if self.width(args[0]) == 1:
                return args[0]
        return self._intern(op, width, args, params)

    def _pieces(self, t):
        """The leaves of a concatenation tree, most significant first."""
        if self.info[t][0] == "concat":
            return self._pieces(self.info[t][2][0]) + self._pieces(self.info[t][2][1])
        return [t]

    def _concat(self, pieces):
        """Canonical concatenation: adjacent constants merged, adjacent slices of one term
        merged (a full slice is the term), then nested to the right."""
        merged = []
        for t in pieces:
            if merged:
                prev = merged[-1]
                pi, ti = self.info[prev], self.info[t]
                if pi[0] == "const" and ti[0] == "const":
                    merged[-1] = self.const(pi[1] + ti[1], (pi[3][0] << ti[1]) | ti[3][0])
                    continue
                if pi[0] == "slice" and ti[0] == "slice" and pi[2] == ti[2] and pi[3][1] == ti[3][0] + 1:
                    merged[-1] = self.term("slice", pi[1] + ti[1], [pi[2][0]], (pi[3][0], ti[3][1]))
                    continue
            merged.append(t)
        out = merged[-1]
        for t in reversed(merged[:-1]):
            out = self._intern("concat", self.width(t) + self.width(out), (t, out))
        return out

    # -- SMT-LIB output --------------------------------------------------------------------
    def _smt(self, t):
        op, w, args, params = self.info[t]
        if op == "var":
            raise AssertionError("variables are declared, not defined")
        if op == "redxor":
            wa = self.width(args[0])
            bits = " ".join(f"((_ extract {k} {k}) t{args[0]})" for k in range(wa))
            return f"(bvxor {bits})" if wa > 1 else f"t{args[0]}"
        form = _SMT_FORMS.get(op)
        if form is None:
            raise UnrollError(f"BTOR operator {op!r} is not supported by the unrolling engine")
        wa = self.width(args[0]) if args else 0
        return form.format(*(f"t{x}" for x in args), *params, w=w, wa=wa, ones=(1 << wa) - 1)

    def smt2(self, roots, asserts, get_values=(), get_vars=False):
        """A QF_BV script: definitions of every term reachable from ``roots``, ``asserts``
        (term ids that must equal 1), ``(check-sat)`` and ``(get-value)`` of ``get_values``
        (and of every free variable with ``get_vars``)."""
        need, stack = set(), list(roots)
        while stack:
            t = stack.pop()
            if t in need:
                continue
            need.add(t)
            stack.extend(self.info[t][2])
        out = ["(set-option :produce-models true)", "(set-logic QF_BV)"]
        for t in sorted(need):
            op, w, _, params = self.info[t]
            if op == "var":
                out.append(f"(declare-fun t{t} () (_ BitVec {w}))")
            else:
                out.append(f"(define-fun t{t} () (_ BitVec {w}) {self._smt(t)})")
        for t in asserts:
            out.append(f"(assert (= t{t} #b1))")
        out.append("(check-sat)")
        if get_vars:
            get_values = list(get_values) + [t for t in sorted(need) if self.info[t][0] == "var"]
        if get_values:
            out.append("(get-value (" + " ".join(f"t{t}" for t in get_values) + "))")
        return "\n".join(out) + "\n"


class _Frames:
    """The model unrolled step by step on one :class:`Unroller`."""

    def __init__(self, model: BtorModel, u: Unroller, *, from_init: bool):
        self.m, self.u = model, u
        self.frames = []
        self._state_vals = {}
        for s in model.states:
            w, name = model.nodes[s][1], model.nodes[s][4] or f"s{s}"
            if from_init and s in model.init:
                self._state_vals[s] = ("init", model.init[s])
            else:
                self._state_vals[s] = ("term", u.var(w, f"{name}@0"))

    def _node(self, env, nid):
        if nid < 0:
            t = self._node(env, -nid)
            return self.u.term("not", self.u.width(t), [t])
        return env[nid]

    def add_frame(self):
        m, u = self.m, self.u
        step = len(self.frames)
        env = {}
        # states first: their value in this step
        pending_init = []
        for s in m.states:
            kind, v = self._state_vals[s]
            if kind == "term":
                env[s] = v
            else:
                pending_init.append((s, v))
        for nid in m.order:
            op, w, args, params, name = m.nodes[nid]
            if op == "state":
                if nid in env:
                    continue
                # an initial value given by an expression: evaluate it in this (first) frame
                init_node = dict(pending_init)[nid]
                env[nid] = self._eval_init(env, init_node)
                continue
            if op == "input":
                env[nid] = u.var(w, f"{name or 'in' + str(nid)}@{step}")
                continue
            if op == "const":
                env[nid] = u.const(w, params[0])
                continue
            targs = [self._node(env, a) for a in args]
            env[nid] = u.term(op, w, targs, params)
        self.frames.append(env)
        # next step's states
        for s in m.states:
            w = m.nodes[s][1]
            if s in m.next:
                self._state_vals[s] = ("term", self._node(env, m.next[s]))
            else:
                name = m.nodes[s][4] or f"s{s}"
                self._state_vals[s] = ("term", u.var(w, f"{name}@{step + 1}"))
        return env

    def _eval_init(self, env, nid):
        op, w, args, params, _ = self.m.nodes[nid]
        if op == "const":
            return self.u.const(w, params[0])
        if nid in env:
            return env[nid]
        raise UnrollError(f"initial value node {nid} ({op}) is not a constant")

    def bads(self, step):
        env = self.frames[step]
        return [(self._node(env, b), desc) for b, desc in self.m.bads]

    def constraints(self, step):
        env = self.frames[step]
        return [self._node(env, c) for c in self.m.constraints]


@dataclass
class CheckResult:
    """``status``: ``pass`` (unsat: no counterexample / induction closed), ``fail`` (sat),
    ``unknown`` (solver gave up); ``failing``: ``(step, property)`` of a base-case failure;
    ``folded``: the query was decided by hash-consing alone (no solver call)."""

    status: str
    depth: int
    seconds: float
    folded: bool = False
    failing: list | None = None
    terms: int = 0


def _solve(script: str, yices: str, timeout: float | None):
    try:
        proc = subprocess.run([yices], input=script, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    out = proc.stdout.strip()
    first = out.split("\n", 1)[0].strip() if out else ""
    if first in ("sat", "unsat", "unknown"):
        return first, out
    raise UnrollError(f"yices failed: {proc.stderr.strip() or out[:500]}")


def _or_terms(u, ts):
    out = u.const(1, 0)
    for t in ts:
        out = u.term("or", 1, [out, t])
    return out


def _and_terms(u, ts):
    out = u.const(1, 1)
    for t in ts:
        out = u.term("and", 1, [out, t])
    return out


def _values(out: str) -> dict:
    vals = {}
    for tid, lit in re.findall(r"\(t(\d+) (#b[01]+|#x[0-9a-fA-F]+)\)", out):
        vals[int(tid)] = int(lit[2:], 2) if lit[1] == "b" else int(lit[2:], 16)
    return vals


def bmc(model: BtorModel, depth: int, *, yices: str, timeout: float | None = None,
        script_path=None, trace_path=None) -> CheckResult:
    """Base case: no ``bad`` in steps ``0 .. depth-1`` from the initial state.

    On a failure ``trace_path`` (if given) receives the counterexample: the value of
    every free variable (inputs per step, ``name@step``; free initial registers ``@0``)."""
    t0 = time.perf_counter()
    u = Unroller()
    fr = _Frames(model, u, from_init=True)
    cons, bad_terms, hits = [], [], []
    for step in range(depth):
        fr.add_frame()
        cons += fr.constraints(step)
        assume = _and_terms(u, cons)          # the assumptions up to and including this step
        for t, desc in fr.bads(step):
            bad_terms.append((step, desc, t))
            hits.append(u.term("and", 1, [assume, t]))
    query = _or_terms(u, hits)
    if u._cval(query) == 0:
        return CheckResult("pass", depth, round(time.perf_counter() - t0, 2), folded=True, terms=len(u.info))
    live = [(s, d, t) for s, d, t in bad_terms if u._cval(t) != 0]
    script = u.smt2([query] + [t for _, _, t in live], [query], get_values=[t for _, _, t in live], get_vars=True)
    if script_path:
        script_path.write_text(script)
    status, out = _solve(script, yices, timeout)
    secs = round(time.perf_counter() - t0, 2)
    if status == "unsat":
        return CheckResult("pass", depth, secs, terms=len(u.info))
    if status == "sat":
        vals = _values(out)
        failing = [(s, d) for (s, d, t) in live if vals.get(t) == 1]
        if trace_path:
            rows = [f"counterexample (BMC depth {depth}); failing assertions (step, source): "
                    + ", ".join(f"{st} {src}" for st, src in failing)]
            named = sorted(((u.info[t][3][0].split("_", 1)[1], t) for t in vals if u.info[t][0] == "var"),
                           key=lambda x: (int(x[0].rsplit("@", 1)[1]), x[0]))
            rows += [f"{name} = {hex(vals[t])}" for name, t in named]
            trace_path.write_text("\n".join(rows) + "\n")
        return CheckResult("fail", depth, secs, failing=failing, terms=len(u.info))
    return CheckResult(status if status == "timeout" else "unknown", depth, secs, terms=len(u.info))


def induction(model: BtorModel, depth: int, *, yices: str, timeout: float | None = None,
              script_path=None) -> CheckResult:
    """Induction step: from any state, ``depth`` steps without ``bad`` imply none in the next."""
    t0 = time.perf_counter()
    u = Unroller()
    fr = _Frames(model, u, from_init=False)
    cons, ok_before = [], []
    for step in range(depth + 1):
        fr.add_frame()
        cons += fr.constraints(step)
        if step < depth:
            ok_before += [u.term("not", 1, [t]) for t, _ in fr.bads(step)]
    last_bad = _or_terms(u, [t for t, _ in fr.bads(depth)])
    query = _and_terms(u, cons + ok_before + [last_bad])
    if u._cval(query) == 0:
        return CheckResult("pass", depth, round(time.perf_counter() - t0, 2), folded=True, terms=len(u.info))
    script = u.smt2([query], [query])
    if script_path:
        script_path.write_text(script)
    status, _ = _solve(script, yices, timeout)
    secs = round(time.perf_counter() - t0, 2)
    if status == "unsat":
        return CheckResult("pass", depth, secs, terms=len(u.info))
    if status == "sat":
        return CheckResult("fail", depth, secs, terms=len(u.info))
    return CheckResult(status if status == "timeout" else "unknown", depth, secs, terms=len(u.info))


# -- concrete evaluation: a check of the rewriting against direct simulation -----------------
def _apply(op, width, vals, params, widths):
    """Concrete value of one BTOR operator (``vals`` unsigned, ``widths`` of the arguments)."""
    mask = (1 << width) - 1
    a = vals[0] if vals else None
    b = vals[1] if len(vals) > 1 else None
    wa = widths[0] if widths else 0
    sa = _signed(a, wa) if vals else 0
    sb = _signed(b, widths[1]) if len(vals) > 1 else 0
    if op == "not":
        return ~a & mask
    if op == "neg":
        return -a & mask
    if op == "inc":
        return (a + 1) & mask
    if op == "dec":
        return (a - 1) & mask
    if op in ("and", "nand"):
        return (a & b if op == "and" else ~(a & b)) & mask
    if op in ("or", "nor"):
        return (a | b if op == "or" else ~(a | b)) & mask
    if op in ("xor", "xnor"):
        return (a ^ b if op == "xor" else ~(a ^ b)) & mask
    if op == "implies":
        return (~a | b) & 1
    if op == "iff":
        return int(a == b)
    if op == "add":
        return (a + b) & mask
    if op == "sub":
        return (a - b) & mask
    if op == "mul":
        return (a * b) & mask
    if op == "udiv":
        return mask if b == 0 else a // b
    if op == "urem":
        return a if b == 0 else a % b
    if op == "sll":
        return (a << b) & mask if b < width else 0
    if op == "srl":
        return a >> b if b < width else 0
    if op == "sra":
        return (sa >> min(b, width)) & mask
    if op in ("eq", "neq"):
        return int((a == b) == (op == "eq"))
    if op in ("ult", "ulte", "ugt", "ugte"):
        return int({"ult": a < b, "ulte": a <= b, "ugt": a > b, "ugte": a >= b}[op])
    if op in ("slt", "slte", "sgt", "sgte"):
        return int({"slt": sa < sb, "slte": sa <= sb, "sgt": sa > sb, "sgte": sa >= sb}[op])
    if op == "concat":
        return (a << widths[1]) | b
    if op == "slice":
        return (a >> params[1]) & mask
    if op == "uext":
        return a
    if op == "sext":
        return sa & mask
    if op == "ite":
        return vals[1] if a else vals[2]
    if op == "redor":
        return int(a != 0)
    if op == "redand":
        return int(a == (1 << wa) - 1)
    if op == "redxor":
        return bin(a).count("1") & 1
    raise UnrollError(f"no concrete semantics for BTOR operator {op!r}")


def cross_check(model: BtorModel, steps: int, *, seed: int = 0, from_init: bool = True) -> int:
    """Simulate the BTOR model directly for ``steps`` steps on random inputs (no rewriting) and
    compare every node's value with the value of its hash-consed, rewritten term. Returns the
    number of values compared; raises AssertionError naming the first difference."""
    import random

    rng = random.Random(seed)
    u = Unroller()
    fr = _Frames(model, u, from_init=from_init)
    var_values = {}
    state_now = {}
    memo = {}                # term values (terms are immutable, every variable gets one value)
    for step in range(steps):
        env = fr.add_frame()
        direct = {}
        for s in model.states:
            w = model.nodes[s][1]
            t = env[s]
            if step == 0 and u.info[t][0] == "var":
                var_values[t] = rng.getrandbits(w)
            if step == 0:
                state_now[s] = _eval_term(u, t, var_values, memo)
            direct[s] = state_now[s]
        for nid in model.order:
            op, w, args, params, _ = model.nodes[nid]
            if op == "state":
                continue
            if op == "input":
                t = env[nid]
                var_values[t] = rng.getrandbits(w)
                direct[nid] = var_values[t]
                continue
            if op == "const":
                direct[nid] = params[0]
                continue
            vals, widths = [], []
            for x in args:
                v = direct[abs(x)]
                wx = model.nodes[abs(x)][1]
                vals.append(~v & ((1 << wx) - 1) if x < 0 else v)
                widths.append(wx)
            direct[nid] = _apply(op, w, vals, params, widths)
        for nid, v in direct.items():
            got = _eval_term(u, env[nid], var_values, memo)
            if got != v:
                raise AssertionError(f"step {step}: node {nid} ({model.nodes[nid][0]}) simulates to {v:#x}, "
                                     f"its rewritten term evaluates to {got:#x}")
        for s in model.states:
            if s in model.next:
                x = model.next[s]
                v = direct[abs(x)]
                state_now[s] = ~v & ((1 << model.nodes[s][1]) - 1) if x < 0 else v
            else:                       # no next function: free in every step
                state_now[s] = var_values[fr._state_vals[s][1]] = rng.getrandbits(model.nodes[s][1])
    return steps * len(model.order)


def _eval_term(u: Unroller, t: int, var_values: dict, memo=None) -> int:
    memo = {} if memo is None else memo
    stack = [t]
    while stack:
        x = stack[-1]
        if x in memo:
            stack.pop()
            continue
        op, w, args, params = u.info[x]
        if op == "const":
            memo[x] = params[0]
        elif op == "var":
            memo[x] = var_values[x]
        else:
            todo = [a for a in args if a not in memo]
            if todo:
                stack.extend(todo)
                continue
            memo[x] = _apply(op, w, [memo[a] for a in args], params, [u.width(a) for a in args])
        stack.pop()
    return memo[t]
