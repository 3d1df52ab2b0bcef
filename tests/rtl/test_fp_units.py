"""The shared building blocks on their own: Round (against golden.fp.encode, its exact
specification) and Unpack (against golden.fp.classify/decode, exhaustive for FP8)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from tensorforge.golden import fp as gfp
from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, TF32
from tensorforge.rtl.fp.round import Round
from tensorforge.rtl.fp.unpack import Unpack

from test_fp_support import operands, vector_count

MODES = ("rne", "rtz", "rdn", "rup", "rmm")


def _comb_eval(top, drive, sample, rows):
    """Evaluate a combinational design for every row: drive(ctx, row) then sample(ctx)."""
    results = []

    async def bench(ctx):
        for row in rows:
            drive(ctx, row)
            results.append(sample(ctx))

    sim = Simulator(top)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("fmt,sig_width,exp_min", [
    (FP16, 16, None),        # extra low bits, denormalizing shifter present
    (FP8_E4M3, 9, None),     # no infinities: overflow to NaN / max finite
    (BF16, 7, None),         # narrower than sig_bits + 2: missing low bits count as zero
    (FP16, 14, FP16.emin),   # caller guarantees exp >= emin: no shifter, subnormals via leading zeros
], ids=lambda x: str(x))
def test_round_matches_golden_encode(fmt, sig_width, exp_min):
    seed = fmt.width * 1000 + sig_width
    rng = np.random.default_rng(seed)
    n = vector_count(150)
    p = fmt.sig_bits
    sign = rng.integers(0, 2, n)
    sig = rng.integers(0, 1 << sig_width, n, dtype=np.int64)
    normalized = rng.random(n) < 0.7
    sig[normalized] |= 1 << (sig_width - 1)
    lo = fmt.emin - p - 3 if exp_min is None else exp_min
    exp = np.where(normalized, rng.integers(lo, fmt.emax + 3, n), rng.integers(lo, fmt.emin + 1, n))
    near_edges = rng.random(n) < 0.3                         # crowd the subnormal and overflow edges
    exp[near_edges] = rng.choice([fmt.emin - 1, fmt.emin, fmt.emax, fmt.emax + 1], int(near_edges.sum()))
    exp = np.maximum(exp, lo)
    exp[~normalized & (exp > fmt.emin)] = fmt.emin             # the input convention
    sticky = rng.random(n) < (0.3 if sig_width >= p + 2 else 0)   # the input convention
    zero = rng.random(n) < 0.03
    sig[zero], sticky[zero] = 0, False

    top = Module()
    units = []
    for mode in MODES:
        unit = Round(fmt=fmt, sig_width=sig_width, exp_width=10, rounding=mode, exp_min=exp_min)
        top.submodules[mode] = unit
        units.append(unit)
    assert units[0].denormalizes == (exp_min is None)

    def drive(ctx, row):
        for unit in units:
            ctx.set(unit.sign, row[0])
            ctx.set(unit.exp, row[1])
            ctx.set(unit.sig, row[2])
            ctx.set(unit.sticky, row[3])

    def sample(ctx):
        return [(ctx.get(u.bits), ctx.get(u.inexact) | ctx.get(u.underflow) << 1 | ctx.get(u.overflow) << 2)
                for u in units]

    rows = list(zip(sign.tolist(), exp.tolist(), sig.tolist(), sticky.tolist()))
    got = _comb_eval(top, drive, sample, rows)
    for k, mode in enumerate(MODES):
        bits, flags = gfp.encode(sign.astype(np.uint8), sig, exp - (sig_width - 1), fmt, mode, sticky=sticky)
        bad = [f"sign={rows[j][0]} exp={rows[j][1]} sig={rows[j][2]:#x} sticky={rows[j][3]}: "
               f"got {got[j][k][0]:#x}/{got[j][k][1]} expected {int(bits[j]):#x}/{int(flags[j])}"
               for j in range(n) if got[j][k] != (int(bits[j]), int(flags[j]))]
        assert not bad, f"Round {fmt} {mode} seed {seed}: {len(bad)} mismatches:\n" + "\n".join(bad[:8])


@pytest.mark.parametrize("fmt", [FP8_E4M3, FP8_E5M2, FP16, TF32], ids=str)
@pytest.mark.parametrize("normalize", [False, True], ids=["keep", "normalize"])
def test_unpack_matches_golden_classify_decode(fmt, normalize):
    if fmt.width <= 8:
        bits = np.arange(1 << fmt.width, dtype=np.uint64)             # exhaustive
    else:
        bits = operands(fmt, np.random.default_rng(fmt.width), vector_count(400), special_share=0.3)
    unit = Unpack(fmt=fmt, normalize=normalize)
    top = Module()
    top.submodules.unit = unit
    names = ("zero", "subnormal", "normal", "inf", "nan", "snan")
    got = _comb_eval(top, lambda ctx, b: ctx.set(unit.bits, b),
                     lambda ctx: (ctx.get(unit.sign), ctx.get(unit.exp), ctx.get(unit.sig),
                                  tuple(ctx.get(getattr(unit, c)) for c in names)),
                     [int(b) for b in bits])
    cls = gfp.classify(bits, fmt)
    sign, sig, exp = gfp.decode(bits, fmt)
    for j, (g_sign, g_exp, g_sig, g_cls) in enumerate(got):
        want_cls = (cls.zero[j], cls.subnormal[j], cls.normal[j], cls.inf[j], cls.nan[j], cls.snan[j])
        assert g_cls == tuple(int(x) for x in want_cls), f"{fmt} {int(bits[j]):#x}: classes {g_cls} vs {want_cls}"
        assert g_sign == int(sign[j]), f"{fmt} {int(bits[j]):#x}: sign"
        if cls.nan[j] or cls.inf[j]:
            continue
        # same exact value: g_sig * 2**(g_exp - man_bits) == sig * 2**exp
        lhs, rhs = g_exp - fmt.man_bits, int(exp[j])
        value_ok = (g_sig << max(lhs - rhs, 0)) == (int(sig[j]) << max(rhs - lhs, 0))
        assert value_ok, f"{fmt} {int(bits[j]):#x}: sig={g_sig:#x} exp={g_exp} vs sig={int(sig[j]):#x}*2**{rhs}"
        if normalize and not cls.zero[j]:
            assert g_sig >> fmt.man_bits == 1, f"{fmt} {int(bits[j]):#x}: not normalized"
        if not normalize and cls.subnormal[j]:
            assert g_exp == fmt.emin


@pytest.mark.parametrize("width,group", [(54, 8), (24, 4), (11, 2), (16, 16), (8, 8), (3, 2)])
def test_two_step_leading_zero_count_equals_one_step(width, group):
    """leading_zero_groups + merge_leading_zero_groups (the FMA's count/merge steps) give exactly
    leading_zero_count, for zero, every one-hot value, and seeded random values of every length."""
    from amaranth.hdl import Signal
    from tensorforge.rtl.fp.normalize import (leading_zero_count, leading_zero_groups,
                                              merge_leading_zero_groups)
    m = Module()
    value = Signal(width)
    one_step = leading_zero_count(m, value)
    zeros, counts = leading_zero_groups(m, value, group)
    two_step = merge_leading_zero_groups(m, zeros, counts, width)
    seed = width * 100 + group
    rng = np.random.default_rng(seed)
    rows = [0] + [1 << k for k in range(width)]
    for k in range(1, width + 1):                   # random values with their MSB at bit k-1
        rows += [int(x) | (1 << (k - 1)) for x in rng.integers(0, 1 << (k - 1), size=3, dtype=np.uint64)]
    results = _comb_eval(m, lambda ctx, row: ctx.set(value, row),
                         lambda ctx: (ctx.get(one_step), ctx.get(two_step)), rows)
    for row, (one, two) in zip(rows, results):
        expected = width - row.bit_length()
        assert (one, two) == (expected, expected), f"value={row:#x} seed={seed}"


def test_leading_zero_groups_rejects_bad_group():
    from amaranth.hdl import Signal
    from tensorforge.rtl.fp.normalize import leading_zero_groups
    m = Module()
    with pytest.raises(ValueError, match=r"^group must be a power of two >= 2, not 6$"):
        leading_zero_groups(m, Signal(12), 6)
    m._MustUse__silence = True     # built only to be rejected, never elaborated
