"""The pipelined multiply-add skeleton shared by FMA, Mul and Add."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..pipeline import StallPipeline, plan_cuts
from .align_add import AlignAdd, trailing_zero_count
from .multiplier import Multiplier
from .normalize import Normalize, leading_zero_groups, merge_leading_zero_groups
from .params import check_bool, check_float_format, check_rounding, silence_on_error
from .round import Round
from .unpack import Unpack, unpack_exp_range

__all__ = ["MulAdd", "FLAG_WIDTH"]

#: Width of the ``flags`` output field: bit0 inexact, bit1 underflow, bit2 overflow,
#: bit3 infinite (never set by these cores), bit4 invalid (Berkeley TestFloat order).
FLAG_WIDTH = 5

# Relative combinational delay of each step (roughly ns on ECP5), used to place registers.
_WEIGHTS = {
    "unpack": 4.0,      # classify + normalize subnormal a, b (LZC + shift) + exponent sums + tz(c)
    "multiply": 7.0,    # DSP multiplier (ECP5 times it as logic) || alignment plan + addend sticky
    "align": 5.0,       # addend right shift into the window || normalizer exponent limit
    "add": 4.0,         # two parallel carry chains + select || one-hot limit marker
    "count": 4.0,       # leading zeros of (sum | marker) || trailing zeros of the sum
    "shift": 4.0,       # normalizing left shift || sticky compare
    "normalize": 3.0,   # product-only path: 1-bit normalize
    "round": 5.0,       # round increment, overflow/tininess, pack, special-value mux
}

# The FMA (multiply and accumulate) splits two steps further: the subnormal normalization of
# a and b (count in "unpack", shift + exponent correction in "prenormalize", so the multiplier
# has registers right before and after it), and the sum's leading/trailing-zero counts (per
# 8-bit group in "count", merged in "merge"). Weights: roughly the register-to-register delays
# (ns) nextpnr reports on ECP5-25k speed 6 for FP16xFP16+FP32 with every boundary registered;
# unpack and prenormalize are weighted so that stages = 8 merges those two (not the multiply).
_FMA_WEIGHTS = {
    "unpack": 3.5,        # classify a, b, c + leading zeros of the significands + biased exponent sum + tz(c)
    "prenormalize": 3.5,  # shift subnormal a, b significands; product exponent; addend half of the plan
    "multiply": 7.0,      # DSP multiplier alone between registers || plan (one compare per output + mux)
    "align": 7.0,         # addend right shift into the window || normalizer exponent limit
    "add": 7.0,           # two parallel carry chains + select || one-hot limit marker
    "count": 5.0,         # per-group leading zeros of (sum | marker), trailing zeros of the sum
    "merge": 4.0,         # merge the group counts
    "shift": 7.0,         # normalizing left shift || sticky compare
    "round": 7.0,         # round increment, overflow/tininess, pack, special-value mux
}

#: Group width of the FMA's two-step leading/trailing-zero counts of the sum.
_COUNT_GROUP = 8


def _biased_exponent(m, bits, fmt, name):
    """The exponent field of ``bits`` with field 0 read as 1 (subnormals and zeros are at emin):
    Unpack's unbiased exponent plus ``fmt.bias``, without the subtraction."""
    field = bits[fmt.pad_bits + fmt.man_bits:fmt.pad_bits + fmt.man_bits + fmt.exp_bits]
    sig = Signal(fmt.exp_bits, name=name)
    m.d.comb += sig.eq(field | (field == 0))
    return sig


def _named(m, value, name, signed_width=None):
    """Drive a named Signal from ``value`` (readable Verilog; no duplicated subexpressions in simulation)."""
    sig = Signal(signed(signed_width) if signed_width else 1, name=name)
    m.d.comb += sig.eq(value)
    return sig


