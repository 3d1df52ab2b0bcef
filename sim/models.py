"""Stimulus generators and golden-model adapters for the stream bench, per generator.

A :class:`StreamModel` says, for one registered generator, how to make ``n``
random input vectors and what the core must answer:

- ``stimulus(params, n, rng) -> {input field: array}`` -- one array per
  payload field of the core's input stream (names exactly as in the
  manifest: ``a``, ``b``, ``c``, ``a[0]``...), integer bit patterns.
- ``reference(params, inputs) -> {output field: array}`` -- the expected
  output fields, computed in bulk by ``tensorforge.golden`` (vectorized).

``params`` are the resolved generator parameters (Python values: FloatFormat
objects, ints, strings), as ``registry.resolve`` returns them. The runner
calls both before the simulation, so the bench only compares bits.

Adding a generator (dot, mma, flexdot, systolic, ...)
    1. In a module of your family (e.g. ``sim/models_tensor.py``) write the
       two functions and call ``register_model(StreamModel("dot", stimulus,
       reference))`` at import time; the name is the registry's generator name.
    2. Add the module to :data:`MODEL_MODULES`.
    3. ``tensorforge sim dot ...`` and ``runner.simulate("dot", ...)`` now work;
       reuse :func:`float_operands` for floating-point inputs (it mixes random
       bit patterns with the special-value pools below).

Floating-point stimulus (``fma``, ``mul``, ``add``), in the spirit of
Berkeley TestFloat: every operand is drawn from a mix of uniformly random bit
patterns, a special-value pool (+-0, smallest/largest subnormal, random
subnormals, smallest normal, largest finite, +-1 and its neighbours, +-inf,
canonical and payload quiet NaNs, signaling NaNs), sparse significands (one
or two set bits: exact results and rounding ties) and exponent-clustered
values; then a share of the vectors is replaced by constructed cases:
cancellation (``b ~ -a``, ``c ~ -a*b`` up to a few low bits), exact ties
(``a*b`` = half an ulp of ``c``, and just above/below it; products whose low
half is exactly 100..0) and results at the overflow and underflow edges.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..golden.formats import FloatFormat

__all__ = ["StreamModel", "register_model", "get_model", "models", "MODEL_MODULES",
           "float_special_pool", "float_operands"]

#: Modules that register models on import (besides this one).
MODEL_MODULES: list[str] = ["tensorforge.sim.models_tensor", "tensorforge.sim.models_flex"]


@dataclass(frozen=True)
class StreamModel:
    """Stimulus + golden reference for one generator (see module docstring)."""

    name: str
    stimulus: Callable[[dict, int, np.random.Generator], dict]
    reference: Callable[[dict, dict], dict]
    summary: str = ""


_MODELS: dict[str, StreamModel] = {}
_loaded = False


def register_model(model: StreamModel) -> StreamModel:
    if model.name in _MODELS:
        raise ValueError(f"a stream model for generator {model.name!r} is registered twice")
    _MODELS[model.name] = model
    return model


def models() -> dict[str, StreamModel]:
    """All registered models by generator name (imports :data:`MODEL_MODULES` on first use)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in MODEL_MODULES:
            importlib.import_module(module)
    return dict(_MODELS)


def get_model(name: str) -> StreamModel:
    known = models()
    if name not in known:
        raise KeyError(f"no stream model for generator {name!r}; models exist for: {', '.join(sorted(known))}")
    return known[name]


# ---------------------------------------------------------------------------------------------
# floating-point operands


def _u(x) -> np.ndarray:
    return np.asarray(x, dtype=np.uint64)


