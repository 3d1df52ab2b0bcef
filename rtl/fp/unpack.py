"""Unpack and classify one floating-point operand."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .normalize import Normalize
from .params import check_bool, check_float_format, silence_on_error

__all__ = ["Unpack", "unpack_exp_range"]


def unpack_exp_range(fmt, normalize: bool) -> tuple[int, int]:
    """(min, max) of the ``exp`` port of ``Unpack(fmt, normalize)`` over finite inputs."""
    lo = fmt.emin - (fmt.man_bits if normalize else 0)
    return lo, fmt.emax


class Unpack(wiring.Component):
    """Split a floating-point bit pattern into sign, exponent and significand, and classify it.

    Parameters
    ----------
    fmt : FloatFormat
        Operand format (TF32: the ``pad_bits`` low bits are ignored).
    normalize : bool
        False (default): a subnormal keeps its stored significand (MSB clear) with
        exponent ``emin``. True: subnormals are normalized by a leading-zero count and
        left shift, so ``sig`` always has its MSB set for nonzero finite inputs and
        ``exp`` extends down to ``emin - man_bits``. Products of normalized
        significands lie in [1, 4), which keeps the FMA's alignment window narrow.

    Ports
    -----
    bits : In(fmt.width)
        The operand.
    sign : Out(1)
    exp : Out(signed(exp_width))
        Unbiased exponent of the significand's MSB (the hidden bit):
        value = (-1)**sign * sig * 2**(exp - man_bits). Zero gives ``emin`` (or, when
        normalizing, ``emin - man_bits``). Unspecified for inf/NaN.
    sig : Out(fmt.sig_bits)
        Significand with the hidden bit at the MSB. Zero for zeros.
    zero, subnormal, normal, inf, nan, snan : Out(1)
        Classes. ``normal`` covers finite nonzero non-subnormal values. ``snan`` (exponent
        all ones, fraction MSB clear, fraction nonzero) implies ``nan``. Formats without
        infinities (e4m3fn): ``inf`` is never set, the all-ones exponent is an ordinary
        binade except S.1111.111, the only NaN, which counts as quiet.

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, fmt, normalize=False):
        self._fmt = check_float_format("fmt", fmt)
        self._normalize = check_bool("normalize", normalize)
        lo, hi = unpack_exp_range(fmt, normalize)
        self._exp_width = max(abs(lo), abs(hi) + 1).bit_length() + 1
        super().__init__({
            "bits": In(fmt.width),
            "sign": Out(1), "exp": Out(signed(self._exp_width)), "sig": Out(fmt.sig_bits),
            "zero": Out(1), "subnormal": Out(1), "normal": Out(1),
            "inf": Out(1), "nan": Out(1), "snan": Out(1),
        })

    fmt = property(lambda self: self._fmt)
    normalize = property(lambda self: self._normalize)
    exp_width = property(lambda self: self._exp_width, doc="Width of the signed ``exp`` port.")

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        body = self.bits[fmt.pad_bits:]
        frac = body[:fmt.man_bits]
        efield = body[fmt.man_bits:fmt.man_bits + fmt.exp_bits]
        sign = body[-1]
        e_zero, e_ones, f_zero = Signal(), Signal(), Signal()
        m.d.comb += [e_zero.eq(efield == 0), e_ones.eq(efield == fmt.exp_max_field), f_zero.eq(frac == 0)]
        if fmt.has_inf:
            inf = e_ones & f_zero
            nan = e_ones & ~f_zero
            snan = nan & ~frac[-1]
            special = e_ones
        else:
            inf = 0
            nan = e_ones & (frac == (1 << fmt.man_bits) - 1)
            snan = 0
            special = nan
        m.d.comb += [
            self.sign.eq(sign),
            self.zero.eq(e_zero & f_zero),
            self.subnormal.eq(e_zero & ~f_zero),
            self.normal.eq(~e_zero & ~special),
            self.inf.eq(inf), self.nan.eq(nan), self.snan.eq(snan),
        ]
        sig = Cat(frac, ~e_zero)
        # exponent of the hidden bit: field - bias for normals, emin (= 1 - bias) for field 0
        unbiased = Signal(signed(self._exp_width))
        m.d.comb += unbiased.eq((efield | e_zero) - fmt.bias)  # field 0 behaves as field 1
        if not self._normalize:
            m.d.comb += [self.sig.eq(sig), self.exp.eq(unbiased)]
        else:
            m.submodules.normalize = norm = Normalize(width=fmt.sig_bits, exp_width=self._exp_width)
            m.d.comb += [
                norm.exp.eq(unbiased), norm.sig.eq(sig), norm.mark_allowed.eq(norm.allowed), norm.count_marker.eq(norm.marker),
                norm.shift_sig.eq(sig), norm.shift_exp.eq(unbiased), norm.shift_amount.eq(norm.amount),
                self.sig.eq(norm.norm_sig), self.exp.eq(norm.norm_exp),
            ]
        return m