class MulAdd(wiring.Component):
    """Pipelined ``d = round(a*b + c)`` skeleton: unpack -> multiply -> align/add -> normalize -> round.

    This is the datapath of :class:`~tensorforge.rtl.fp.fma.FMA`, :class:`~tensorforge.rtl.fp.mul.Mul`
    (no addend) and :class:`~tensorforge.rtl.fp.add.Add` (no multiplier: the product is the
    operand ``a`` itself). Users normally instantiate those; see them for the port layouts.

    Parameters
    ----------
    in_format : FloatFormat
        Format of the product operands (``a`` and, with ``multiply``, ``b``).
    acc_format : FloatFormat
        Format of the addend and of the result ``d``.
    rounding : str
        rne, rtz, rdn, rup or rmm (fixed at generation time).
    stages : int
        Pipeline registers, 0 .. ``len(steps)``; latency = ``stages`` cycles.
    multiply : bool
        True: product operand ``a * b``. False: product operand is ``a`` alone.
    accumulate : bool
        True: add the addend field. False: ``d = round(product)``.
    fields : dict
        Payload field names: ``{"a": ..., "b": ..., "c": ...}`` (only those in use).
    """

    @silence_on_error
    def __init__(self, *, in_format, acc_format, rounding, stages, multiply=True, accumulate=True,
                 fields=None):
        self._in = check_float_format("in_format", in_format)
        self._acc = check_float_format("acc_format", acc_format)
        self._rounding = check_rounding(rounding)
        self._multiply = check_bool("multiply", multiply)
        self._accumulate = check_bool("accumulate", accumulate)
        if not (multiply or accumulate):
            raise ValueError("multiply and accumulate cannot both be False")
        names = {"a": "a", "b": "b", "c": "c"}
        names.update(fields or {})
        self._names = names
        self._steps = self.steps_for(multiply=multiply, accumulate=accumulate)
        self._split = multiply and accumulate
        self._weights = tuple((_FMA_WEIGHTS if self._split else _WEIGHTS)[s] for s in self._steps)
        self._cuts = plan_cuts(list(self._weights), stages)   # validates stages
        self._stages = stages
        in_layout = {names["a"]: in_format.width}
        if multiply:
            in_layout[names["b"]] = in_format.width
        if accumulate:
            in_layout[names["c"]] = acc_format.width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(in_layout))),
            "o": Out(stream.Signature(data.StructLayout({"d": acc_format.width, "flags": FLAG_WIDTH}))),
        })

    @staticmethod
    def steps_for(*, multiply: bool, accumulate: bool) -> tuple[str, ...]:
        """The combinational steps (pipeline boundaries) of a configuration."""
        if not accumulate:
            return ("unpack", "multiply", "normalize", "round")
        if not multiply:
            return ("unpack", "align", "add", "count", "shift", "round")
        return ("unpack", "prenormalize", "multiply", "align", "add", "count", "merge", "shift", "round")

    in_format = property(lambda self: self._in)
    acc_format = property(lambda self: self._acc)
    rounding = property(lambda self: self._rounding)
    stages = property(lambda self: self._stages)
    steps = property(lambda self: self._steps, doc="Names of the combinational steps, in order.")
    cuts = property(lambda self: self._cuts, doc="1-based step boundaries that carry a register bank.")
    weights = property(lambda self: self._weights, doc="Relative delay estimate of each step (places the cuts).")
    latency = property(lambda self: self._stages, doc="Cycles from input handshake to output valid.")
    initiation_interval = property(lambda self: 1, doc="Cycles between accepted inputs (fully pipelined).")

    # -- static sizing ---------------------------------------------------------------------
    def _sizes(self):
        fi, fa = self._in, self._acc
        pi, pa = fi.sig_bits, fa.sig_bits
        lo_i, hi_i = unpack_exp_range(fi, True)
        if self._multiply:
            pw = 2 * pi
            p_lsb_min, p_lsb_max = 2 * lo_i - 2 * (pi - 1), 2 * hi_i - 2 * (pi - 1)
        else:
            pw = pi
            p_lsb_min, p_lsb_max = lo_i - (pi - 1), hi_i - (pi - 1)
        c_lsb_min, c_lsb_max = fa.emin - fa.man_bits, fa.emax - fa.man_bits
        span = (abs(p_lsb_min) + abs(p_lsb_max) + abs(c_lsb_min) + abs(c_lsb_max)
                + 4 * (pw + pa) + abs(fa.emin) + fa.emax + 16)
        exp_width = (2 * span).bit_length() + 1
        return pw, p_lsb_min, exp_width

    def elaborate(self, platform):
        m = Module()
        fi, fa = self._in, self._acc
        pi, pa = fi.sig_bits, fa.sig_bits
        pw, p_lsb_min, ew = self._sizes()
        names = self._names
        mode = self._rounding
        pipe = StallPipeline(m, i=self.i, o=self.o, stages=self._stages,
                             weights=list(self._weights), name="p")
        payload = self.i.payload

        # ---- step: unpack / classify / special values / exponents ---------------------------
        split = self._split
        # FMA: a and b are unpacked raw here; their subnormal normalization (leading-zero
        # count now, shift and exponent correction in the "prenormalize" step) gives exactly
        # the values of Unpack(normalize=True)
        m.submodules.unpack_a = ua = Unpack(fmt=fi, normalize=not split)
        m.d.comb += ua.bits.eq(getattr(payload, names["a"]))
        nan = ua.nan
        snan = ua.snan
        if self._multiply:
            m.submodules.unpack_b = ub = Unpack(fmt=fi, normalize=not split)
            m.d.comb += ub.bits.eq(getattr(payload, names["b"]))
            nan = nan | ub.nan
            snan = snan | ub.snan
            zero_times_inf = (ua.inf & ub.zero) | (ua.zero & ub.inf)
            prod_inf = (ua.inf | ub.inf) & ~(ua.nan | ub.nan) & ~zero_times_inf
            p_sign = ua.sign ^ ub.sign
            p_zero = ua.zero | ub.zero
            if split:
                # one short carry chain here; the biases and the subnormal corrections are
                # subtracted in the "prenormalize" step
                p_exp = (_biased_exponent(m, getattr(payload, names["a"]), fi, "a_exp_biased")
                         + _biased_exponent(m, getattr(payload, names["b"]), fi, "b_exp_biased"))
            else:
                p_exp = ua.exp + ub.exp - 2 * (pi - 1)
        else:
            zero_times_inf = Const(0, 1)
            prod_inf = ua.inf
            p_sign = ua.sign
            p_zero = ua.zero
            p_exp = ua.exp - (pi - 1)
        invalid = snan | zero_times_inf
        if self._accumulate:
            m.submodules.unpack_c = uc = Unpack(fmt=fa, normalize=False)
            m.d.comb += uc.bits.eq(getattr(payload, names["c"]))
            nan = nan | uc.nan
            invalid = invalid | uc.snan
            eff_sub = p_sign ^ uc.sign
            inf_minus_inf = prod_inf & uc.inf & eff_sub
            invalid = invalid | inf_minus_inf
            any_inf = prod_inf | uc.inf
            inf_sign = Mux(prod_inf, p_sign, uc.sign)
            # exact zero sum: -0 only when both addends are -0; x + (-x) = +0 (-0 in RDN)
            zero_sign = Mux(eff_sub, int(mode == "rdn"), p_sign)
            if split:
                c_exp = _biased_exponent(m, getattr(payload, names["c"]), fa, "c_exp_biased") - (fa.bias + pa - 1)
            else:
                c_exp = uc.exp - (pa - 1)
        else:
            any_inf = prod_inf
            inf_sign = p_sign
            zero_sign = p_sign
        if not fa.has_inf:
            invalid = invalid | (prod_inf & ~nan)  # an infinity acc_format cannot hold (Mul only)
        invalid = _named(m, invalid, "invalid")
        is_nan = _named(m, nan | invalid, "is_nan")
        is_inf = _named(m, any_inf & ~is_nan, "is_inf")
        p_sign = _named(m, p_sign, "p_sign")
        p_exp = _named(m, p_exp, "p_exp", ew)
        if self._accumulate:
            eff_sub = _named(m, eff_sub, "eff_sub")
            c_exp = _named(m, c_exp, "c_exp", ew)

        v = {"is_nan": is_nan, "is_inf": is_inf, "inf_sign": inf_sign, "invalid": invalid,
             "p_sign": p_sign, "zero_sign": zero_sign, "p_zero": p_zero, "p_exp": p_exp, "a_sig": ua.sig}
        if self._multiply:
            v["b_sig"] = ub.sig
        if self._accumulate:
            v.update(eff_sub=eff_sub, c_sig=uc.sig, c_exp=c_exp, c_zero=uc.zero,
                     c_tz=trailing_zero_count(m, uc.sig))
            m.submodules.align_add = aa = AlignAdd(product_width=pw, addend_width=pa, exp_width=ew)
        if split:
            # leading zeros of the raw significands (the count half of Unpack's normalizer)
            prenorm = []
            for key, u in (("a", ua), ("b", ub)):
                m.submodules[f"prenormalize_{key}"] = pn = Normalize(width=pi, exp_width=u.exp_width)
                m.d.comb += [pn.exp.eq(u.exp), pn.mark_allowed.eq(pn.allowed), pn.sig.eq(u.sig),
                             pn.count_marker.eq(pn.marker)]
                v[f"{key}_lz"] = pn.amount
                prenorm.append(pn)
        specials = ("is_nan", "is_inf", "inf_sign", "invalid", "zero_sign")

        def keep(values, *extra):
            return {k: values[k] for k in specials + extra}

        addend_plan = ("c_far", "c_beyond", "c_sticky_exp", "c_top")

        def plan_addend(values):
            """AlignAdd's addend plan from c_exp and c_tz: returns values without those two."""
            m.d.comb += [aa.c_exp.eq(values["c_exp"]), aa.c_tz.eq(values["c_tz"])]
            out = {k: x for k, x in values.items() if k not in ("c_exp", "c_tz")}
            out.update({k: getattr(aa, k) for k in addend_plan})
            return out

        def plan(values):
            """AlignAdd's plan (shift, sticky, top_exp) from p_exp and the addend plan."""
            m.d.comb += [aa.p_exp.eq(values["p_exp"]), aa.p_zero.eq(values["p_zero"]),
                         aa.c_zero.eq(values["c_zero"])]
            m.d.comb += [getattr(aa, f"plan_{k}").eq(values[k]) for k in addend_plan]
            values["shift"], values["sticky"], values["top_exp"] = aa.shift, aa.sticky, aa.top_exp

        if not self._multiply:
            # Add: the alignment plan (exponent difference) fits in the unpack step
            v = plan_addend(v)
            plan(v)
            v = pipe.boundary(keep(v, "p_sign", "eff_sub", "a_sig", "c_sig", "shift", "sticky", "top_exp"))
            v["product"] = v["a_sig"]
        else:
            v = pipe.boundary(v)
            if split:
                # ---- step: prenormalize: shift subnormal significands, correct the exponent -----
                for key, pn in zip(("a", "b"), prenorm):
                    m.d.comb += [pn.shift_sig.eq(v[f"{key}_sig"]), pn.shift_exp.eq(0),
                                 pn.shift_amount.eq(v[f"{key}_lz"])]
                    v[f"{key}_sig"] = pn.norm_sig
                unbiased = _named(m, v["p_exp"] - (2 * fi.bias + 2 * (pi - 1)), "p_exp_unbiased", ew)
                v["p_exp"] = _named(m, unbiased - (v["a_lz"] + v["b_lz"]), "p_exp_norm", ew)
                # the addend's part of the alignment plan (constants folded into c_exp)
                v = plan_addend(v)
                v = pipe.boundary({k: x for k, x in v.items() if k not in ("a_lz", "b_lz")})
            # ---- step: multiply (+ alignment plan in parallel) -----------------------------------
            m.submodules.multiplier = mul = Multiplier(a_width=pi, b_width=pi)
            m.d.comb += [mul.a.eq(v["a_sig"]), mul.b.eq(v["b_sig"])]
            v["product"] = mul.p
            if self._accumulate:
                plan(v)
                v = pipe.boundary(keep(v, "p_sign", "eff_sub", "product", "c_sig", "shift", "sticky", "top_exp"))
            else:
                v = pipe.boundary(keep(v, "p_sign", "product", "p_exp"))

        if self._accumulate:
            ww = aa.window_width
            # ---- step: align (+ the normalizer's exponent limit in parallel) --------------------
            m.d.comb += [aa.align_c_sig.eq(v["c_sig"]), aa.align_shift.eq(v["shift"]),
                         aa.align_sticky.eq(v["sticky"])]
            m.submodules.normalize = norm = Normalize(width=ww, exp_width=ew, exp_floor=fa.emin)
            m.d.comb += norm.exp.eq(v["top_exp"])
            v["aligned"], v["allowed"] = aa.aligned, norm.allowed
            v = pipe.boundary(keep(v, "p_sign", "eff_sub", "product", "aligned", "top_exp", "allowed"))
            # ---- step: add (+ the limit's one-hot marker in parallel) ---------------------------
            m.d.comb += [aa.product.eq(v["product"]), aa.add_aligned.eq(v["aligned"]),
                         aa.eff_sub.eq(v["eff_sub"]), norm.mark_allowed.eq(v["allowed"])]
            v["sum"], v["sign"], v["marker"] = aa.sum, v["p_sign"] ^ aa.negated, norm.marker
            v = pipe.boundary(keep(v, "sum", "sign", "top_exp", "marker"))
            # ---- steps: count leading zeros, then normalizing shift ---------------------------
            keep_bits = pa + 2                      # significand + round bit + one more for tininess
            low_bits = ww - keep_bits               # folded into a sticky bit for Round
            # the sticky bit of the normalized value comes from the sum's trailing zeros (counted in
            # parallel with the leading zeros) instead of an OR over the shifter's low bits:
            # sum << amount has a one below bit low_bits iff trailing_zeros + amount < low_bits
            if not split:
                m.d.comb += [norm.sig.eq(v["sum"]), norm.count_marker.eq(v["marker"])]
                v["amount"], v["zero"] = norm.amount, norm.zero
                if low_bits > 0:
                    v["tz"] = trailing_zero_count(m, v["sum"], name="sum_tz")
            else:
                # FMA: both counts per group of bits in the "count" step, merged in "merge"
                # (exactly Normalize's count half: leading zeros of sum | marker, capped by the marker)
                marked = Signal(ww, name="sum_marked")
                m.d.comb += marked.eq(v["sum"] | v["marker"])
                v["lz_groups"] = leading_zero_groups(m, marked, _COUNT_GROUP, name="sum_lzg")
                v["zero"] = _named(m, v["sum"] == 0, "sum_zero")
                if low_bits > 0:
                    reversed_sum = Cat(*[v["sum"][j] for j in reversed(range(ww))])
                    v["tz_groups"] = leading_zero_groups(m, reversed_sum, _COUNT_GROUP, name="sum_tzg")
                v = pipe.boundary(keep(v, "sum", "sign", "top_exp", "zero", "lz_groups",
                                       *(("tz_groups",) if low_bits > 0 else ())))
                v["amount"] = merge_leading_zero_groups(m, *v["lz_groups"], ww, name="sum_lz")
                if low_bits > 0:
                    v["tz"] = merge_leading_zero_groups(m, *v["tz_groups"], ww, name="sum_tz")
            v = pipe.boundary(keep(v, "sum", "sign", "top_exp", "amount", "zero", *(("tz",) if low_bits > 0 else ())))
            m.d.comb += [norm.shift_sig.eq(v["sum"]), norm.shift_exp.eq(v["top_exp"]),
                         norm.shift_amount.eq(v["amount"])]
            v["exp"] = norm.norm_exp
            if low_bits > 0:
                v["sig"] = norm.norm_sig[low_bits:]
                v["sticky"] = _named(m, v["tz"] + v["amount"] < low_bits, "low_sticky")
                sig_width = keep_bits
            else:
                v["sig"], v["sticky"] = norm.norm_sig, 0
                sig_width = ww
            v = pipe.boundary(keep(v, "sig", "sticky", "exp", "sign", "zero"))
            far = pw + 2
            top_min = min(p_lsb_min, fa.emin - fa.man_bits - far) + aa.window_top
        else:
            # ---- step: normalize the product (it has at most one leading zero) -------------------
            m.submodules.normalize = norm = Normalize(width=pw, exp_width=ew, max_shift=1, exp_floor=fa.emin)
            top = v["p_exp"] + (pw - 1)
            m.d.comb += [norm.sig.eq(v["product"]), norm.exp.eq(top), norm.mark_allowed.eq(norm.allowed),
                         norm.count_marker.eq(norm.marker),
                         norm.shift_sig.eq(v["product"]), norm.shift_exp.eq(top),
                         norm.shift_amount.eq(norm.amount)]
            v["sig"], v["exp"], v["sign"], v["zero"] = norm.norm_sig, norm.norm_exp, v["p_sign"], norm.zero
            v["sticky"] = 0
            v = pipe.boundary(keep(v, "sig", "sticky", "exp", "sign", "zero"))
            sig_width = pw
            top_min = p_lsb_min + pw - 1

        # ---- step: round + special values -------------------------------------------------------
        m.submodules.round = rnd = Round(fmt=fa, sig_width=sig_width, exp_width=ew, rounding=mode,
                                         exp_min=min(top_min, fa.emin))
        m.d.comb += [
            rnd.sign.eq(Mux(v["zero"], v["zero_sign"], v["sign"])),
            rnd.exp.eq(v["exp"]), rnd.sig.eq(v["sig"]), rnd.sticky.eq(v["sticky"]),
        ]
        rounded = {"bits": rnd.bits, "inexact": rnd.inexact, "underflow": rnd.underflow, "overflow": rnd.overflow}
        if fa.has_inf:
            inf_bits = Cat(Const(fa.inf, fa.width - 1), v["inf_sign"])
        else:
            inf_bits = Const(fa.canonical_nan, fa.width)   # unreachable: flagged invalid above
        special = v["is_nan"] | v["is_inf"]
        d = Mux(v["is_nan"], fa.canonical_nan, Mux(v["is_inf"], inf_bits, rounded["bits"]))
        flags = Cat(rounded["inexact"] & ~special, rounded["underflow"] & ~special,
                    rounded["overflow"] & ~special, Const(0, 1), v["invalid"])
        out = pipe.boundary({"d": d, "flags": flags})
        pipe.check_complete()
        m.d.comb += [self.o.payload.d.eq(out["d"]), self.o.payload.flags.eq(out["flags"])]
        return m
