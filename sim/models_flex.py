"""Stream-bench models of the flexpoint generators ``flexdot`` and ``maxabs`` (see :mod:`.models`).

``flexdot`` stimulus, per vector (``lanes`` dot products of ``k`` terms), a mix of:

- uniform mantissas over the full two's-complement range;
- mantissas of random bit length (small and mixed magnitudes, many zeros);
- extreme values only (-2**(N-1), -2**(N-1)+1, -1, 0, 1, 2**(N-1)-1; the largest accumulator is
  k * 2**(2N-2));
- all-zero blocks;
- *boundary* lanes: the accumulator is built as ``T = a0*2**s + r`` (plus cancelling product pairs)
  with ``T / 2**s`` at or next to the saturation limits and the rounding ties: ``M + f`` for
  M in {2**(N-1)-1, 2**(N-1)-2, 2**(N-1), -2**(N-1), -2**(N-1)+1, -2**(N-1)-1} and f in {0, 1/2 - 2**-s,
  1/2, 1/2 + 2**-s, random}: every value that rounds to exactly the limit (no overflow) next to
  one that saturates (overflow). In dfp16 mode the targets are ``2**B - j`` (a block maximum that
  rounds up to 2**(N-1), the only DFP overflow) with the other lanes smaller.

In ``flex`` mode the shift is, per vector: ``bitlen(max|acc|) - (N-1) + d`` with d in -3..3 (around
full scale: overflow for d < 0, near-overflow at d = 0), the boundary shift for boundary vectors, or
(10 %) uniform over the whole signed shift field (huge right shifts, left shifts that saturate).

Reference: :func:`tensorforge.golden.flex.flex_dot_int` (flex) and
:func:`tensorforge.golden.dfp16.dfp_down_convert_int` per beat's block of lane accumulators (dfp16).

``maxabs`` stimulus: tensors of 1..300 beats (short ones frequent), each of one kind (uniform,
random bit lengths, all zero, containing -2**(N-1), a single large element, top values only; the
first three tensors are all zero, containing -2**(N-1) and top values only); ``start`` on the first
beat of a tensor half of the time (otherwise the tensor begins after the previous ``last``), a
``start`` without a preceding ``last`` now and then (restart), ``last`` on the final beat of each
tensor (always on the final vector). Reference: per tensor, the running
:func:`tensorforge.golden.flex.max_abs` of the beats so far (the Γ on ``last`` beats is the
tensor's Γ), and the pass-through mantissas and ``last``.
"""

from __future__ import annotations

import numpy as np

from ..golden.dfp16 import dfp_down_convert_int
from ..golden.flex import flex_dot_int, max_abs
from .models import StreamModel, register_model

__all__ = ["flexdot_operands", "maxabs_beats", "tensor_starts"]


def _twos(x, bits):
    """Signed ints -> two's-complement bit patterns (uint64)."""
    return (np.asarray(x, dtype=np.int64).astype(np.uint64)) & np.uint64((1 << bits) - 1)


def _signed(x, bits):
    x = np.asarray(x).astype(np.int64)
    return np.where(x >= (1 << (bits - 1)), x - (1 << bits), x)


def _exact_acc(a, b):
    """Exact sum over the last axis of a*b (int64 if it fits, else Python ints)."""
    bits = int(np.abs(a).max(initial=1)).bit_length() + int(np.abs(b).max(initial=1)).bit_length()
    if bits + (a.shape[-1]).bit_length() <= 62:
        return np.einsum("...k,...k->...", a.astype(np.int64), b.astype(np.int64))
    return np.sum(a.astype(object) * b.astype(object), axis=-1)


def _bitlen(x):
    """Bit length of |x| elementwise (int64 array)."""
    mag = np.abs(np.asarray(x, dtype=object)) if np.asarray(x).dtype == object else np.abs(np.asarray(x))
    return np.array([int(v).bit_length() for v in np.ravel(mag)], dtype=np.int64).reshape(np.shape(x))