def float_special_pool(fmt: FloatFormat) -> np.ndarray:
    """Special bit patterns of ``fmt`` (both signs): see the module docstring."""
    m, e = fmt.man_bits, fmt.exp_max_field
    top_exp = e if not fmt.has_inf else e - 1     # exponent field of the largest finite binade
    one = fmt.bias
    mags = [
        fmt.pack(0, 0, 0),                          # zero
        fmt.pack(0, 0, 1),                          # smallest subnormal
        fmt.pack(0, 0, (1 << m) - 1),               # largest subnormal
        fmt.pack(0, 0, 1 << (m - 1)),               # half the smallest normal
        fmt.pack(0, 1, 0),                          # smallest normal
        fmt.pack(0, 1, 1),
        fmt.max_finite,                             # largest finite
        fmt.max_finite - (1 << fmt.pad_bits),       # one ulp below it
        fmt.pack(0, top_exp, 0),                    # smallest value of the top binade
        fmt.pack(0, one, 0),                        # 1.0
        fmt.pack(0, one, 1),                        # 1 + ulp
        fmt.pack(0, one - 1, (1 << m) - 1),         # 1 - ulp/2
        fmt.pack(0, one, 1 << (m - 1)),             # 1.5
        fmt.pack(0, one + 1, 0),                    # 2.0
    ]
    if fmt.has_inf:
        mags += [
            fmt.inf,                                # infinity
            fmt.canonical_nan,                      # canonical quiet NaN
            fmt.pack(0, e, (1 << m) - 1),           # quiet NaN, full payload
            fmt.pack(0, e, (1 << (m - 1)) | 1),     # quiet NaN, small payload
        ]
        if m >= 2:
            mags += [
                fmt.pack(0, e, 1),                  # signaling NaN, smallest payload
                fmt.pack(0, e, (1 << (m - 1)) - 1),  # signaling NaN, largest payload
            ]
    else:
        mags.append(fmt.canonical_nan)              # the only NaN of "fn" formats
    mags = np.array(sorted(set(mags)), dtype=np.uint64)
    return np.concatenate([mags, mags | np.uint64(fmt.sign_mask)])


def _random_bits(fmt, n, rng):
    return rng.integers(0, 1 << fmt.width, size=n, dtype=np.uint64)


def _compose(fmt, sign, exp_field, man_field):
    """Vectorized ``fmt.pack`` (fields given as arrays)."""
    word = (_u(sign) << np.uint64(fmt.exp_bits)) | _u(exp_field)
    word = (word << np.uint64(fmt.man_bits)) | _u(man_field)
    return word << np.uint64(fmt.pad_bits)


def _sparse(fmt, n, rng, exp_field=None):
    """Random sign and exponent, significand with at most two set fraction bits."""
    m = fmt.man_bits
    if exp_field is None:
        exp_field = rng.integers(0, fmt.exp_max_field + 1, size=n)
    i = rng.integers(0, m, size=n)
    j = rng.integers(0, m, size=n)
    man = (np.uint64(1) << _u(i)) | np.where(rng.random(n) < 0.5, np.uint64(1) << _u(j), np.uint64(0))
    man = np.where(rng.random(n) < 0.2, np.uint64(0), man)
    return _compose(fmt, rng.integers(0, 2, size=n), exp_field, man)


def _finite_exp_field(fmt, n, rng, lo=0, hi=None):
    top = fmt.exp_max_field - 1 if fmt.has_inf else fmt.exp_max_field
    hi = top if hi is None else min(hi, top)
    return rng.integers(max(0, lo), max(max(0, lo), hi) + 1, size=n)


