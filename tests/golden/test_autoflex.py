"""Autoflex ExponentManager: Algorithms 1 and 2 step by step with hand-computed numbers."""

import math

import numpy as np
import pytest

from tensorforge.golden.autoflex import ExponentManager, ceil_log2
from tensorforge.golden.flex import flex_from_float, flex_gemm
from tensorforge.golden.formats import FlexFormat


def initialized_manager(exp=-10, stat=20000, **kw):
    """A manager whose tensor "t" was initialized by one in-range trial at ``exp`` (Γ in [2**14, 2**15-1))."""
    m = ExponentManager(initial_exp=exp, **kw)
    assert m.observe("t", stat) == exp
    assert m.is_initialized("t")
    assert m.history("t") == [stat * 2.0 ** exp]
    return m


def test_ceil_log2_exact():
    assert [ceil_log2(x) for x in (1.0, 2.0, 3.0, 4.0, 0.5, 0.75, 128.19140625, 2.0 ** -30)] == \
        [0, 1, 2, 2, -1, 0, 8, -30]
    with pytest.raises(ValueError, match="x must be a positive finite number, not 0.0"):
        ceil_log2(0.0)


def test_injected_overflow_follows_algorithm_2_exactly():
    m = initialized_manager(exp=-10, stat=20000)
    # overflow at κ = -10 with Γ = 32767 (saturated): history cleared, Γ doubled (one extra bit), then
    # χ = 2 * (2*32767*2**-10 + 3*0 + 100*2**-10) = 2 * (63.998046875 + 0.09765625) = 128.19140625,
    # ceil(log2 χ) = 8, κ = 8 - 15 = -7
    assert m.observe("t", 32767, overflow=True) == -7
    assert m.history("t") == [63.998046875]
    assert m.overflow_count("t") == 1
    assert m.exponent("t") == -7


def test_gamma_at_the_clip_counts_as_overflow_even_without_flag():
    m = initialized_manager(exp=-10)
    assert m.observe("t", 32767, overflow=False) == -7     # same as the flagged case above
    assert m.overflow_count("t") == 1
    m = initialized_manager(exp=-10)
    m.observe("t", 32766)                                  # just below: an ordinary statistic
    assert m.overflow_count("t") == 0 and len(m.history("t")) == 2
    m = initialized_manager(exp=-10)
    # Γ = 32768 (a mantissa saturated at -32768): f = [64.0], χ = 2 * (64 + 100/1024) = 128.1953125 -> -7
    assert m.observe("t", 32768, overflow=True) == -7
    assert m.history("t") == [64.0]


def test_prediction_formula_hand_case():
    m = initialized_manager(exp=-10, stat=20000)          # f = [19.53125]
    # Γ = 16384 at κ = -10 -> f = [19.53125, 16.0]; max 19.53125; population std 1.765625
    # χ = 2 * (19.53125 + 3 * 1.765625 + 100 * 2**-10) = 49.8515625 -> ceil(log2) = 6 -> κ = 6 - 15 = -9
    assert m.observe("t", 16384) == -9
    assert m.history("t") == [19.53125, 16.0]
    # next at κ = -9: Γ = 8000 -> 15.625; f = [19.53125, 16, 15.625]
    f = np.array([19.53125, 16.0, 15.625])
    chi = 2 * (f.max() + 3 * f.std() + 100 * 2.0 ** -9)
    assert m.observe("t", 8000) == math.ceil(math.log2(chi)) - 15 == -9


def test_hyperparameters_are_used():
    m = initialized_manager(exp=-10, stat=20000, alpha=1.0, beta=0.0, gamma=0.0)
    # χ = max(f) = 19.53125 -> ceil(log2) = 5 -> κ = -10: the maximum fills [2**14, 2**15)
    assert m.observe("t", 20000) == -10
    m = initialized_manager(exp=-10, stat=20000, alpha=8.0)
    # χ = 8 * (19.53125 + 0 + 100/1024) = 157.03125 -> 8 -> κ = -7
    assert m.observe("t", 20000) == -7


def test_history_is_a_deque_of_length_l():
    m = initialized_manager(exp=-10, stat=20000, history_len=4, gamma=0.0)
    appended = [20000 * 2.0 ** -10]
    for g in (16384, 16385, 16386, 16387, 16388):
        appended.append(g * 2.0 ** m.exponent("t"))
        m.observe("t", g)
    assert m.history("t") == appended[-4:]


