"""Stream-bench models of the tensor-core generators ``dot`` and ``mma`` (see :mod:`.models`).

Stimulus per vector (k products, or an m x n x k block):

- the first vectors are the directed cases of :func:`directed_dot_rows` (for mma: one
  directed row broadcast to every lane of a vector) (NUMERICS.md
  section 2's discriminating cases, written for any input/accumulator format: c losing its
  last bit at alignment, a product truncated away, carry headroom, the non-monotonic pair,
  zero signs, NaN / inf / inf - inf / 0 * inf, overflow, the smallest subnormal c);
- then :func:`tensorforge.golden.dot.random_dot_operands` rows: uniform bit patterns,
  exponent-clustered products, c ~ -(sum) cancellation, pairwise cancelling products, the
  bottom of the range, independent exponents, zeros, plus 5 % special values.

The reference is :func:`tensorforge.golden.dot.dot_product_add` / :func:`~tensorforge.golden.dot.mma`
with the generator's semantics (``gen.cores_tensor.semantics_of``).
"""

from __future__ import annotations

import numpy as np

from ..gen.cores_tensor import semantics_of
from ..golden import dot as gd
from ..golden import fp
from .models import StreamModel, register_model

__all__ = ["directed_dot_rows", "dot_operands"]

SPECIALS = 0.05


def _val(x, fmt) -> int:
    bits, _ = fp.from_float64(np.array([x], dtype=np.float64), fmt, fp.RTZ)
    return int(bits[0])


def directed_dot_rows(k, fi, fa):
    """Directed (a, b, c) rows of k products in formats ``fi`` / ``fa`` (uint64 arrays)."""
    mi, ma = fi.man_bits, fa.man_bits
    one, two, m_one = _val(1.0, fi), _val(2.0, fi), _val(-1.0, fi)
    near2 = fi.pack(0, fi.bias, (1 << mi) - 1)               # 2 - ulp
    tiny3 = fi.pack(0, 0, min(3, (1 << mi) - 1))              # 3 subnormal ulps (2^-23 + 2^-24 in FP16)
    tiny6 = fi.pack(0, 0, min(6, (1 << mi) - 1))
    nan_i = fi.canonical_nan
    inf_i = fi.inf if fi.has_inf else fi.max_finite
    c_one = _val(1.0, fa)
    rows = [
        ([one], [one], fa.pack(1, fa.bias - 1, (1 << ma) - 1)),           # c = -(1 - 2^-(ma+1))
        ([one] * 4, [two, tiny3], 0),                                       # product truncated away
        ([one] * 4, [two] * 4, 0),                                          # exactly 8
        ([near2] * 4, [near2] * 4, 0),                                      # carry headroom near 16
        ([tiny6] * 4, [one] * 4, fa.pack(0, fa.bias, (1 << ma) - 1)),     # non-monotonic pair: c = 2 - ulp
        ([tiny6] * 4, [one] * 4, fa.pack(0, fa.bias + 1, 0)),             # ... and c = 2
        ([one, m_one], [one, one], fa.sign_mask),                           # x - x + (-0)
        ([m_one, fi.sign_mask], [0, one], fa.sign_mask),                    # -0 - 0 + -0 (k=2: -0)
        ([nan_i], [one], 0),
        ([inf_i, inf_i | fi.sign_mask], [one, one], 0),                     # inf - inf
        ([inf_i], [0], c_one),                                              # inf * 0
        ([inf_i | fi.sign_mask, one], [one, one], c_one),                   # -inf
        ([fi.max_finite] * 4, [fi.max_finite] * 4, fa.max_finite),         # overflow (or swallowed)
        ([fi.max_finite] * 4, [fi.max_finite | fi.sign_mask] * 4, fa.max_finite | fa.sign_mask),
        ([0] * 4, [0] * 4, fa.min_subnormal),                               # smallest subnormal c
        ([fi.min_subnormal] * 4, [fi.min_subnormal] * 4, 0),                # tiniest products
        ([fi.min_subnormal] * 4, [fi.min_subnormal | fi.sign_mask] * 4, fa.min_subnormal),
    ]
    a = np.zeros((len(rows), k), dtype=np.uint64)
    b = np.zeros((len(rows), k), dtype=np.uint64)
    c = np.zeros(len(rows), dtype=np.uint64)
    for r, (ra, rb, rc) in enumerate(rows):
        ra, rb = ra[:k], rb[:k]
        a[r, :len(ra)] = ra
        b[r, :len(rb)] = rb
        c[r] = rc
    return a, b, c