def _random_bitlen(rng, shape, n_bits):
    """Mantissas of uniformly random bit length 0..n_bits-1 (and sign)."""
    length = rng.integers(0, n_bits, size=shape)
    mag = rng.integers(0, 1 << 62, size=shape, dtype=np.int64) & ((np.int64(1) << length) - 1)
    mag |= np.where(length > 0, np.int64(1) << np.maximum(length - 1, 0), 0)
    return np.where(rng.random(shape) < 0.5, -mag, mag)


def _boundary_lane(rng, n, k, N, *, dfp):
    """(a, b, s) rows for n lanes whose accumulator sits at a saturation/rounding boundary of shift s."""
    lo, hi = -(1 << (N - 1)), (1 << (N - 1)) - 1
    s_max = max(1, min(N - 3, 13))
    s = rng.integers(1, s_max + 1, size=n)
    one = np.ones(n, dtype=np.int64)
    if dfp:
        # T = 2**B - j with B = s + N - 1: T / 2**s = 2**(N-1) - j/2**s (overflow iff it rounds up)
        j = np.where(rng.random(n) < 0.5, rng.integers(1, 4, size=n), rng.integers(1, (one << s) + 1))
        T = (one << (s + N - 1)) - j
        T = np.where(rng.random(n) < 0.2, -T, T)               # negative maxima never overflow
    else:
        M = np.array([hi, hi - 1, hi + 1, lo, lo + 1, lo - 1])[rng.integers(0, 6, size=n)]
        half = one << (s - 1)
        f = np.stack([0 * one, half - 1, half, half + 1, rng.integers(0, one << s)], axis=1)
        f = f[np.arange(n), rng.integers(0, 5, size=n)]
        T = M * (one << s) + f
    if k == 1:
        T = (T >> s) << s                                        # a single product: multiples of 2**s
        T = np.clip(T, lo * (one << s), hi * (one << s))
    # T = a0 * 2**s + r, 0 <= r < 2**s; a0 may be 2**(N-1): then use 2**(N-2) * 2**(s+1)
    a0 = T >> s
    r = T - (a0 << s)
    p = s.copy()
    big = a0 > hi
    a0 = np.where(big, a0 >> 1, a0)
    p = np.where(big, p + 1, p)
    a = np.zeros((n, k), dtype=np.int64)
    b = np.zeros((n, k), dtype=np.int64)
    a[:, 0], b[:, 0] = a0, one << p
    if k >= 2:
        a[:, 1], b[:, 1] = r, 1
    if k >= 4:                                                   # a cancelling pair of random products
        x = rng.integers(lo, hi + 1, size=n)
        y = rng.integers(lo + 1, hi + 1, size=n)
        a[:, 2], b[:, 2], a[:, 3], b[:, 3] = x, y, x, -y
    # shuffle the term order
    perm = np.argsort(rng.random((n, k)), axis=1)
    return np.take_along_axis(a, perm, 1), np.take_along_axis(b, perm, 1), s


