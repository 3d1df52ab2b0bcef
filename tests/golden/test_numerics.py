"""Tests of golden/numerics.py: error statistics behind the numerics report."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from tensorforge.golden import numerics as nm
from tensorforge.golden.formats import BF16, FP16, FP32

ONE = 0x3F800000          # FP32 1.0, ulp 2^-23
BELOW_ONE = 0x3F7FFFFF    # 1 - 2^-24 (ulp 2^-24)
NAN_NV, NAN_IEEE = 0x7FFFFFFF, 0x7FC00000
INF, NINF = 0x7F800000, 0xFF800000


def test_ulp_error_exact_cases():
    test = np.array([ONE + 1, BELOW_ONE, 0x00000001, 0x007FFFFF, 0x80000000, ONE | 0x80000000, ONE, ONE + 3],
                    dtype=np.uint32)
    ref = np.array([ONE, ONE, 0, 0x00800000, 0, (ONE + 2) | 0x80000000, NAN_IEEE, INF], dtype=np.uint32)
    e = nm.ulp_error(test, ref, FP32)
    # 1+u vs 1: +1 ulp;  1-2^-24 vs 1: -1/2 ulp of 1;  min subnormal vs +0: +1 (ulp of 0 = 2^-149);
    # largest subnormal vs smallest normal: -1;  -0 vs +0: 0;  -1 vs -(1+2u): +2;  NaN/inf: undefined
    assert list(e[:6]) == [1.0, -0.5, 1.0, -1.0, 0.0, 2.0]
    assert np.isnan(e[6]) and np.isnan(e[7])


def test_compare_counts_values_not_bits():
    test = np.array([NAN_NV, 0, INF, NAN_NV, INF, ONE, ONE + 2, ONE], dtype=np.uint32)
    ref = np.array([NAN_IEEE, 0x80000000, INF, INF, NINF, 0x7F7FFFFF, ONE, ONE], dtype=np.uint32)
    s = nm.compare(test, ref, FP32)
    assert s.n == 8
    # NaN==NaN and +0==-0 and inf==inf are equal values; NaN vs inf, inf vs -inf differ (non-finite);
    # 1 vs max finite and 1+2u vs 1 differ (finite)
    assert s.n_differ == 4 and s.n_nonfinite_mismatch == 2
    assert s.n_bits_differ == 6
    assert s.n_finite == 4            # (+0,-0), (1,max), (1+2u,1), (1,1)
    assert s.max_abs_ulp == (2.0 ** 128 - 2.0 ** 104 - 1.0) / 2.0 ** 104   # 1 - max in ulps of max (2^104)
    assert s.frac_differ == 0.5


def test_compare_bias_statistics():
    # errors in ulps of ref: +1, -1, -2 (on a negative ref: -2 means away from zero... computed below), 0
    test = np.array([ONE + 1, ONE - 1, 0xC0000002, ONE], dtype=np.uint32)     # 1+u, 1-u/2, -(2+4u)
    ref = np.array([ONE, ONE, 0xC0000001, ONE], dtype=np.uint32)              # 1, 1, -(2+2u)
    # errors: +1, -0.5, -1 (ulp of -(2+2u) is 2^-22: -(2+4u) - -(2+2u) = -2u = -1 ulp), 0
    s = nm.compare(test, ref, FP32)
    assert s.n_differ == 3
    assert s.mean_ulp == (1 - 0.5 - 1 + 0) / 4
    assert s.mean_abs_ulp == (1 + 0.5 + 1) / 4
    assert s.max_abs_ulp == 1.0
    # toward zero: +1 (away), -0.5 (toward), -1 on a negative ref = away from zero -> +1, 0
    assert s.mean_toward_zero_ulp == (1 - 0.5 + 1 + 0) / 4
    assert s.frac_within_1ulp == 1.0
    assert s.rms_ulp == np.sqrt((1 + 0.25 + 1) / 4)
    assert s.frac_toward_zero == 1 / 3          # only 1 - u/2 vs 1 is smaller in magnitude


def test_compare_shape_and_type_errors():
    with pytest.raises(ValueError, match=r"test and ref must have the same shape, not \(2,\) and \(3,\)"):
        nm.compare(np.zeros(2), np.zeros(3), FP32)
    with pytest.raises(TypeError, match="fmt must be a FloatFormat"):
        nm.compare(np.zeros(2), np.zeros(2), "fp32")


def test_histogram_integer_bins_and_clamping():
    e = np.array([-1.0] * 10 + [0.0] * 980 + [1.0] * 10 + [1e6, np.nan])
    counts, edges = nm.histogram(e)
    # quantiles 0.1% / 99.9% of the 1001 finite values are -1 and 1: three unit bins;
    # NaN dropped, the 1e6 outlier clamped into the last bin
    assert list(edges) == [-1.5, -0.5, 0.5, 1.5]
    assert list(counts) == [10, 980, 11]
    big = np.concatenate([np.arange(-500, 501, dtype=float)] * 3)
    counts, edges = nm.histogram(big)
    assert len(counts) == 201 and counts.sum() == big.size and edges[0] == -100.5
    counts, edges = nm.histogram(e, bins=4)
    assert counts.sum() == 1001 and len(edges) == 5


@pytest.mark.parametrize("dist", nm.DISTRIBUTIONS)
def test_sample_is_rne_rounding_of_the_draws(dist):
    shape = (500, 3)
    got16 = nm.sample(np.random.default_rng(4), FP16, shape, dist)
    gotbf = nm.sample(np.random.default_rng(4), BF16, shape, dist)
    # redraw the same float64 values and round them with numpy / ml_dtypes (independent RNE)
    rng = np.random.default_rng(4)
    x = {"normal": lambda: rng.standard_normal(shape),
         "uniform": lambda: rng.uniform(-1.0, 1.0, shape),
         "uniform_positive": lambda: rng.uniform(0.0, 1.0, shape),
         "lognormal": lambda: np.exp(rng.standard_normal(shape)) * rng.choice([-1.0, 1.0], shape),
         "loguniform": lambda: np.exp2(rng.uniform(-8.0, 8.0, shape)) * rng.choice([-1.0, 1.0], shape)}[dist]()
    assert np.array_equal(got16, x.astype(np.float16).view(np.uint16))
    assert np.array_equal(gotbf, x.astype(ml_dtypes.bfloat16).view(np.uint16))


def test_sample_errors():
    with pytest.raises(ValueError, match="distribution must be one of normal, uniform"):
        nm.sample(np.random.default_rng(0), FP16, 3, "cauchy")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        nm.sample(0, FP16, 3)


def test_compare_semantics_properties():
    # exact vs exact: identical
    s, e = nm.compare_semantics("exact", "exact", k=4, in_format=FP16, samples=2000)
    assert s.n_differ == 0 and s.n_bits_differ == 0 and np.all(e == 0)
    # a single FMA is correctly rounded: chain with k = 1 equals exact
    s, _ = nm.compare_semantics("chain", "exact", k=1, in_format=FP16, samples=5000, distribution="loguniform")
    assert s.n_differ == 0
    # positive data: every volta step truncates downward, exact rounds to nearest of the exact sum,
    # so volta <= exact always, and it differs often
    s, e = nm.compare_semantics("volta", "exact", k=4, in_format=FP16, samples=5000,
                                distribution="uniform_positive")
    assert np.nanmax(e) <= 0 and s.n_differ > 500 and s.mean_toward_zero_ulp < 0 and s.mean_ulp < 0
    assert s.frac_toward_zero == 1.0
    # c = zero option
    s0, _ = nm.compare_semantics("volta", "exact", k=4, in_format=FP16, samples=1000, c="zero")
    assert s0.n == 1000


def test_compare_semantics_validation():
    with pytest.raises(ValueError, match="k must be an integer between 1 and 4096, not 0"):
        nm.compare_semantics("volta", k=0, in_format=FP16)
    with pytest.raises(ValueError, match="samples must be an integer between 1 and 100000000, not 0"):
        nm.compare_semantics("volta", k=4, in_format=FP16, samples=0)
    with pytest.raises(ValueError, match="c must be 'random' or 'zero', not 'x'"):
        nm.compare_semantics("volta", k=4, in_format=FP16, c="x")


def test_markdown_table():
    s, _ = nm.compare_semantics("exact", "exact", k=4, in_format=FP16, samples=10)
    text = nm.markdown_table({"exact vs exact, k=4": s})
    lines = text.strip().split("\n")
    assert lines[0].startswith("| comparison | results differ |") and len(lines) == 3
    assert lines[2].startswith("| exact vs exact, k=4 | 0.00% | 100.00% |")