def dot_operands(rng, n, k, fi, fa):
    """``n`` rows: the directed rows first, then random_dot_operands rows."""
    da, db, dc = directed_dot_rows(k, fi, fa)
    d = min(n, len(dc))
    ra, rb, rc = gd.random_dot_operands(rng, n - d, k, fi, fa, specials=SPECIALS)
    return (np.concatenate([da[:d], ra]), np.concatenate([db[:d], rb]), np.concatenate([dc[:d], rc]))


def _has_flags(params):
    return not isinstance(semantics_of(params), gd.Nvidia)


def _dot_stimulus(params, n, rng):
    k = params["k"]
    a, b, c = dot_operands(rng, n, k, params["in_format"], params["acc_format"])
    out = {f"a[{j}]": a[:, j] for j in range(k)}
    out.update({f"b[{j}]": b[:, j] for j in range(k)})
    out["c"] = c
    return out


def _dot_reference(params, inputs):
    k = params["k"]
    a = np.stack([np.asarray(inputs[f"a[{j}]"], dtype=np.uint64) for j in range(k)], axis=1)
    b = np.stack([np.asarray(inputs[f"b[{j}]"], dtype=np.uint64) for j in range(k)], axis=1)
    d, flags = gd.dot_product_add(a, b, np.asarray(inputs["c"], dtype=np.uint64), in_format=params["in_format"],
                                  acc_format=params["acc_format"], semantics=semantics_of(params))
    return {"d": d, "flags": flags} if _has_flags(params) else {"d": d}


def _mma_stimulus(params, n, rng):
    m, nn, k = params["m"], params["n"], params["k"]
    fi, fa = params["in_format"], params["acc_format"]
    # the first vectors broadcast one directed row to every lane (A rows, B columns, all of C);
    # the rest draw a random_dot_operands row per lane, row i of A and column j of B taken
    # from lanes (i, 0) and (0, j)
    da, db, dc = directed_dot_rows(k, fi, fa)
    d = min(n, len(dc))
    a, b, c = gd.random_dot_operands(rng, (n - d) * m * nn, k, fi, fa, specials=SPECIALS)
    a = a.reshape(n - d, m, nn, k)
    b = b.reshape(n - d, m, nn, k)
    A = np.concatenate([np.broadcast_to(da[:d, None, :], (d, m, k)), a[:, :, 0, :]])
    B = np.concatenate([np.broadcast_to(db[:d, :, None], (d, k, nn)), np.swapaxes(b[:, 0, :, :], 1, 2)])
    C = np.concatenate([np.broadcast_to(dc[:d, None, None], (d, m, nn)), c.reshape(n - d, m, nn)])
    out = {f"a[{i}][{kk}]": A[:, i, kk] for i in range(m) for kk in range(k)}
    out.update({f"b[{kk}][{j}]": B[:, kk, j] for kk in range(k) for j in range(nn)})
    out.update({f"c[{i}][{j}]": C[:, i, j] for i in range(m) for j in range(nn)})
    return out


def _mma_reference(params, inputs):
    m, nn, k = params["m"], params["n"], params["k"]
    A = np.stack([np.stack([np.asarray(inputs[f"a[{i}][{kk}]"], dtype=np.uint64) for kk in range(k)], axis=1)
                  for i in range(m)], axis=1)
    B = np.stack([np.stack([np.asarray(inputs[f"b[{kk}][{j}]"], dtype=np.uint64) for j in range(nn)], axis=1)
                  for kk in range(k)], axis=1)
    C = np.stack([np.stack([np.asarray(inputs[f"c[{i}][{j}]"], dtype=np.uint64) for j in range(nn)], axis=1)
                  for i in range(m)], axis=1)
    D, flags = gd.mma(A, B, C, in_format=params["in_format"], acc_format=params["acc_format"],
                      semantics=semantics_of(params))
    out = {f"d[{i}][{j}]": D[:, i, j] for i in range(m) for j in range(nn)}
    if _has_flags(params):
        out.update({f"flags[{i}][{j}]": flags[:, i, j] for i in range(m) for j in range(nn)})
    return out


register_model(StreamModel("dot", _dot_stimulus, _dot_reference,
                           "golden.dot.dot_product_add, directed + random_dot_operands"))
register_model(StreamModel("mma", _mma_stimulus, _mma_reference,
                           "golden.dot.mma, directed + random_dot_operands per lane"))