def test_initialization_algorithm_1():
    m = ExponentManager()                       # initial κ = -8, N = 16
    assert m.exponent("a") == -8 and not m.is_initialized("a")
    assert m.observe("a", 32767, overflow=True) == -8 + 7    # overflow: half the width
    assert not m.is_initialized("a")
    assert m.observe("a", 100) == -1 + 7 - 15               # bitlen(100) = 7: jump, 100 >= 32: done
    assert m.is_initialized("a") and m.history("a") == [100 * 2.0 ** -1]

    m.observe("b", 20)                           # bitlen 5: κ = -8 + 5 - 15 = -18 -> clamped to -16, 20 < 32
    assert m.exponent("b") == -16 and not m.is_initialized("b") and m.clamp_count("b") == 1
    m.observe("b", 20)                           # wants -26, the clamp leaves -16: nothing left to try
    assert m.exponent("b") == -16 and m.is_initialized("b")

    m.observe("c", 20000)                        # in range at once
    assert m.exponent("c") == -8 and m.is_initialized("c")

    m.observe("d", 16383)                        # just below 2**14: jump by 14 - 15 = -1
    assert m.exponent("d") == -9 and m.is_initialized("d")


def test_initialization_gives_up_after_max_trials():
    m = ExponentManager(FlexFormat(16, 16), max_init_trials=10, fallback_exp=3)
    for trial in range(9):
        m.observe("z", 0)                        # all-zero: κ drops by 15 per trial, never initialized
        assert not m.is_initialized("z") and m.exponent("z") == -8 - 15 * (trial + 1)
    m.observe("z", 0)
    assert m.is_initialized("z") and m.exponent("z") == 3


def test_compute_runs_algorithm_1_then_2_with_real_gemm():
    rng = np.random.default_rng(1)
    a = flex_from_float(rng.normal(size=(8, 16))).tensor
    b = flex_from_float(rng.normal(size=(16, 4))).tensor
    m = ExponentManager()
    calls = []

    def op(e):
        calls.append(e)
        return flex_gemm(a, b, e)

    res = m.compute("y", op)
    # the trial at -8 was under-utilized: one jump, then a final run at the new exponent
    gamma0 = flex_gemm(a, b, -8).gamma
    assert calls == [-8, -8 + gamma0.bit_length() - 15]
    assert res.tensor == flex_gemm(a, b, calls[-1]).tensor
    assert 1 << 14 <= res.gamma < (1 << 15) - 1
    assert m.trajectory("y") == [calls[-1]]
    # Algorithm 2 from now on: one run per call, exponent = prediction
    e_next = m.exponent("y")
    res2 = m.compute("y", op)
    assert calls[-1] == e_next and res2.tensor.exp == e_next and len(calls) == 3


def test_overflow_after_init_returns_saturated_result_and_raises_exponent():
    m = ExponentManager()
    x = flex_from_float(np.full((1, 4), 0.5)).tensor           # exp -15, man 16384
    w_small = flex_from_float(np.full((4, 1), 0.001)).tensor
    m.compute("y", lambda e: flex_gemm(x, w_small, e))
    e0 = m.exponent("y")
    w_big = flex_from_float(np.full((4, 1), 1.0)).tensor        # 1000x larger product: saturates
    res = m.compute("y", lambda e: flex_gemm(x, w_big, e))
    assert res.any_overflow and res.tensor.exp == e0 and res.gamma == 32767
    assert m.overflow_count("y") == 1 and len(m.history("y")) == 1
    chi = 2 * (2 * 32767 * 2.0 ** e0 + 100 * 2.0 ** e0)
    assert m.exponent("y") == ceil_log2(chi) - 15


def test_parameter_validation_messages():
    with pytest.raises(ValueError, match="history_len must be a positive integer, not 0"):
        ExponentManager(history_len=0)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0.0, not 0"):
        ExponentManager(alpha=0)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0.0, not -1"):
        ExponentManager(beta=-1)
    with pytest.raises(ValueError, match="initial_exp must be an integer between -16 and 15, not 20"):
        ExponentManager(initial_exp=20)
    with pytest.raises(TypeError, match="fmt must be a FlexFormat"):
        ExponentManager("flex16+5")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        ExponentManager(rounding="stochastic")
    with pytest.raises(ValueError, match="gamma must be a non-negative integer, not -1"):
        ExponentManager().observe("t", -1)
