"""Error statistics for comparing dot-product semantics (the data behind ``tensorforge numerics``).

Pure numpy: no plotting here (gen/ draws the histogram from :func:`histogram`'s data).

Definitions (``test`` and ``ref`` are result bit patterns of one format, e.g. volta vs exact):

* **differ**: the two results are different *values*: NaN equals NaN (any pattern), +0 equals
  -0, otherwise finite values or infinities compare by value. ``n_bits_differ`` counts
  different bit patterns as well (e.g. 0x7FFFFFFF vs 0x7FC00000).
* **error in ulps of the result**: ``(value(test) - value(ref)) / ulp(ref)`` where ``ulp(ref)`` is
  the weight of the last fraction bit of ``ref`` in its format (``2^(e - man_bits)`` for a
  normal ``ref`` in binade ``2^e``; the smallest subnormal for subnormal or zero ``ref``).
  Computed in float64 from the exact integer significands (exact whenever the difference
  needs at most 53 bits, otherwise correct to a relative 2^-53). Defined only where both
  results are finite; pairs where one side is NaN/inf and the values differ are counted in
  ``n_nonfinite_mismatch`` instead.
* **bias**: the mean signed error in ulps (negative = ``test`` below ``ref`` on average), and
  ``mean_toward_zero_ulp``, the mean of ``error * sign(ref)``: negative when ``test`` is biased
  toward zero, as truncating (nvidia) semantics are, whatever the sign of the data. Means of
  ulp errors are dominated by the rare cancellation cases (tiny results, huge ulp errors);
  ``frac_within_1ulp``, ``p99_abs_ulp`` and ``frac_toward_zero`` (of the differing results, the
  share that is smaller in magnitude than ``ref``) are the robust figures.

When ``ref`` is ``exact`` (correctly rounded), these are deviations from the correctly rounded
result; a correctly rounded semantics scores zero everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import fp
from .formats import FP32, FloatFormat

__all__ = [
    "ErrorStats", "DISTRIBUTIONS", "ulp_error", "compare", "histogram", "sample", "compare_semantics",
    "markdown_table",
]

#: value distributions understood by :func:`sample`
DISTRIBUTIONS = ("normal", "uniform", "uniform_positive", "lognormal", "loguniform")


@dataclass(frozen=True)
class ErrorStats:
    """Summary of ``test`` vs ``ref`` results (see the module docstring for definitions)."""

    n: int                       #: pairs compared
    n_differ: int                #: pairs with different values
    n_bits_differ: int           #: pairs with different bit patterns
    n_nonfinite_mismatch: int    #: differing pairs where one side is NaN or inf
    n_finite: int                #: pairs where both are finite (the ulp statistics use these)
    max_abs_ulp: float           #: max |error| in ulps of ref (0 when none differ)
    mean_abs_ulp: float          #: mean |error| in ulps over finite pairs
    mean_ulp: float              #: signed bias: mean error in ulps over finite pairs
    rms_ulp: float               #: root mean square error in ulps
    p99_abs_ulp: float           #: 99th percentile of |error| in ulps (robust against cancellation outliers)
    frac_within_1ulp: float      #: fraction of finite pairs with |error| <= 1 ulp
    mean_toward_zero_ulp: float  #: mean of error * sign(ref) in ulps: negative = biased toward zero
    mean_rel_error: float        #: mean signed relative error (test - ref) / |ref| over finite, nonzero ref
    frac_toward_zero: float      #: of the finite pairs that differ, the fraction where |test| < |ref| (0.5 = unbiased)

    @property
    def frac_differ(self) -> float:
        """Fraction of results whose value differs."""
        return self.n_differ / self.n if self.n else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["frac_differ"] = self.frac_differ
        return d


def _check_fmt(fmt):
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat, not {fmt!r}")


def ulp_error(test, ref, fmt: FloatFormat) -> np.ndarray:
    """Signed error ``(test - ref) / ulp(ref)`` per element as float64; NaN where either side is
    NaN or infinite."""
    _check_fmt(fmt)
    ct, cr = fp.classify(test, fmt), fp.classify(ref, fmt)
    st, mt, et = fp.decode(test, fmt)
    sr, mr, er = fp.decode(ref, fmt)
    finite = ~(ct.nan | ct.inf | cr.nan | cr.inf)
    shift = np.where(finite, et - er, 0).astype(np.int32)
    vt = np.ldexp(mt.astype(np.float64), shift)
    vt = np.where(st == 1, -vt, vt)
    vr = np.where(sr == 1, -mr.astype(np.float64), mr.astype(np.float64))
    return np.where(finite, vt - vr, np.nan)


def compare(test, ref, fmt: FloatFormat) -> ErrorStats:
    """Statistics of ``test`` against ``ref`` (bit arrays of ``fmt``, same shape)."""
    _check_fmt(fmt)
    test = np.asarray(test)
    ref = np.asarray(ref)
    if test.shape != ref.shape:
        raise ValueError(f"test and ref must have the same shape, not {test.shape} and {ref.shape}")
    ct, cr = fp.classify(test, fmt), fp.classify(ref, fmt)
    err = ulp_error(test, ref, fmt)
    finite = ~np.isnan(err)
    same_nonfinite = (ct.nan & cr.nan) | (ct.inf & cr.inf & (fp.decode(test, fmt)[0] == fp.decode(ref, fmt)[0]))
    differ = np.where(finite, err != 0, ~same_nonfinite)
    nonfinite_mismatch = differ & ~finite
    e = err[finite]
    sr = fp.decode(ref, fmt)[0][finite]
    vr = fp.to_float64(ref, fmt)[finite]
    vt = fp.to_float64(test, fmt)[finite]
    nz = vr != 0
    n_f = int(finite.sum())
    mask = (np.uint64(fmt.mask))
    return ErrorStats(
        n=int(test.size),
        n_differ=int(differ.sum()),
        n_bits_differ=int(np.sum((test.astype(np.uint64) & mask) != (ref.astype(np.uint64) & mask))),
        n_nonfinite_mismatch=int(nonfinite_mismatch.sum()),
        n_finite=n_f,
        max_abs_ulp=float(np.max(np.abs(e))) if n_f else 0.0,
        mean_abs_ulp=float(np.mean(np.abs(e))) if n_f else 0.0,
        mean_ulp=float(np.mean(e)) if n_f else 0.0,
        rms_ulp=float(np.sqrt(np.mean(e * e))) if n_f else 0.0,
        p99_abs_ulp=float(np.percentile(np.abs(e), 99)) if n_f else 0.0,
        frac_within_1ulp=float(np.mean(np.abs(e) <= 1)) if n_f else 1.0,
        mean_toward_zero_ulp=float(np.mean(np.where(sr == 1, -e, e))) if n_f else 0.0,
        mean_rel_error=float(np.mean((vt[nz] - vr[nz]) / np.abs(vr[nz]))) if nz.any() else 0.0,
        frac_toward_zero=float(np.mean(np.abs(vt[e != 0]) < np.abs(vr[e != 0]))) if np.any(e != 0) else 0.5,
    )


def histogram(errors, bins=None, *, max_bins=201):
    """Histogram data of signed ulp errors (NaNs ignored) -> ``(counts, edges)``.

    ``bins`` None: unit-wide bins centred on integers (edges at k +- 0.5) covering the
    0.1%..99.9% quantile range, limited to +-(max_bins-1)/2 ulps;
    errors outside the range are counted in the first / last bin, so the counts always sum to
    the number of finite errors (cancellation makes the tails of ulp errors very long).
    Any other ``bins`` is passed to ``numpy.histogram`` unchanged (no clamping).
    """
    e = np.asarray(errors, dtype=np.float64)
    e = e[~np.isnan(e)]
    if bins is not None:
        return np.histogram(e, bins=bins)
    if e.size == 0:
        return np.zeros(1, dtype=np.int64), np.array([-0.5, 0.5])
    lo, hi = np.floor(np.quantile(e, 0.001)), np.ceil(np.quantile(e, 0.999))
    half = (max_bins - 1) // 2
    lo, hi = max(lo, -half), min(hi, half)
    edges = np.arange(lo - 0.5, hi + 1.0)
    counts, edges = np.histogram(np.clip(e, lo, hi), bins=edges)
    return counts, edges


def sample(rng, fmt: FloatFormat, shape, distribution="normal"):
    """Random values of a distribution rounded (RNE) to ``fmt``; returns bit patterns.

    ``normal``: N(0, 1); ``uniform``: U(-1, 1); ``uniform_positive``: U(0, 1);
    ``lognormal``: random sign times exp(N(0, 1)); ``loguniform``: random sign times
    2^U(-8, 8) (magnitudes spread over 16 binades: alignment-heavy).
    """
    _check_fmt(fmt)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {rng!r}")
    if distribution == "normal":
        x = rng.standard_normal(shape)
    elif distribution == "uniform":
        x = rng.uniform(-1.0, 1.0, shape)
    elif distribution == "uniform_positive":
        x = rng.uniform(0.0, 1.0, shape)
    elif distribution == "lognormal":
        x = np.exp(rng.standard_normal(shape)) * rng.choice([-1.0, 1.0], shape)
    elif distribution == "loguniform":
        x = np.exp2(rng.uniform(-8.0, 8.0, shape)) * rng.choice([-1.0, 1.0], shape)
    else:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, not {distribution!r}")
    return fp.from_float64(x, fmt)[0]


def compare_semantics(semantics, vs="exact", *, k, in_format: FloatFormat, acc_format: FloatFormat = FP32,
                      samples=100_000, distribution="normal", c="random", seed=0):
    """Run ``semantics`` and ``vs`` on the same random dot products and compare them.

    ``a``, ``b`` (samples x k) drawn from ``distribution`` in ``in_format``; ``c`` from the
    same distribution in ``acc_format`` (``c="random"``) or +0 (``c="zero"``). Semantics are
    objects or names (:func:`tensorforge.golden.dot.parse_semantics`).
    Returns ``(ErrorStats, errors)`` with ``errors`` the per-sample signed ulp errors.
    """
    from .dot import dot_product_add   # local import: dot imports nothing from here

    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 4096:
        raise ValueError(f"k must be an integer between 1 and 4096, not {k!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or not 1 <= samples <= 100_000_000:
        raise ValueError(f"samples must be an integer between 1 and 100000000, not {samples!r}")
    if c not in ("random", "zero"):
        raise ValueError(f"c must be 'random' or 'zero', not {c!r}")
    rng = np.random.default_rng(seed)
    a = sample(rng, in_format, (samples, k), distribution)
    b = sample(rng, in_format, (samples, k), distribution)
    cc = sample(rng, acc_format, (samples,), distribution) if c == "random" else np.zeros(samples, np.uint32)
    d_test, _ = dot_product_add(a, b, cc, in_format=in_format, acc_format=acc_format, semantics=semantics)
    d_ref, _ = dot_product_add(a, b, cc, in_format=in_format, acc_format=acc_format, semantics=vs)
    return compare(d_test, d_ref, acc_format), ulp_error(d_test, d_ref, acc_format)


def markdown_table(rows) -> str:
    """Markdown table from ``{label: ErrorStats}`` (label e.g. ``"volta vs exact, k=4"``)."""
    head = ("| comparison | results differ | within 1 ulp | p99 abs err (ulp) | max abs err (ulp) "
            "| mean abs err (ulp) | bias (ulp) | bias toward zero (ulp) | differing results toward zero |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {label} | {s.frac_differ:.2%} | {s.frac_within_1ulp:.2%} | {s.p99_abs_ulp:.3g} | {s.max_abs_ulp:.3g} "
        f"| {s.mean_abs_ulp:.3g} | {s.mean_ulp:+.3g} | {s.mean_toward_zero_ulp:+.3g} | {s.frac_toward_zero:.1%} |\n"
        for label, s in rows.items())
    return head + body