def flexdot_operands(params, n, rng):
    """Signed (a, b, shift) for n vectors: a, b of shape (n, lanes, k); shift (n,) (flex mode only)."""
    k, L, N, mode = params["k"], params["lanes"], params["man_bits"], params["mode"]
    lo, hi = -(1 << (N - 1)), (1 << (N - 1)) - 1
    S = params["shift_bits"]
    shape = (n, L, k)
    a = rng.integers(lo, hi + 1, size=shape)
    b = rng.integers(lo, hi + 1, size=shape)
    kind = rng.random(n)
    sel = (kind >= 0.35) & (kind < 0.50)
    a = np.where(sel[:, None, None], _random_bitlen(rng, shape, N), a)
    b = np.where(sel[:, None, None], _random_bitlen(rng, shape, N), b)
    sel = (kind >= 0.50) & (kind < 0.60)
    ext = np.array([lo, lo + 1, -1, 0, 1, hi])
    a = np.where(sel[:, None, None], ext[rng.integers(0, 6, size=shape)], a)
    b = np.where(sel[:, None, None], np.where(rng.random(shape) < 0.5, lo, ext[rng.integers(0, 6, size=shape)]), b)
    zero = (kind >= 0.60) & (kind < 0.65)
    a = np.where(zero[:, None, None], 0, a)
    bound = kind >= 0.65
    nb = int(bound.sum())
    bs = np.zeros(n, dtype=np.int64)
    if nb:
        lane = rng.integers(0, L, size=nb)
        ba, bb, s = _boundary_lane(rng, nb, k, N, dfp=mode == "dfp16")
        rows = np.flatnonzero(bound)
        if mode == "dfp16":                                       # other lanes smaller than the target
            small = _random_bitlen(rng, (nb, L, k), max(2, N // 2))
            a[rows] = small
            b[rows] = _random_bitlen(rng, (nb, L, k), max(2, N // 2))
        a[rows, lane], b[rows, lane] = ba, bb
        bs[rows] = s
    shift = None
    if mode == "flex":
        acc = _exact_acc(a, b)
        top = _bitlen(acc).max(axis=1)
        shift = top - (N - 1) + rng.integers(-3, 4, size=n)
        shift = np.where(bound, bs, shift)
        s_lo, s_hi = -(1 << (S - 1)), (1 << (S - 1)) - 1
        shift = np.where(rng.random(n) < 0.10, rng.integers(s_lo, s_hi + 1, size=n), shift)
        shift = np.clip(shift, s_lo, s_hi)
    return a, b, shift


def _flexdot_stimulus(params, n, rng):
    k, L, N = params["k"], params["lanes"], params["man_bits"]
    a, b, shift = flexdot_operands(params, n, rng)
    out = {f"a[{j}][{kk}]": _twos(a[:, j, kk], N) for j in range(L) for kk in range(k)}
    out.update({f"b[{j}][{kk}]": _twos(b[:, j, kk], N) for j in range(L) for kk in range(k)})
    if shift is not None:
        out["shift"] = _twos(shift, params["shift_bits"])
    return out


def _flexdot_reference(params, inputs):
    k, L, N, S = params["k"], params["lanes"], params["man_bits"], params["shift_bits"]
    a = np.stack([np.stack([_signed(inputs[f"a[{j}][{kk}]"], N) for kk in range(k)], axis=1) for j in range(L)], 1)
    b = np.stack([np.stack([_signed(inputs[f"b[{j}][{kk}]"], N) for kk in range(k)], axis=1) for j in range(L)], 1)
    if params["mode"] == "flex":
        shift = _signed(inputs["shift"], S)
        out, ovf = flex_dot_int(a, b, shift[:, None], man_bits=N)
        res = {}
    else:
        n = a.shape[0]
        acc = _exact_acc(a, b)                                    # (n, L): the block of each beat
        out = np.zeros((n, L), dtype=np.int64)
        ovf = np.zeros((n, L), dtype=bool)
        shifts = np.zeros(n, dtype=np.int64)
        for v in range(n):
            out[v], shifts[v], ovf[v] = dfp_down_convert_int(acc[v], N)
        res = {"shift": _twos(shifts, S)}
    res.update({f"out[{j}]": _twos(out[:, j], N) for j in range(L)})
    res.update({f"overflow[{j}]": ovf[:, j].astype(np.uint64) for j in range(L)})
    return res


# ---------------------------------------------------------------------------------------------
# maxabs


def maxabs_beats(params, n, rng):
    """Signed mantissas (n, lanes) and the start / last markers (n,) of a stream of tensors."""
    L, N = params["lanes"], params["man_bits"]
    lo, hi = -(1 << (N - 1)), (1 << (N - 1)) - 1
    lengths = []
    while sum(lengths) < n:
        u = rng.random()
        lengths.append(1 if u < 0.2 else int(rng.integers(2, 9)) if u < 0.75 else int(rng.integers(9, 301)))
    lengths[-1] -= sum(lengths) - n
    man = np.zeros((n, L), dtype=np.int64)
    start = np.zeros(n, dtype=np.uint64)
    last = np.zeros(n, dtype=np.uint64)
    pos = 0
    for index, length in enumerate(lengths):
        if length <= 0:
            continue
        kind = (2, 3, 5)[index] if index < 3 else rng.integers(0, 6)   # all-zero, -2**(N-1), top values first
        if kind == 0:
            t = rng.integers(lo, hi + 1, size=(length, L))
        elif kind == 1:
            t = _random_bitlen(rng, (length, L), N)
        elif kind == 2:
            t = np.zeros((length, L), dtype=np.int64)
        elif kind == 3:
            t = _random_bitlen(rng, (length, L), N)
            t[rng.integers(0, length), rng.integers(0, L)] = lo
        elif kind == 4:                                           # one large element among small ones
            t = _random_bitlen(rng, (length, L), max(2, N // 2))
            t[rng.integers(0, length), rng.integers(0, L)] = rng.choice([hi, lo + 1, hi - 1, 1 << (N - 2)])
        else:                                                     # around the top: hi, -hi, lo
            t = rng.choice(np.array([hi, -hi, lo, 0, hi - 1, lo + 1]), size=(length, L))
        man[pos:pos + length] = t
        if rng.random() < 0.5:
            start[pos] = 1
        if length > 3 and rng.random() < 0.1:                     # a restart: start without a last before it
            cut = int(rng.integers(1, length))
            start[pos + cut] = 1
        last[pos + length - 1] = 1
        pos += length
    last[n - 1] = 1
    return man, start, last


def tensor_starts(start, last):
    """Boolean array: beat i begins a tensor (i == 0, start[i], or last[i-1])."""
    start = np.asarray(start).astype(bool)
    last = np.asarray(last).astype(bool)
    begin = start.copy()
    if len(begin):
        begin[0] = True
        begin[1:] |= last[:-1]
    return begin


def _maxabs_stimulus(params, n, rng):
    L, N = params["lanes"], params["man_bits"]
    man, start, last = maxabs_beats(params, n, rng)
    out = {f"man[{j}]": _twos(man[:, j], N) for j in range(L)}
    out["start"], out["last"] = start, last
    return out


def _maxabs_reference(params, inputs):
    L, N = params["lanes"], params["man_bits"]
    man = np.stack([_signed(inputs[f"man[{j}]"], N) for j in range(L)], axis=1)
    begin = tensor_starts(inputs["start"], inputs["last"])
    beat = np.array([max_abs(row) for row in man], dtype=np.int64)     # Γ of each beat's lanes
    gamma = np.zeros(len(man), dtype=np.int64)
    bounds = np.flatnonzero(begin).tolist() + [len(man)]
    for s, e in zip(bounds[:-1], bounds[1:]):     # Γ of a prefix = max(Γ of the shorter prefix, Γ of the beat)
        gamma[s:e] = np.maximum.accumulate(beat[s:e])
    res = {f"man[{j}]": _twos(man[:, j], N) for j in range(L)}
    res["gamma"] = gamma.astype(np.uint64)
    res["last"] = np.asarray(inputs["last"], dtype=np.uint64)
    return res


register_model(StreamModel("flexdot", _flexdot_stimulus, _flexdot_reference,
                           "golden.flex.flex_dot_int / golden.dfp16.dfp_down_convert_int; random, extreme, "
                           "zero and saturation-boundary operands"))
register_model(StreamModel("maxabs", _maxabs_stimulus, _maxabs_reference,
                           "golden.flex.max_abs over every tensor prefix; start/last-delimited tensors"))