def float_operands(fmt: FloatFormat, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` operand bit patterns of ``fmt``: 45 % random bits, 20 % special pool,
    20 % sparse significands, 15 % exponents clustered around 1.0 (random fraction)."""
    pool = float_special_pool(fmt)
    kind = rng.random(n)
    out = _random_bits(fmt, n, rng)
    special = pool[rng.integers(0, len(pool), size=n)]
    sparse = _sparse(fmt, n, rng)
    cluster_exp = np.clip(fmt.bias + rng.integers(-3, 4, size=n), 0, fmt.exp_max_field - 1)
    cluster = _compose(fmt, rng.integers(0, 2, size=n), cluster_exp,
                       rng.integers(0, 1 << fmt.man_bits, size=n, dtype=np.uint64))
    out = np.where(kind < 0.45, out, np.where(kind < 0.65, special, np.where(kind < 0.85, sparse, cluster)))
    return out.astype(np.uint64)


def _pick(rng, n, share):
    return rng.random(n) < share


def _flip_low_bits(fmt, bits, rng):
    """Change 0..3 of the lowest significand bits (keeps most cancellation intact)."""
    k = rng.integers(0, 4, size=len(bits))
    noise = rng.integers(0, 8, size=len(bits), dtype=np.uint64) & ((np.uint64(1) << _u(k)) - np.uint64(1))
    return bits ^ (noise << np.uint64(fmt.pad_bits))


def _tie_products(in_fmt, acc_fmt, n, rng):
    """(a, b, c) with a*b = +-ulp(c)/2 (a tie), or one in-format ulp above/below it."""
    from ..golden import fp

    lo_t = 2 * in_fmt.emin
    hi_t = 2 * in_fmt.emax - 2
    # exponent of half an ulp of c must lie where a*b can reach, and c must be normal in acc_fmt
    t = rng.integers(lo_t, hi_t + 1, size=n)
    ec = t + 1 + acc_fmt.man_bits                          # unbiased exponent of c
    ec = np.clip(ec, acc_fmt.emin, acc_fmt.emax)
    t = ec - 1 - acc_fmt.man_bits
    ka = np.clip(t // 2, in_fmt.emin, in_fmt.emax)
    kb = np.clip(t - ka, in_fmt.emin, in_fmt.emax)
    which = rng.integers(0, 3, size=n)
    ulp_in = 2.0 ** -in_fmt.man_bits
    scale = np.where(which == 0, 1.0, np.where(which == 1, 1.0 + ulp_in, 2.0 * (1.0 - ulp_in / 2)))
    kb = np.where(which == 2, np.maximum(kb - 1, in_fmt.emin), kb)
    a_val = np.ldexp(1.0, ka.astype(np.int32)) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    b_val = np.ldexp(scale, kb.astype(np.int32))
    a, _ = fp.from_float64(a_val, in_fmt)
    b, _ = fp.from_float64(b_val, in_fmt)
    c = _compose(acc_fmt, rng.integers(0, 2, size=n), ec + acc_fmt.bias,
                 rng.integers(0, 1 << acc_fmt.man_bits, size=n, dtype=np.uint64))
    return _u(a), _u(b), c


def _edge_pairs(fmt, out_fmt, n, rng):
    """(a, b) whose product lands at out_fmt's overflow or underflow edge (random fractions)."""
    edges = np.array([out_fmt.emax, out_fmt.emax + 1, out_fmt.emin, out_fmt.emin - 1,
                      out_fmt.emin - out_fmt.man_bits, out_fmt.emin - out_fmt.man_bits - 1])
    t = edges[rng.integers(0, len(edges), size=n)]
    ka = np.clip(t // 2 + rng.integers(-2, 3, size=n), fmt.emin, fmt.emax)
    kb = np.clip(t - ka, fmt.emin, fmt.emax)
    a = _compose(fmt, rng.integers(0, 2, size=n), ka + fmt.bias,
                 rng.integers(0, 1 << fmt.man_bits, size=n, dtype=np.uint64))
    b = _compose(fmt, rng.integers(0, 2, size=n), kb + fmt.bias,
                 rng.integers(0, 1 << fmt.man_bits, size=n, dtype=np.uint64))
    return a, b


def _mul_ties(fmt, n, rng):
    """(a, b) = (1 + 2^-i) * 2^x, (1 + 2^-j) * 2^y with i + j = man + 1: the product's
    discarded half is exactly 100..0 (a tie) unless other bits interfere."""
    m = fmt.man_bits
    i = rng.integers(1, m + 1, size=n)
    j = np.clip(m + 1 - i, 1, m)
    ea = _finite_exp_field(fmt, n, rng, lo=1)
    eb = np.clip(2 * fmt.bias - ea + rng.integers(-4, 5, size=n), 1, fmt.exp_max_field - 1)
    man_a = np.uint64(1) << _u(m - i)
    man_b = (np.uint64(1) << _u(m - j)) | np.where(rng.random(n) < 0.5, np.uint64(1), np.uint64(0))
    a = _compose(fmt, rng.integers(0, 2, size=n), ea, man_a)
    b = _compose(fmt, rng.integers(0, 2, size=n), eb, man_b)
    return a, b


def _fma_stimulus(params, n, rng):
    from ..golden import fp

    fin, facc = params["in_format"], params["acc_format"]
    a = float_operands(fin, n, rng)
    b = float_operands(fin, n, rng)
    c = float_operands(facc, n, rng)
    # cancellation: c ~ -(a*b); products of in_format values are exact in float64 (<= 2*27 bits)
    sel = _pick(rng, n, 0.15)
    with np.errstate(all="ignore"):
        prod = fp.to_float64(a, fin) * fp.to_float64(b, fin)
    near, _ = fp.from_float64(-prod, facc, "rtz")
    c = np.where(sel & np.isfinite(prod), _flip_low_bits(facc, _u(near), rng), c)
    # ties
    sel = _pick(rng, n, 0.12)
    ta, tb, tc = _tie_products(fin, facc, n, rng)
    a, b, c = np.where(sel, ta, a), np.where(sel, tb, b), np.where(sel, tc, c)
    # overflow / underflow edges of the product (relative to the accumulator format)
    sel = _pick(rng, n, 0.08)
    ea, eb = _edge_pairs(fin, facc, n, rng)
    a, b = np.where(sel, ea, a), np.where(sel, eb, b)
    return {"a": a, "b": b, "c": c}


def _fma_reference(params, inputs):
    from ..golden import fp

    d, flags = fp.fma(inputs["a"], inputs["b"], inputs["c"], params["in_format"], params["acc_format"],
                      params["rounding"])
    return {"d": d, "flags": flags}


def _mul_stimulus(params, n, rng):
    fmt = params["fmt"]
    out = params["out_format"] or fmt          # None = the same format as a and b
    a = float_operands(fmt, n, rng)
    b = float_operands(fmt, n, rng)
    sel = _pick(rng, n, 0.15)
    ta, tb = _mul_ties(fmt, n, rng)
    a, b = np.where(sel, ta, a), np.where(sel, tb, b)
    sel = _pick(rng, n, 0.15)
    ea, eb = _edge_pairs(fmt, out, n, rng)
    a, b = np.where(sel, ea, a), np.where(sel, eb, b)
    return {"a": a, "b": b}


def _mul_reference(params, inputs):
    from ..golden import fp

    d, flags = fp.mul(inputs["a"], inputs["b"], params["fmt"], params["rounding"], params["out_format"])
    return {"d": d, "flags": flags}


def _add_stimulus(params, n, rng):
    fmt = params["fmt"]
    a = float_operands(fmt, n, rng)
    b = float_operands(fmt, n, rng)
    # cancellation: b = -a with a few low bits changed
    sel = _pick(rng, n, 0.15)
    b = np.where(sel, _flip_low_bits(fmt, a ^ np.uint64(fmt.sign_mask), rng), b)
    # alignment boundary: b's exponent 0..p+3 below a's, sparse significand (ties, sticky)
    sel = _pick(rng, n, 0.15)
    ea = ((a >> np.uint64(fmt.man_bits + fmt.pad_bits)) & np.uint64(fmt.exp_max_field)).astype(np.int64)
    eb = np.clip(ea - rng.integers(0, fmt.sig_bits + 4, size=n), 0, fmt.exp_max_field - 1)
    b = np.where(sel, _sparse(fmt, n, rng, exp_field=eb), b)
    # overflow edge: both near the top binade, same sign
    sel = _pick(rng, n, 0.05)
    top = _finite_exp_field(fmt, n, rng, lo=fmt.exp_max_field - 3)
    big_a = _compose(fmt, 0, top, rng.integers(0, 1 << fmt.man_bits, size=n, dtype=np.uint64))
    big_b = _compose(fmt, 0, _finite_exp_field(fmt, n, rng, lo=fmt.exp_max_field - 3),
                     rng.integers(0, 1 << fmt.man_bits, size=n, dtype=np.uint64))
    sign = _u(rng.integers(0, 2, size=n)) * np.uint64(fmt.sign_mask)
    a, b = np.where(sel, big_a | sign, a), np.where(sel, big_b | sign, b)
    return {"a": a, "b": b}


def _add_reference(params, inputs):
    from ..golden import fp

    d, flags = fp.add(inputs["a"], inputs["b"], params["fmt"], params["rounding"])
    return {"d": d, "flags": flags}


register_model(StreamModel("fma", _fma_stimulus, _fma_reference, "golden.fp.fma, TestFloat-style operands"))
register_model(StreamModel("mul", _mul_stimulus, _mul_reference, "golden.fp.mul, TestFloat-style operands"))
register_model(StreamModel("add", _add_stimulus, _add_reference, "golden.fp.add, TestFloat-style operands"))
