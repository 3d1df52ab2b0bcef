"""Fused dot-product-add stream core: d = sum_i a[i]*b[i] + c with chain, exact or NVIDIA numerics."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.dot import Chain, Exact, Nvidia, parse_semantics
from ...golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32
from ..fp.fma import FMA
from ..fp.multiplier import Multiplier
from ..fp.normalize import Normalize
from ..fp.params import check_acc_pair, check_float_format, silence_on_error
from ..fp.round import Round
from ..fp.unpack import Unpack
from ..pipeline import StallPipeline, plan_cuts
from .adder_tree import AdderTree
from .alignment_planner import AlignmentPlanner
from .truncating_aligner import TruncatingAligner
from .window_placer import WindowPlacer

__all__ = ["DotProductAdd", "IN_FORMATS", "ACC_FORMATS", "FLAG_WIDTH", "K_MAX"]

#: Input formats of the tensor-core lanes.
IN_FORMATS = (FP16, BF16, TF32, FP8_E4M3, FP8_E5M2)
#: Accumulator (c and d) formats.
ACC_FORMATS = (FP32, FP16)
#: Width of the ``flags`` output field (chain and exact): bit0 inexact, bit1 underflow,
#: bit2 overflow, bit3 infinite (never set), bit4 invalid (Berkeley TestFloat order).
FLAG_WIDTH = 5
#: Largest supported k.
K_MAX = 64

# Relative combinational delay of each step (roughly ns on ECP5), used to place registers.
_WEIGHTS = {
    "unpack": 3.0,      # classify, special values, exponent sums
    "multiply": 7.0,    # DSP multipliers (+ max-exponent tree and alignment distances in parallel)
    "exponent": 5.0,    # next block: unpack the previous d, final max, alignment distances
    "align": 5.0,       # barrel shifters (truncating or window placement) + negation
    "add": 4.0,         # adder tree (grows with log2 of the terms, see _add_weight)
    "count": 4.0,       # magnitude + leading-zero count
    "shift": 4.0,       # normalizing left shift
    "round": 5.0,       # shared Round + special-value mux
}
_FMA_STEPS = 7          # FMA.MAX_STAGES: steps of one chain step


def _add_weight(count):
    return 2.0 + 1.0 * max(1, (count - 1).bit_length())


def _named(m, value, shape, name):
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


def _or(values):
    out = Const(0, 1)
    for v in values:
        out = out | v
    return out


def _and(values):
    out = Const(1, 1)
    for v in values:
        out = out & v
    return out


def _connect_normalize(m, norm, *, exp, allowed=None, marker=None, sig=None):
    """Drive a :class:`Normalize`'s limit / mark / count parts.

    Without ``sig``: ``exp`` feeds the limit part and ``mark_allowed`` comes from ``allowed``
    (a value the caller computed ahead with the limit part's formula, possibly registered) or
    else from the limit part's own ``allowed``; returns the ``marker`` (for a pipelined core to
    carry to the count step). With ``sig``: the count part, its ``count_marker`` from
    ``marker`` (the value returned earlier, possibly registered) or, when ``marker`` is None,
    straight from ``norm.marker``. Any other input outside the shift part whose name is
    ``<part>_<x>`` is driven from the output ``<x>``; an input this core does not understand
    fails loudly instead of being left at zero."""
    members = dict(norm.signature.members)
    known = {"sig", "exp", "mark_allowed", "count_marker", "shift_sig", "shift_exp", "shift_amount"}
    if sig is None:
        m.d.comb += [norm.exp.eq(exp), norm.mark_allowed.eq(norm.allowed if allowed is None else allowed)]
        for name, member in members.items():
            if member.flow != wiring.In or name in known:
                continue
            source = name.split("_", 1)[1] if "_" in name else None
            if source is None or source not in members or members[source].flow != wiring.Out:
                raise RuntimeError(f"Normalize input {name!r} is not understood by DotProductAdd")
            m.d.comb += getattr(norm, name).eq(getattr(norm, source))
        return norm.marker
    m.d.comb += [norm.sig.eq(sig), norm.count_marker.eq(norm.marker if marker is None else marker)]
    return None


def _check_k(k):
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= K_MAX:
        raise ValueError(f"k must be an integer between 1 and {K_MAX}, not {k!r}")
    return k


def _check_in_acc(in_format, acc_format):
    check_float_format("in_format", in_format)
    check_float_format("acc_format", acc_format)
    if in_format not in IN_FORMATS:
        raise ValueError(f"in_format must be one of {', '.join(map(str, IN_FORMATS))}, not {in_format}")
    if acc_format not in ACC_FORMATS:
        raise ValueError(f"acc_format must be one of {', '.join(map(str, ACC_FORMATS))}, not {acc_format}")


def _resolve_semantics(semantics, acc_format):
    if isinstance(semantics, (Chain, Exact, Nvidia)):
        sem = semantics
    elif isinstance(semantics, str):
        sem = parse_semantics(semantics, acc_format=acc_format)    # ValueError names the choices
    else:
        raise TypeError(f"semantics must be a name (chain, exact, volta, ampere, hopper, hopper_fp8) or a "
                        f"Chain/Exact/Nvidia object, not {semantics!r}")
    return sem


class DotProductAdd(wiring.Component):
    """Fully pipelined fused dot-product-add ``d = sum_{i<k} a[i]*b[i] + c``, one result per cycle.

    Parameters
    ----------
    k : int
        Number of products, 1..64.
    in_format : FloatFormat
        Format of ``a[i]`` and ``b[i]``: FP16 (e5m10), BF16 (e8m7), TF32 (low 13 bits
        ignored), FP8 e4m3fn or e5m2.
    acc_format : FloatFormat
        Format of ``c`` and ``d``: FP32 (default) or FP16. ``chain`` also needs
        ``acc_format`` to hold every input value (FP16 accumulation of BF16/TF32 is rejected).
    semantics : str or Chain / Exact / Nvidia
        ``"chain"``, ``"exact"``, ``"volta"``, ``"ampere"``, ``"hopper"``, ``"hopper_fp8"``
        (resolved by :func:`tensorforge.golden.dot.parse_semantics` with ``acc_format``:
        FP16 output selects ``volta_fp16``...) or a semantics object (any F, L, e_zero,
        output rounding of :class:`~tensorforge.golden.dot.Nvidia`).
    stages : int
        Pipeline register banks, 0 .. :attr:`max_stages`; latency = ``stages`` cycles.
        Registers go after the steps chosen by :func:`~tensorforge.rtl.pipeline.plan_cuts`
        from per-step delay weights (always one at the output when ``stages >= 1``).

    Ports (``amaranth.lib.stream``; Verilog ``i__payload``/``i__valid``/``i__ready``, ``o__...``)
    -----
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(in_format.width, k),
        "b": ArrayLayout(in_format.width, k), "c": acc_format.width})))
        Manifest field names ``a[0]`` .. ``a[k-1]``, ``b[0]`` .. ``b[k-1]``, ``c``.
    o : Out(stream.Signature(StructLayout({"d": acc_format.width, "flags": 5})))
        ``flags`` only for chain and exact (TestFloat order: bit0 inexact, bit1 underflow,
        bit2 overflow, bit3 always 0, bit4 invalid); the nvidia family has no flags (the
        hardware raises none), its output is ``d`` alone.

    Timing: ``latency == stages``, ``initiation_interval == 1``; back-pressure stalls the
    whole pipeline (one enable, :class:`~tensorforge.rtl.pipeline.StallPipeline`), nothing is
    lost or duplicated; ``i.ready`` depends combinationally on ``o.ready``.

    Numerics (bit-exact with :func:`tensorforge.golden.dot.dot_product_add`, NUMERICS.md section 2)
    ------------------------------------------------------------------------------------------------
    ``chain``: k IEEE FMAs in index order, ``acc <- round_rne(a[i]*b[i] + acc)``, built from
    k :class:`~tensorforge.rtl.fp.fma.FMA` cores in series (``stages`` is spread over them,
    at most 7 each; the later a/b operands and the OR of the flags travel in side registers
    with the same enable as each FMA's pipeline). Canonical NaN, subnormals, tininess after
    rounding as the FMA. Flags: OR of the k FMAs' flags.

    ``exact``: the exact value of the whole sum, rounded once (RNE). Structure: k exact
    multipliers -> every product placed by a :class:`WindowPlacer` at its exact position in a
    fixed-point window whose LSB is the smallest possible product LSB (``2*(emin - man)`` of
    ``in_format``) -> exact :class:`AdderTree` -> c placed at its exact position in the
    global window (LSB ``min(2*(emin_in - man_in), emin_acc - man_acc)``) and added -> one
    normalize (exponent floored at emin) -> the shared :class:`~tensorforge.rtl.fp.round.Round`.
    Why no sticky is needed: every term (each exact product, and c) is an integer multiple of
    2^Lo and has magnitude below 2^Hi, where Lo is the global window LSB and Hi the largest
    product or c top bit; the window covers [Lo, Hi + ceil(log2(k+1))) plus a sign bit, so the
    two's-complement sum is the exact real sum, whatever the cancellation and for the whole
    exponent range including subnormal inputs, subnormal c and subnormal results. (An
    alignment window anchored on the largest exponent cannot be exact: 2^100 - 2^100 + 2^-100
    needs every bit down to 2^-100; with several lossy terms of different signs no single
    sticky bit recovers the sign of their sum.) The Round then sees the exact value, so the
    result and the flags (inexact, underflow with tininess after rounding, overflow) are those
    of one correct rounding. Window widths (sign included): FP16/FP8 x FP32 279 bits, BF16 x FP32
    526, TF32 x FP32 532, FP16 x FP16 84 (c's exponent range dominates with FP32 output). Special values: any NaN operand, 0*inf or
    inf - inf -> canonical NaN; an infinite term -> that infinity; exact zero sum -> -0 only when
    every product and c are -0. Invalid: signaling NaN operand, 0*inf, inf - inf without a NaN
    operand.

    ``nvidia`` (F, L, e_zero, out_rounding, out_frac_bits): per block of L products (k > L:
    blocks in index order, each block's rounded d is the next block's c; a block with fewer
    than L products includes e_zero in its maximum, as an L-lane unit would): k exact
    multipliers (significands not renormalized, subnormals at emin); in parallel an
    :class:`AlignmentPlanner` (all pairwise exponent differences at once) finds the maximum
    over the product exponents, c's exponent and e_zero for zero terms -> each term
    aligned to the maximum by a :class:`TruncatingAligner` keeping F fraction bits (truncation
    of the magnitude toward zero, no guard/round/sticky) -> signed :class:`AdderTree` with
    ``ceil(log2(L+1))`` carry bits (no sum can overflow) -> one normalize -> the shared Round,
    RTZ (FP32 output; overflow gives +-inf, subnormal results at 2^-149 granularity) or RNE
    (FP16 output). ``out_frac_bits`` (hopper_fp8: 13) keeps only that many fraction bits of the
    normalized sum before the RTZ rounding. NaN result 0x7FFFFFFF / 0x7FFF, zero results +0,
    NaN / inf inputs as in IEEE.
    """

    @silence_on_error
    def __init__(self, *, k, in_format, acc_format=FP32, semantics, stages):
        self._k = _check_k(k)
        _check_in_acc(in_format, acc_format)
        self._in, self._acc = in_format, acc_format
        sem = _resolve_semantics(semantics, acc_format)
        self._sem = sem
        if isinstance(sem, Chain):
            check_acc_pair("in_format", in_format, "acc_format", acc_format)
            self._steps = ()
            self._max_stages = _FMA_STEPS * k
        else:
            if isinstance(sem, Nvidia) and sem.out_frac_bits is not None and sem.out_frac_bits > acc_format.man_bits:
                raise ValueError(f"out_frac_bits of {sem} must be at most the {acc_format.man_bits} fraction bits "
                                 f"of acc_format {acc_format}, not {sem.out_frac_bits}")
            self._steps, self._weights = self._fused_steps()
            self._max_stages = len(self._steps)
        if not isinstance(stages, int) or isinstance(stages, bool) or not 0 <= stages <= self._max_stages:
            raise ValueError(f"stages must be an integer between 0 and {self._max_stages} for {self._describe()}, "
                             f"not {stages!r}")
        self._stages = stages
        self._cuts = plan_cuts(self._weights, stages) if self._steps else ()
        out = {"d": acc_format.width}
        if not isinstance(sem, Nvidia):
            out["flags"] = FLAG_WIDTH
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(in_format.width, k),
                "b": data.ArrayLayout(in_format.width, k),
                "c": acc_format.width,
            }))),
            "o": Out(stream.Signature(data.StructLayout(out))),
        })

    def _describe(self):
        return f"k={self._k} {self._sem} semantics"

    # -- public properties -------------------------------------------------------------------
    k = property(lambda self: self._k)
    in_format = property(lambda self: self._in)
    acc_format = property(lambda self: self._acc)
    semantics = property(lambda self: self._sem, doc="The resolved Chain / Exact / Nvidia object.")
    stages = property(lambda self: self._stages)
    max_stages = property(lambda self: self._max_stages, doc="Largest allowed ``stages`` (one register per step).")
    steps = property(lambda self: self._steps, doc="Combinational steps of the fused datapath (empty for chain).")
    cuts = property(lambda self: self._cuts, doc="1-based step boundaries that carry a register bank (fused).")
    latency = property(lambda self: self._stages, doc="Cycles from input handshake to output valid.")
    initiation_interval = property(lambda self: 1, doc="Cycles between accepted inputs (fully pipelined).")

    @property
    def has_flags(self) -> bool:
        """True when the output has a ``flags`` field (chain and exact)."""
        return not isinstance(self._sem, Nvidia)

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        out = {"d": self._acc}
        if self.has_flags:
            out["flags"] = None
        return {"i": {"a": self._in, "b": self._in, "c": self._acc}, "o": out}

    @property
    def blocks(self) -> list[list[int]]:
        """Lane indices of each fused block (nvidia: blocks of L in index order; exact: one block)."""
        size = self._sem.L if isinstance(self._sem, Nvidia) else self._k
        return [list(range(s, min(s + size, self._k))) for s in range(0, self._k, size)]

    def chain_stages(self) -> list[int]:
        """chain: pipeline registers of each of the k FMA steps (``stages`` spread evenly,
        later steps first get the remainder so the output stays registered)."""
        base, extra = divmod(self._stages, self._k)
        return [base + (1 if j >= self._k - extra else 0) for j in range(self._k)]

    # -- fused datapath ----------------------------------------------------------------------
    def _fused_steps(self):
        steps, weights = [], []
        for b, lanes in enumerate(self.blocks):
            head = ["unpack", "multiply"] if b == 0 else ["exponent"]
            for s in head + ["align", "add", "count", "shift", "round"]:
                steps.append(s)
                weights.append(_add_weight(len(lanes) + 1) if s == "add" else _WEIGHTS[s])
        return tuple(steps), weights

    def elaborate(self, platform):
        if isinstance(self._sem, Chain):
            return self._elaborate_chain()
        return self._elaborate_fused()

    # ---------------------------------------------------------------------------------------
    def _elaborate_chain(self):
        m = Module()
        fi, fa, k = self._in, self._acc, self._k
        payload = self.i.payload
        side_in = {"a": [payload.a[j] for j in range(k)], "b": [payload.b[j] for j in range(k)],
                   "flags": Const(0, FLAG_WIDTH)}
        prev = None
        for j, st in enumerate(self.chain_stages()):
            fma = FMA(in_format=fi, acc_format=fa, rounding="rne", stages=st)
            m.submodules[f"fma{j}"] = fma
            if prev is None:
                m.d.comb += [fma.i.valid.eq(self.i.valid), self.i.ready.eq(fma.i.ready),
                             fma.i.payload.c.eq(payload.c)]
                flags_in = side_in["flags"]
            else:
                m.d.comb += [fma.i.valid.eq(prev.o.valid), prev.o.ready.eq(fma.i.ready),
                             fma.i.payload.c.eq(prev.o.payload.d)]
                flags_in = _named(m, side_in["flags"] | prev.o.payload.flags, FLAG_WIDTH, f"flags_in{j}")
            m.d.comb += [fma.i.payload.a.eq(side_in["a"][0]), fma.i.payload.b.eq(side_in["b"][0])]
            # operands of the later steps and the flags so far travel beside this FMA's pipeline:
            # same number of registers, same enable (its i.ready is its pipeline's advance)
            side = {"a": side_in["a"][1:], "b": side_in["b"][1:], "flags": flags_in}
            for r in range(st):
                side = self._side_register(m, side, fma.i.ready, f"side{j}_r{r}")
            side_in, prev = side, fma
        m.d.comb += [
            self.o.valid.eq(prev.o.valid), prev.o.ready.eq(self.o.ready),
            self.o.payload.d.eq(prev.o.payload.d),
            self.o.payload.flags.eq(side_in["flags"] | prev.o.payload.flags),
        ]
        return m

    def _side_register(self, m, value, enable, name):
        if isinstance(value, dict):
            return {key: self._side_register(m, v, enable, f"{name}_{key}") for key, v in value.items()}
        if isinstance(value, list):
            return [self._side_register(m, v, enable, f"{name}_{i}") for i, v in enumerate(value)]
        reg = Signal(len(value), name=name, reset_less=True)
        with m.If(enable):
            m.d.sync += reg.eq(value)
        return reg

    # ---------------------------------------------------------------------------------------
    def _sizes(self):
        """Static widths of the fused datapath."""
        fi, fa, sem = self._in, self._acc, self._sem
        mi, ma = fi.man_bits, fa.man_bits
        z = dict(p_width=2 * fi.sig_bits)
        if isinstance(sem, Nvidia):
            F = sem.F
            term = F + 2                                    # |product| < 4
            z["F"] = F
            z["term_width"] = term
            lo = min(2 * fi.emin, fa.emin, sem.e_zero)
            hi = max(2 * fi.emax, fa.emax, sem.e_zero)
            z["e_lo"], z["e_hi"] = lo, hi
            z["pw"] = max((-lo - 1).bit_length(), hi.bit_length()) + 1   # signed width of [lo, hi]
            span = hi - lo
            big = abs(lo) + abs(hi) + span + 2 * (F + term + 64)
        else:
            p_lsb_min = 2 * (fi.emin - mi)
            p_max_off = 2 * (fi.emax - fi.emin)
            lo = min(p_lsb_min, fa.emin - ma)
            z.update(p_lsb_min=p_lsb_min, p_max_off=p_max_off, lo=lo)
            z["p_const_off"] = p_lsb_min - lo                 # product window LSB in the global window
            z["c_const_off"] = fa.emin - ma - lo              # lowest c LSB in the global window
            z["c_max_off"] = fa.emax - fa.emin
            p_window = z["p_width"] + p_max_off                # placed product width
            psum_mag = p_window + (self._k - 1).bit_length()   # |sum of products| < 2^psum_mag
            c_top = z["c_const_off"] + fa.sig_bits + z["c_max_off"]
            top = max(z["p_const_off"] + psum_mag, c_top) + 1   # + carry of the final add
            z["p_window"], z["psum_mag"] = p_window, psum_mag
            z["g_width"] = top + 1                               # signed global window
            big = abs(lo) + top + abs(fa.emin) + fa.emax + 2 * abs(fi.emin) + 2 * fi.emax + 64
        z["ew"] = (2 * big).bit_length() + 1
        return z

    def _elaborate_fused(self):
        m = Module()
        fi, fa, sem, k = self._in, self._acc, self._sem, self._k
        nv = isinstance(sem, Nvidia)
        z = self._sizes()
        ew = z["ew"]
        pipe = StallPipeline(m, i=self.i, o=self.o, stages=self._stages, weights=self._weights, name="p")
        payload = self.i.payload
        blocks = self.blocks

        # ---- step: unpack every lane and c; special values --------------------------------------
        lane = []
        for j in range(k):
            ua, ub = Unpack(fmt=fi), Unpack(fmt=fi)
            m.submodules[f"unpack_a{j}"], m.submodules[f"unpack_b{j}"] = ua, ub
            m.d.comb += [ua.bits.eq(payload.a[j]), ub.bits.eq(payload.b[j])]
            zti = _named(m, (ua.inf & ub.zero) | (ua.zero & ub.inf), 1, f"zero_times_inf{j}")
            nan = _named(m, ua.nan | ub.nan | zti, 1, f"lane_nan{j}")
            inf = _named(m, (ua.inf | ub.inf) & ~nan, 1, f"lane_inf{j}")
            finite = ~(nan | inf)
            sign = _named(m, ua.sign ^ ub.sign, 1, f"lane_sign{j}")
            lane.append({
                "sa": Mux(finite, ua.sig, 0), "sb": Mux(finite, ub.sig, 0),
                "zero": _named(m, ~finite | ua.zero | ub.zero, 1, f"lane_zero{j}"),
                "sign": sign,
                "exp": _named(m, ua.exp + ub.exp, signed(ew), f"lane_exp{j}"),
                "nan": nan, "inf": inf, "zti": zti,
                "snan": ua.snan | ub.snan, "opnan": ua.nan | ub.nan,
                "negzero": (ua.zero | ub.zero) & sign,
            })
        m.submodules.unpack_c = uc = Unpack(fmt=fa)
        m.d.comb += uc.bits.eq(payload.c)
        cinfo = self._c_terms(m, uc, "c0", ew)
        if nv:
            # exponent of every product term (zero terms: e_zero), at the narrow planning width
            pw = z["pw"]
            for j, ln in enumerate(lane):
                ln["e"] = _named(m, Mux(ln["zero"], sem.e_zero, ln["exp"]), signed(pw), f"term_exp{j}")
        keep = ("sa", "sb", "sign", "e") if nv else ("sa", "sb", "zero", "sign", "exp")
        v = {"lanes": [{key: ln[key] for key in keep} for ln in lane],
             "blk": [self._block_specials(m, [lane[j] for j in lanes], f"b{b}") for b, lanes in enumerate(blocks)],
             "c": cinfo}
        if not nv:
            any_nan_op = _or([ln["opnan"] for ln in lane] + [uc.nan])
            zti_any = _or([ln["zti"] for ln in lane])
            blk = v["blk"][0]
            pos_inf, neg_inf = blk["pinf"] | (uc.inf & ~uc.sign), blk["ninf"] | (uc.inf & uc.sign)
            inf_minus_inf = pos_inf & neg_inf
            invalid = _or([ln["snan"] for ln in lane] + [uc.snan]) | zti_any | (inf_minus_inf & ~any_nan_op)
            v["x"] = {
                "invalid": _named(m, invalid, 1, "invalid"),
                "zero_sign": _named(m, _and([ln["negzero"] for ln in lane]) & uc.zero & uc.sign, 1, "zero_sign"),
            }
        v = pipe.boundary(v)

        # ---- step: multiply (+ exponent planning in parallel) -------------------------------------
        for j in range(k):
            mul = Multiplier(a_width=fi.sig_bits, b_width=fi.sig_bits)
            m.submodules[f"mul{j}"] = mul
            m.d.comb += [mul.a.eq(v["lanes"][j]["sa"]), mul.b.eq(v["lanes"][j]["sb"])]
            v["lanes"][j] = {"p": mul.p} | {key: val for key, val in v["lanes"][j].items()
                                            if key not in ("sa", "sb")}
        if nv:
            v["plan"] = self._nv_plan(m, v, 0, z, "b0")
        else:
            v["plan"] = self._exact_plan(m, v, z)
        v = pipe.boundary(v)

        # ---- blocks ------------------------------------------------------------------------------
        for b, lanes in enumerate(blocks):
            if b > 0:
                # ---- step: exponent (previous d as c, final maximum, alignment distances) --------
                ucb = Unpack(fmt=fa)
                m.submodules[f"unpack_c{b}"] = ucb
                m.d.comb += ucb.bits.eq(v["d"])
                v["c"] = self._c_terms(m, ucb, f"c{b}", ew)
                v["plan"] = self._nv_plan(m, v, b, z, f"b{b}")
                del v["d"]
                v = pipe.boundary(v)
            # ---- step: align --------------------------------------------------------------------
            terms = self._nv_align(m, v, b, lanes, z) if nv else self._exact_align(m, v, z)
            mag_width = self._sum_width(b, z) - 1
            floor = None if (nv and self._frac_limited()) else fa.emin
            norm = Normalize(width=mag_width, exp_width=ew, exp_floor=floor)
            m.submodules[f"normalize{b}"] = norm
            if nv:
                # the normalizer's mark part from the limit the plan selected (in parallel
                # with the aligners)
                top = v["plan"]["top"]
                allowed = v["plan"].get("allowed")
                marker = _connect_normalize(m, norm, exp=top, allowed=allowed)
                v["plan"] = v["plan"] | {"marker": _named(m, marker, mag_width, f"norm_marker{b}")}
            # ---- step: add ----------------------------------------------------------------------
            # (the alignment step ends after the aligners; the adder tree is its own step)
            v = pipe.boundary(self._drop_block(v, b, lanes) | {"terms": terms})
            total = self._nv_add(m, v, b, z) if nv else self._exact_add(m, v, z)
            del v["terms"]
            v["sum"] = total
            v = pipe.boundary(v)
            # ---- step: count leading zeros of the magnitude -------------------------------------
            s = v["sum"]
            if len(s) != mag_width + 1:
                raise RuntimeError(f"sum of block {b} is {len(s)} bits, expected {mag_width + 1}")
            neg = s[-1]
            mag = _named(m, Mux(neg, -s, s)[:mag_width], mag_width, f"mag{b}")
            if nv:
                top = v["plan"]["top"]
                _connect_normalize(m, norm, exp=None, sig=mag, marker=v["plan"]["marker"])
            else:
                top = _named(m, Const(z["lo"] + mag_width - 1, signed(ew)), signed(ew), f"top_exp{b}")
                _connect_normalize(m, norm, exp=top)
                _connect_normalize(m, norm, exp=None, sig=mag)
            del v["sum"]
            v.update(mag=mag, neg=neg, top=top, amount=norm.amount, zero=norm.zero)
            v = pipe.boundary(v)
            # ---- step: normalizing shift --------------------------------------------------------
            m.d.comb += [norm.shift_sig.eq(v["mag"]), norm.shift_exp.eq(v["top"]),
                         norm.shift_amount.eq(v["amount"])]
            for key in ("mag", "top", "amount"):
                del v[key]
            v.update(nsig=norm.norm_sig, nexp=norm.norm_exp)
            v = pipe.boundary(v)
            # ---- step: round + special values ---------------------------------------------------
            if nv:
                d = self._nv_round(m, v, b, mag_width, z)
            else:
                d, flags = self._exact_round(m, v, mag_width, z)
            for key in ("nsig", "nexp", "neg", "zero", "plan", "c"):
                v.pop(key, None)
            v["blk"][b] = {}
            if b + 1 < len(blocks):
                v["d"] = d
                v = pipe.boundary(v)
            else:
                out = pipe.boundary({"d": d} if nv else {"d": d, "flags": flags})
        pipe.check_complete()
        m.d.comb += self.o.payload.d.eq(out["d"])
        if not nv:
            m.d.comb += self.o.payload.flags.eq(out["flags"])
        return m

    def _sum_width(self, b, z):
        """Width of block b's signed sum (the adder tree's, exact: the global window's)."""
        if isinstance(self._sem, Nvidia):
            count = len(self.blocks[b]) + 1
            return z["term_width"] + 1 + (count - 1).bit_length()
        return z["g_width"]

    def _lowest_nonzero_exp(self):
        """Smallest exponent of a nonzero term (a product of subnormals, or a subnormal c)."""
        return min(2 * self._in.emin, self._acc.emin)

    def _frac_limited(self):
        sem = self._sem
        return isinstance(sem, Nvidia) and sem.out_frac_bits is not None and sem.out_frac_bits < self._acc.man_bits

    def _drop_block(self, v, b, lanes):
        """Values after a block's alignment: its lanes' products are consumed."""
        out = {key: val for key, val in v.items() if key not in ("lanes", "plan", "c")}
        out["lanes"] = [{} if j in lanes else ln for j, ln in enumerate(v["lanes"])]
        out["plan"] = {key: val for key, val in v["plan"].items() if key in ("top", "marker")}
        out["c"] = {key: val for key, val in v["c"].items() if key in ("nan", "inf", "sign")}
        return out

    def _c_terms(self, m, uc, name, ew):
        """c decoded as a term: significand (0 for zero/inf/NaN), unit-place exponent, classes."""
        fa = self._acc
        finite = ~(uc.nan | uc.inf)
        c = {"sig": _named(m, Mux(finite, uc.sig, 0), fa.sig_bits, f"{name}_sig"),
             "sign": uc.sign, "nan": uc.nan, "inf": uc.inf,
             "exp": _named(m, uc.exp, signed(ew), f"{name}_exp")}
        if isinstance(self._sem, Nvidia):
            pw = self._sizes()["pw"]
            c["e"] = _named(m, Mux(uc.zero | ~finite, self._sem.e_zero, uc.exp), signed(pw), f"{name}_e")
        return c

    def _block_specials(self, m, lanes, name):
        pinf = _or([ln["inf"] & ~ln["sign"] for ln in lanes])
        ninf = _or([ln["inf"] & ln["sign"] for ln in lanes])
        return {"nan": _named(m, _or([ln["nan"] for ln in lanes]), 1, f"{name}_nan"),
                "pinf": _named(m, pinf, 1, f"{name}_pinf"), "ninf": _named(m, ninf, 1, f"{name}_ninf")}

    # -- nvidia pieces ---------------------------------------------------------------------------
    def _p_aligner(self, z):
        return TruncatingAligner(sig_width=z["p_width"], frac_in=2 * self._in.man_bits, frac_out=z["F"])

    def _c_aligner(self, z):
        return TruncatingAligner(sig_width=self._acc.sig_bits, frac_in=self._acc.man_bits, frac_out=z["F"])

    def _max_shifts(self, z):
        """(product, c) shifts at and above which an aligned term is zero."""
        fi, fa, F = self._in, self._acc, z["F"]
        return (z["p_width"] + max(0, F - 2 * fi.man_bits) - max(0, 2 * fi.man_bits - F),
                fa.sig_bits + max(0, F - fa.man_bits) - max(0, fa.man_bits - F))

    def _nv_plan(self, m, v, b, z, name):
        """Block b's alignment plan from the exponents of its lanes, e_zero when the block is
        short, and c (an :class:`AlignmentPlanner`: one subtractor level deep): the distances
        ``E - e`` of its lanes and c, saturated to the aligners' shift widths; ``top``, the
        exponent of the sum's MSB (``E - F + mag_width - 1``, with E clamped at the lowest
        exponent of a nonzero term: a smaller E means every term is zero, and the clamp bounds
        what Round sees); ``allowed``, the normalizer's shift limit for ``top``
        (``min(max_shift, max(0, top - floor))``, Normalize's limit part). ``top`` and
        ``allowed`` are computed for every exponent in parallel with the planner and selected
        by its one-hot winner, so they cost no more depth than the distances."""
        lanes = self.blocks[b]
        p_max, c_max = self._max_shifts(z)
        pw, ew = z["pw"], z["ew"]
        exps = [v["lanes"][j]["e"] for j in lanes]
        widths = [p_max.bit_length()] * len(lanes)
        if len(lanes) < self._sem.L:
            exps.append(Const(self._sem.e_zero, signed(pw)))
            widths.append(1)
        exps.append(v["c"]["e"])
        widths.append(c_max.bit_length())
        planner = AlignmentPlanner(count=len(exps), exp_width=pw, shift_widths=widths)
        m.submodules[f"plan_{name}"] = planner
        for idx, e in enumerate(exps):
            m.d.comb += planner.e[idx].eq(e)
        mag_width = self._sum_width(b, z) - 1
        lo_nz = self._lowest_nonzero_exp()
        off = mag_width - 1 - z["F"]
        floor = None if self._frac_limited() else self._acc.emin
        a_width = max(1, (mag_width - 1).bit_length())          # Normalize's range(max_shift + 1)
        top = Const(0, ew)
        allowed = Const(0, a_width)
        for idx, e in enumerate(exps):
            t = _named(m, Mux(e < lo_nz, lo_nz + off, e + off), signed(ew), f"{name}_top{idx}")
            top = top | (t.as_unsigned() & planner.winner[idx].replicate(ew))
            if floor is not None:
                room = _named(m, e - (floor - off), signed(ew + 1), f"{name}_room{idx}")
                lim = Mux(e < lo_nz, max(0, min(mag_width - 1, lo_nz + off - floor)),
                          Mux(room < 0, 0, Mux(room > mag_width - 1, mag_width - 1, room[:a_width])))
                lim = _named(m, lim, a_width, f"{name}_allowed{idx}")
                allowed = allowed | (lim & planner.winner[idx].replicate(a_width))
        plan = {"dp": [_named(m, planner.shift_of(idx), widths[idx], f"{name}_dp{j}") for idx, j in enumerate(lanes)],
                "dc": _named(m, planner.shift_of(len(exps) - 1), widths[-1], f"{name}_dc"),
                "top": _named(m, top, signed(ew), f"{name}_top")}
        if floor is not None:           # (no floor: the limit part's constant max_shift)
            plan["allowed"] = _named(m, allowed, a_width, f"{name}_allowed")
        return plan

    def _nv_align(self, m, v, b, lanes, z):
        terms = []
        width = z["term_width"] + 1
        for idx, j in enumerate(lanes):
            al = self._p_aligner(z)
            m.submodules[f"align_b{b}_p{j}"] = al
            ln = v["lanes"][j]
            m.d.comb += [al.sig.eq(ln["p"]), al.shift.eq(v["plan"]["dp"][idx])]
            t = Mux(ln["sign"], -al.term, al.term)
            terms.append(_named(m, t, signed(width), f"term_b{b}_{j}"))
        ca = self._c_aligner(z)
        m.submodules[f"align_b{b}_c"] = ca
        m.d.comb += [ca.sig.eq(v["c"]["sig"]), ca.shift.eq(v["plan"]["dc"])]
        terms.append(_named(m, Mux(v["c"]["sign"], -ca.term, ca.term), signed(width), f"term_b{b}_c"))
        return terms

    def _nv_add(self, m, v, b, z):
        terms = v["terms"]
        tree = AdderTree(count=len(terms), width=z["term_width"] + 1)
        m.submodules[f"adder_tree{b}"] = tree
        for idx, t in enumerate(terms):
            m.d.comb += tree.terms[idx].eq(t)
        return tree.sum

    def _nv_round(self, m, v, b, mag_width, z):
        fa, sem, ew = self._acc, self._sem, z["ew"]
        sig = v["nsig"]
        if self._frac_limited():
            keep = sem.out_frac_bits + 1
            sig = _named(m, Cat(Const(0, mag_width - keep), sig[mag_width - keep:]), mag_width, f"trunc_sig{b}")
            exp_min = None
        else:
            # top is clamped at the lowest nonzero term's exponent (align step) and the
            # normalizer floors at emin: the denormalizing shifter is only generated when a
            # nonzero sum can have its MSB below emin (not for FP16/BF16 inputs with FP32 output)
            top_min = self._lowest_nonzero_exp() - z["F"] + mag_width - 1
            exp_min = min(top_min, fa.emin)
        rnd = Round(fmt=fa, sig_width=mag_width, exp_width=ew, rounding=sem.out_rounding, exp_min=exp_min)
        m.submodules[f"round{b}"] = rnd
        m.d.comb += [rnd.sign.eq(v["neg"]), rnd.exp.eq(v["nexp"]), rnd.sig.eq(sig), rnd.sticky.eq(0)]
        inf_pos = Const(fa.inf, fa.width)
        inf_neg = Const(fa.inf | fa.sign_mask, fa.width)
        bits = Mux(rnd.overflow, Mux(v["neg"], inf_neg, inf_pos), rnd.bits)     # overflow -> inf (RTZ too)
        bits = _named(m, bits, fa.width, f"rounded{b}")
        is_zero = bits[:fa.width - 1] == 0
        bits = Mux(is_zero, 0, bits)                                           # every zero result is +0
        # special values of this block (its lanes and its c)
        blk, c = v["blk"][b], v["c"]
        pinf = blk["pinf"] | (c["inf"] & ~c["sign"])
        ninf = blk["ninf"] | (c["inf"] & c["sign"])
        is_nan = _named(m, blk["nan"] | c["nan"] | (pinf & ninf), 1, f"is_nan{b}")
        is_inf = _named(m, pinf | ninf, 1, f"is_inf{b}")
        nan_bits = fa.pack(0, fa.exp_max_field, (1 << fa.man_bits) - 1)
        d = Mux(is_nan, nan_bits, Mux(is_inf, Mux(pinf, inf_pos, inf_neg), bits))
        return _named(m, d, fa.width, f"d{b}")

    # -- exact pieces ----------------------------------------------------------------------------
    def _exact_plan(self, m, v, z):
        fi, fa, ew = self._in, self._acc, z["ew"]
        plan = {"po": [], "co": None}
        for j in range(self._k):
            off = v["lanes"][j]["exp"] - 2 * fi.emin
            plan["po"].append(_named(m, off[:max(1, z["p_max_off"].bit_length())], range(z["p_max_off"] + 1),
                                     f"p_off{j}"))
            del v["lanes"][j]["exp"], v["lanes"][j]["zero"]
        off = v["c"]["exp"] - fa.emin
        plan["co"] = _named(m, off[:max(1, z["c_max_off"].bit_length())], range(z["c_max_off"] + 1), "c_off")
        return plan

    def _exact_align(self, m, v, z):
        fa = self._acc
        terms = []
        width = z["p_window"] + 1
        for j in range(self._k):
            pl = WindowPlacer(sig_width=z["p_width"], max_offset=z["p_max_off"])
            m.submodules[f"place_p{j}"] = pl
            ln = v["lanes"][j]
            m.d.comb += [pl.sig.eq(ln["p"]), pl.offset.eq(v["plan"]["po"][j])]
            terms.append(_named(m, Mux(ln["sign"], -pl.placed, pl.placed), signed(width), f"term{j}"))
        pl = WindowPlacer(sig_width=fa.sig_bits, max_offset=z["c_max_off"])
        m.submodules.place_c = pl
        m.d.comb += [pl.sig.eq(v["c"]["sig"]), pl.offset.eq(v["plan"]["co"])]
        cw = pl.window_width + 1
        terms.append(_named(m, Mux(v["c"]["sign"], -pl.placed, pl.placed), signed(cw), "term_c"))
        return terms

    def _exact_add(self, m, v, z):
        terms = v["terms"]
        tree = AdderTree(count=self._k, width=z["p_window"] + 1)
        m.submodules.adder_tree = tree
        for j in range(self._k):
            m.d.comb += tree.terms[j].eq(terms[j])
        g = z["g_width"]
        psum = Cat(Const(0, z["p_const_off"]), tree.sum).as_signed() if z["p_const_off"] else tree.sum
        cterm = Cat(Const(0, z["c_const_off"]), terms[-1]).as_signed() if z["c_const_off"] else terms[-1]
        return _named(m, psum + cterm, signed(g), "window_sum")

    def _exact_round(self, m, v, mag_width, z):
        fa = self._acc
        if z["lo"] + mag_width - 1 < fa.emin:
            raise RuntimeError("exact window top below emin")     # cannot happen for the supported formats
        rnd = Round(fmt=fa, sig_width=mag_width, exp_width=z["ew"], rounding="rne", exp_min=fa.emin)
        m.submodules.round = rnd
        x = v["x"]
        m.d.comb += [rnd.sign.eq(Mux(v["zero"], x["zero_sign"], v["neg"])), rnd.exp.eq(v["nexp"]),
                     rnd.sig.eq(v["nsig"]), rnd.sticky.eq(0)]
        blk, c = v["blk"][0], v["c"]
        pinf = blk["pinf"] | (c["inf"] & ~c["sign"])
        ninf = blk["ninf"] | (c["inf"] & c["sign"])
        is_nan = _named(m, blk["nan"] | c["nan"] | (pinf & ninf), 1, "is_nan")
        is_inf = _named(m, pinf | ninf, 1, "is_inf")
        inf_bits = Mux(pinf, Const(fa.inf, fa.width), Const(fa.inf | fa.sign_mask, fa.width))
        d = Mux(is_nan, fa.canonical_nan, Mux(is_inf, inf_bits, rnd.bits))
        special = is_nan | is_inf
        flags = Cat(rnd.inexact & ~special, rnd.underflow & ~special, rnd.overflow & ~special,
                    Const(0, 1), x["invalid"])
        return _named(m, d, fa.width, "d"), _named(m, flags, FLAG_WIDTH, "flags")
