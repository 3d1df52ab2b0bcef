"""Autoflex: host-side exponent management for flexpoint tensors (Köster et al. 2017, Algorithms 1 and 2).

The flex datapath computes every output with an exponent chosen *before* the operation and reports the
overflow flag and Γ = max |output mantissa| (:mod:`tensorforge.golden.flex`). :class:`ExponentManager`
keeps, per named tensor (one name per recurring operation output, e.g. ``"layer1.z"``), the statistics
and predicts the exponent of the next computation.

Notation: N = ``fmt.man_bits``, κ the exponent a computation used, Γ its statistic; "overflow" below means
the hardware flag was set **or** Γ >= 2**(N-1) - 1 (the paper's and Nervana flexsim's test: a saturated
result has Γ at the clip, so the two agree whenever the flag is set).

**Algorithm 1 (initialization by repeated trial)**, while the tensor is not initialized, for each trial::

    overflow:                 κ <- κ + floor((N-1)/2)            # saturation hides how far off: jump half the width
    Γ < 2**(N-2):             κ <- κ + bitlen(Γ) - (N-1)         # jump so that Γ lands in [2**(N-2), 2**(N-1))
                              initialized iff Γ >= 2**max(floor((N-1)/2) - 2, 0)   # enough bits for a reliable jump
    otherwise (in range):     initialized
    after max_init_trials trials without success: κ <- fallback_exp, initialized   # e.g. an all-zero tensor

(for N = 16: jump +7 on overflow, "enough bits" is Γ >= 32). ``bitlen(0) = 0``. When clamping to the
format's exponent range leaves κ unchanged (nothing left to try) the tensor is marked initialized. The final
successful trial's maximum Γ·2**κ enters the history.

**Algorithm 2 (prediction)**, after initialization, for each computation::

    if overflow:  clear the history f;  Γ <- 2Γ                  # "add one bit of headroom"
    append Γ·2**κ to f (a deque of the last l values)
    χ <- α · (max(f) + β · std(f) + γ · 2**κ)                    # std: population (ddof = 0)
    κ_next <- ceil(log2 χ) - (N - 1)                             # smallest κ with 2**(κ + N - 1) >= χ

clamped to ``[fmt.exp_min, fmt.exp_max]`` (clamps are counted). χ is evaluated in float64;
``ceil(log2 χ)`` is computed exactly from ``math.frexp``. If χ == 0 (only possible with γ = 0) κ is kept.

Hyperparameters (all configurable): l = ``history_len`` = 16, α = ``alpha`` = 2, β = ``beta`` = 3,
γ = ``gamma`` = 100, ``initial_exp`` = -8 (flexsim's default "8.8 fixed point"), ``max_init_trials`` = 10,
``fallback_exp`` = 0.

Provenance and ambiguities (stated honestly): the structure (deque of the last l = 16 maxima, prediction from
their maximum and standard deviation plus headroom, history cleared and one extra bit on overflow,
initialization by repeated trial) is the paper's. The values l = 16, β = 3 and γ = 100 (in units of the
current scale 2**κ) and the initialization rules above are those of Nervana's reference code (neon flexsim,
as carried into ngraph-python's ``neonautoflex.py`` / ``flex2.py``: ``stats_queue_len 16``,
``num_std 3``, ``offset 100``). The paper text itself could not be consulted from this environment; the
multiplicative headroom α = 2 and the ``ceil(log2 χ) - N + 1`` form are taken from our reading of the
paper's Algorithm 2. Flexsim instead computes ``κ = floor(log2 χ') - (N - 2)`` with χ' = max + 3σ + 100·2**κ
(no α): that places χ' in ``[2**(N-2), 2**(N-1))`` while α = 2 with the ceiling places it in
``(2**(N-3), 2**(N-2)]``, i.e. flexsim keeps up to one bit less headroom. Also choices of ours: overflow
detection uses the hardware flag in addition to the Γ threshold; flexsim's extra branch for rarely-updated
("stale") tensors is omitted; ``bitlen(0)`` is 0 (flexsim's ``len(bin(0))`` treats 0 like 1).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

from .flex import FlexResult, FlexTensor, flex_add, flex_from_float, flex_gemm
from .formats import FLEX16_5, FlexFormat

__all__ = ["ExponentManager", "ceil_log2"]


def ceil_log2(x: float) -> int:
    """Exact ``ceil(log2 x)`` for a positive finite float."""
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"x must be a positive finite number, not {x!r}")
    m, e = math.frexp(x)            # x = m * 2**e, 0.5 <= m < 1
    return e - 1 if m == 0.5 else e


def _check_int(name, v, lo=None, hi=None, what=None):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or (lo is not None and v < lo) \
            or (hi is not None and v > hi):
        raise ValueError(f"{name} must be {what}, not {v!r}")
    return int(v)


def _check_real(name, v, lo, strict):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
            or (v <= lo if strict else v < lo):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {lo}, not {v!r}")
    return float(v)


class _State:
    __slots__ = ("exp", "initialized", "trials", "history", "overflows", "clamps", "exps", "gammas")

    def __init__(self, exp, history_len):
        self.exp = exp
        self.initialized = False
        self.trials = 0
        self.history = deque(maxlen=history_len)
        self.overflows = 0
        self.clamps = 0
        self.exps = []        # exponent of every result handed out (trajectory)
        self.gammas = []      # Γ of every observation


class ExponentManager:
    """Autoflex exponent manager (see the module docstring for the exact algorithms).

    Parameters
    ----------
    fmt : FlexFormat
        The flex format (flex16+5 by default); predicted exponents are clamped to its range.
    history_len : int
        l, the length of the statistics deque (>= 1). Default 16.
    alpha : float
        Multiplicative headroom factor (> 0). Default 2.
    beta : float
        Number of standard deviations added to the maximum (>= 0). Default 3.
    gamma : float
        Additive headroom in units of the current scale 2**κ (>= 0). Default 100.
    initial_exp : int
        Exponent of a tensor's first trial (clamped to the format). Default -8.
    max_init_trials : int
        Trials of Algorithm 1 before giving up and using ``fallback_exp`` (>= 1). Default 10.
    fallback_exp : int
        Exponent used when initialization gives up. Default 0.
    rounding : "rne" or "stochastic", rng : numpy.random.Generator
        Rounding of the operations run through :meth:`gemm`, :meth:`add` and :meth:`convert`.
    """

    def __init__(self, fmt: FlexFormat = FLEX16_5, *, history_len: int = 16, alpha: float = 2.0,
                 beta: float = 3.0, gamma: float = 100.0, initial_exp: int = -8, max_init_trials: int = 10,
                 fallback_exp: int = 0, rounding: str = "rne", rng=None):
        if not isinstance(fmt, FlexFormat):
            raise TypeError(f"fmt must be a FlexFormat, not {fmt!r}")
        self._fmt = fmt
        self._history_len = _check_int("history_len", history_len, 1, None, "a positive integer")
        self._alpha = _check_real("alpha", alpha, 0.0, True)
        self._beta = _check_real("beta", beta, 0.0, False)
        self._gamma = _check_real("gamma", gamma, 0.0, False)
        rng_txt = f"an integer between {fmt.exp_min} and {fmt.exp_max}"
        self._initial_exp = _check_int("initial_exp", initial_exp, fmt.exp_min, fmt.exp_max, rng_txt)
        self._fallback_exp = _check_int("fallback_exp", fallback_exp, fmt.exp_min, fmt.exp_max, rng_txt)
        self._max_init_trials = _check_int("max_init_trials", max_init_trials, 1, None, "a positive integer")
        if rounding not in ("rne", "stochastic"):
            raise ValueError(f"rounding must be one of rne, stochastic, not {rounding!r}")
        if rounding == "stochastic" and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator for stochastic rounding, not {rng!r}")
        self._rounding, self._rng = rounding, rng
        self._states: dict[str, _State] = {}

    # -- read-only configuration ------------------------------------------------------------------------
    fmt = property(lambda self: self._fmt)
    history_len = property(lambda self: self._history_len)
    alpha = property(lambda self: self._alpha)
    beta = property(lambda self: self._beta)
    gamma = property(lambda self: self._gamma)
    initial_exp = property(lambda self: self._initial_exp)
    max_init_trials = property(lambda self: self._max_init_trials)
    fallback_exp = property(lambda self: self._fallback_exp)

    def settings(self) -> dict:
        return {"algorithm": "autoflex", "format": str(self._fmt), "history_len": self._history_len,
                "alpha": self._alpha, "beta": self._beta, "gamma": self._gamma,
                "initial_exp": self._initial_exp, "max_init_trials": self._max_init_trials,
                "fallback_exp": self._fallback_exp, "rounding": self._rounding}

    # -- state --------------------------------------------------------------------------------------------
    def _state(self, name) -> _State:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {name!r}")
        st = self._states.get(name)
        if st is None:
            st = self._states[name] = _State(self._initial_exp, self._history_len)
        return st

    @property
    def names(self) -> list:
        return list(self._states)

    def exponent(self, name: str) -> int:
        """The exponent the next computation of ``name`` must use."""
        return self._state(name).exp

    def is_initialized(self, name: str) -> bool:
        return self._state(name).initialized

    def history(self, name: str) -> list:
        """The statistics deque f (floats Γ·2**κ, oldest first)."""
        return list(self._state(name).history)

    def trajectory(self, name: str) -> list:
        """Exponent of every result of ``name`` handed out by :meth:`compute` (and friends)."""
        return list(self._state(name).exps)

    def overflow_count(self, name: str) -> int:
        """Overflows observed after initialization."""
        return self._state(name).overflows

    def clamp_count(self, name: str) -> int:
        """Predictions clamped to the format's exponent range."""
        return self._state(name).clamps

    def _clamp(self, st, exp):
        c = min(max(exp, self._fmt.exp_min), self._fmt.exp_max)
        if c != exp:
            st.clamps += 1
        return c

    # -- the algorithms -----------------------------------------------------------------------------------
    def observe(self, name: str, gamma: int, overflow: bool = False) -> int:
        """Feed back the statistic Γ and the overflow flag of a computation of ``name`` that used
        :meth:`exponent` (name); returns (and stores) the exponent of the next computation."""
        if not isinstance(gamma, (int, np.integer)) or isinstance(gamma, bool) or gamma < 0:
            raise ValueError(f"gamma must be a non-negative integer, not {gamma!r}")
        gamma = int(gamma)
        st = self._state(name)
        n = self._fmt.man_bits
        ovf = bool(overflow) or gamma >= (1 << (n - 1)) - 1
        used = st.exp
        st.gammas.append(gamma)
        if not st.initialized:
            self._init_step(st, used, gamma, ovf, n)
        else:
            self._predict_step(st, used, gamma, ovf, n)
        return st.exp

    def _init_step(self, st, used, gamma, ovf, n):
        st.trials += 1
        if ovf:
            want, done = used + ((n - 1) >> 1), False
        elif gamma < (1 << (n - 2)):
            want = used + gamma.bit_length() - (n - 1)
            done = gamma >= (1 << max(((n - 1) >> 1) - 2, 0))
        else:
            want, done = used, True
        new = self._clamp(st, want)
        if not done and new == used:          # the clamp leaves nothing to try
            done = True
        if done:
            if not ovf:
                st.history.append(math.ldexp(gamma, used))
        elif st.trials >= self._max_init_trials:
            new, done = self._fallback_exp, True
        st.exp, st.initialized = new, done

    def _predict_step(self, st, used, gamma, ovf, n):
        if ovf:
            st.overflows += 1
            st.history.clear()
            gamma = 2 * gamma
        st.history.append(math.ldexp(gamma, used))
        f = np.array(st.history, dtype=np.float64)
        chi = self._alpha * (float(f.max()) + self._beta * float(f.std()) + self._gamma * math.ldexp(1.0, used))
        st.exp = used if chi == 0.0 else self._clamp(st, ceil_log2(chi) - (n - 1))

    # -- running operations -------------------------------------------------------------------------------
    def compute(self, name: str, op: Callable[[int], FlexResult]) -> FlexResult:
        """Run ``op(exp)`` with the managed exponent of ``name`` and feed its Γ/overflow back.

        While ``name`` is uninitialized the operation is repeated (Algorithm 1); when the final trial moved
        the exponent, the operation runs once more at the new exponent and that result is returned (not
        observed again). After initialization: one run, one :meth:`observe` (Algorithm 2); an overflowing
        (saturated) result is returned as is.
        """
        st = self._state(name)
        if st.initialized:
            res = op(st.exp)
            st.exps.append(st.exp)
            self.observe(name, res.gamma, res.any_overflow)
            return res
        while True:
            used = st.exp
            res = op(used)
            self.observe(name, res.gamma, res.any_overflow)
            if st.initialized:
                if st.exp != used:
                    res = op(st.exp)
                st.exps.append(st.exp)
                return res

    def gemm(self, name: str, a: FlexTensor, b: FlexTensor) -> FlexTensor:
        """``a @ b`` with the managed output exponent (:func:`flex_gemm`)."""
        return self.compute(name, lambda e: flex_gemm(a, b, e, rounding=self._rounding, rng=self._rng)).tensor

    def add(self, name: str, a: FlexTensor, b: FlexTensor, *, subtract: bool = False,
            b_exp_offset: int = 0) -> FlexTensor:
        """``a +- b * 2**b_exp_offset`` with the managed output exponent (:func:`flex_add`)."""
        return self.compute(name, lambda e: flex_add(a, b, e, subtract=subtract, b_exp_offset=b_exp_offset,
                                                     rounding=self._rounding, rng=self._rng)).tensor

    def convert(self, name: str, x) -> FlexTensor:
        """Host conversion of floats: the exponent comes from max |x| (:func:`flex_from_float`), not from a
        prediction; it is recorded in the trajectory of ``name``."""
        res = flex_from_float(x, self._fmt, rounding=self._rounding, rng=self._rng)
        st = self._state(name)
        st.exps.append(res.tensor.exp)
        st.gammas.append(res.gamma)
        return res.tensor
