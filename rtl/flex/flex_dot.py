"""Flexpoint dot-product lanes: exact int products, exact wide accumulation, shift + RNE + saturation."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.formats import IntFormat
from ..fp.params import silence_on_error
from ..pipeline import StallPipeline
from .params import MAN_BITS_MAX, MAN_BITS_MIN, SHIFT_BITS_MAX, SHIFT_BITS_MIN, accumulator_bits, check_int
from .round_shift import ACC_BITS_MAX, build_round, build_shift, decode_shift

__all__ = ["FlexDot", "MODES", "K_MAX", "LANES_MAX"]

#: Output-conversion modes: ``flex`` (shift from the input stream) and ``dfp16`` (shift from the LZC).
MODES = ("flex", "dfp16")
K_MAX = 64
LANES_MAX = 16


class FlexDot(wiring.Component):
    """Fully pipelined flexpoint / DFP-16 dot-product unit: ``lanes`` dot products of ``k`` terms per beat.

    Lane j computes ``acc[j] = sum_kk a[j][kk] * b[j][kk]`` with exact N x N-bit products and an exact
    two's-complement accumulator, then converts it to an N-bit mantissa:
    ``out[j] = sat(rne(acc[j] / 2**shift))`` with a per-lane overflow flag.

    Parameters
    ----------
    k : int
        Products per lane, 1..64.
    lanes : int
        Independent dot products per beat, 1..16 (default 1). They share one shift: the per-operation
        shift (``flex``) or the block shift (``dfp16``).
    man_bits : int
        Mantissa width N of a, b and out, 2..32 (default 16: flex16+5 / DFP-16).
    acc_bits : int or None
        Accumulator width; default (and minimum) ``2N + ceil(log2 k)`` (34 for k = 4, N = 16), which
        makes accumulation exact; wider is allowed (same results), at most 96.
    shift_bits : int
        Width of the signed shift field, 2..16 (default 8). In ``dfp16`` mode it must hold
        ``-(N-1) .. acc_bits - (N-1)``.
    mode : "flex" or "dfp16"
        ``flex``: the shift is the input field ``shift`` (``exp_out - exp_a - exp_b``, chosen by the
        host's exponent manager). ``dfp16``: the shift is derived in hardware from the leading-zero
        count of the *block* maximum, where the block is the ``lanes`` accumulators of one beat
        (DFP-16 down-conversion, :func:`tensorforge.golden.dfp16.dfp_down_convert_int` applied to
        ``acc[0..lanes-1]``): ``shift = bitlen(max_j |acc[j]|) - (N-1)``, computed as the bit
        length of the OR of the magnitudes (equal to that of their maximum); an all-zero block
        gives ``-(N-1)``. The shift is output so the host can set ``exp_out = exp_a + exp_b + shift``.
    stages : int
        Pipeline registers, 0..4 (flex) or 0..5 (dfp16); latency = ``stages`` cycles. Steps: multiply,
        accumulate, [dfp16: magnitude OR + leading-one detection], shift, round/saturate.

    Ports (``amaranth.lib.stream``; Verilog ``i__payload``/``i__valid``/``i__ready``, ``o__...``)
    -----
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(ArrayLayout(signed(N), k), lanes),
        "b": same, ["shift": signed(shift_bits)] (flex only)})))
        Manifest fields ``a[j][kk]``, ``b[j][kk]``, ``shift``.
    o : Out(stream.Signature(StructLayout({"out": ArrayLayout(signed(N), lanes),
        "overflow": ArrayLayout(1, lanes), ["shift": signed(shift_bits)] (dfp16 only)})))

    Timing: ``latency == stages``, ``initiation_interval == 1``; back-pressure stalls the whole
    pipeline (:class:`~tensorforge.rtl.pipeline.StallPipeline`), ``i.ready`` depends combinationally
    on ``o.ready``.

    Numerics (bit-exact with :func:`tensorforge.golden.flex.flex_dot_int`, ``rounding="rne"``, and
    :func:`tensorforge.golden.dfp16.dfp_down_convert_int`): mantissas are full two's complement
    ``[-2**(N-1), 2**(N-1) - 1]``. ``shift > 0``: round half to even (round bit = acc bit s-1,
    sticky = OR of lower bits, increment iff round & (sticky | lsb)); ``shift <= 0``: exact left
    shift. Then saturation; ``overflow[j]`` is high iff saturation changed lane j's value (a value that
    rounds to exactly ``2**(N-1) - 1`` or ``-2**(N-1)`` is not an overflow). Every shift value the field
    can hold is legal (right shifts beyond ``acc_bits + 1`` give 0; left shifts of nonzero values by
    ``N + 1`` or more saturate). No stochastic rounding in hardware.
    """

    @silence_on_error
    def __init__(self, *, k, lanes=1, man_bits=16, acc_bits=None, shift_bits=8, mode="flex", stages):
        self._k = check_int("k", k, 1, K_MAX)
        self._lanes = check_int("lanes", lanes, 1, LANES_MAX)
        self._man_bits = check_int("man_bits", man_bits, MAN_BITS_MIN, MAN_BITS_MAX)
        need = accumulator_bits(man_bits, k)
        if acc_bits is None:
            acc_bits = need
        if not isinstance(acc_bits, int) or isinstance(acc_bits, bool):
            raise TypeError(f"acc_bits must be None or an integer between {need} and {ACC_BITS_MAX}, "
                            f"not {acc_bits!r}")
        if not need <= acc_bits <= ACC_BITS_MAX:
            raise ValueError(f"acc_bits must be an integer between {need} (2*man_bits + ceil(log2 k): exact "
                             f"accumulation of k={k} products of {man_bits}-bit mantissas) and {ACC_BITS_MAX}, "
                             f"not {acc_bits}")
        self._acc_bits = acc_bits
        self._shift_bits = check_int("shift_bits", shift_bits, SHIFT_BITS_MIN, SHIFT_BITS_MAX)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._mode = mode
        if mode == "dfp16":
            lo, hi = -(man_bits - 1), acc_bits - (man_bits - 1)
            if not (-(1 << (shift_bits - 1)) <= lo and hi <= (1 << (shift_bits - 1)) - 1):
                raise ValueError(f"shift_bits must be at least {max(lo.bit_length(), hi.bit_length()) + 1} in "
                                 f"dfp16 mode (the derived shift spans {lo}..{hi}), not {shift_bits}")
        self._stages = check_int("stages", stages, 0, self.max_stages)
        man = signed(man_bits)
        i_fields = {"a": data.ArrayLayout(data.ArrayLayout(man, k), lanes),
                    "b": data.ArrayLayout(data.ArrayLayout(man, k), lanes)}
        o_fields = {"out": data.ArrayLayout(man, lanes), "overflow": data.ArrayLayout(1, lanes)}
        if mode == "flex":
            i_fields["shift"] = signed(shift_bits)
        else:
            o_fields["shift"] = signed(shift_bits)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(i_fields))),
            "o": Out(stream.Signature(data.StructLayout(o_fields))),
        })

    k = property(lambda self: self._k)
    lanes = property(lambda self: self._lanes)
    man_bits = property(lambda self: self._man_bits)
    acc_bits = property(lambda self: self._acc_bits)
    shift_bits = property(lambda self: self._shift_bits)
    mode = property(lambda self: self._mode)
    stages = property(lambda self: self._stages)
    max_stages = property(lambda self: 4 if self._mode == "flex" else 5,
                          doc="Number of datapath steps (largest ``stages``).")
    latency = property(lambda self: self._stages, doc="Cycles from input handshake to output valid.")
    initiation_interval = property(lambda self: 1, doc="Cycles between accepted inputs (fully pipelined).")

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        man = IntFormat(self._man_bits, signed=True)
        sh = IntFormat(self._shift_bits, signed=True)
        i = {"a": man, "b": man}
        o = {"out": man, "overflow": None}
        (i if self._mode == "flex" else o)["shift"] = sh
        return {"i": i, "o": o}

    def _weights(self):
        tree = 1.0 + 0.5 * (self._k - 1).bit_length()
        w = [3.0, tree]
        if self._mode == "dfp16":
            w.append(1.0 + 0.25 * (self._lanes - 1).bit_length())
        return w + [1.5, 1.5]

    def elaborate(self, platform):
        m = Module()
        N, W, K, L = self._man_bits, self._acc_bits, self._k, self._lanes
        p = StallPipeline(m, i=self.i, o=self.o, stages=self._stages, weights=self._weights(), name="fd")
        pay = self.i.payload
        # flex: the shift amount is decoded once per beat, next to the multipliers (off the critical path)
        dec = decode_shift(m, pay.shift, acc_bits=W, man_bits=N, name="sh") if self._mode == "flex" else None

        # 1. exact products (2N-bit signed)
        prods = []
        for j in range(L):
            row = []
            for kk in range(K):
                s = Signal(signed(2 * N), name=f"prod_{j}_{kk}")
                m.d.comb += s.eq(pay.a[j][kk] * pay.b[j][kk])
                row.append(s)
            prods.append(row)
        v = p.boundary(_carry({"prods": prods}, dec=dec))

        # 2. exact accumulation (cannot overflow W bits)
        accs = []
        for j in range(L):
            acc = Signal(signed(W), name=f"acc_{j}")
            m.d.comb += acc.eq(sum(v["prods"][j]))
            accs.append(acc)
        v = p.boundary(_carry({"accs": accs}, dec=v.get("dec")))

        # 2b. dfp16: block shift from the leading one of OR_j |acc[j]|
        if self._mode == "dfp16":
            ored = 0
            for j, acc in enumerate(v["accs"]):
                mag = Signal(unsigned(W), name=f"mag_{j}")
                m.d.comb += mag.eq(abs(acc))
                ored = ored | mag
            block = Signal(unsigned(W), name="block_or")
            m.d.comb += block.eq(ored)
            bitlen = Signal(range(W + 1), name="block_bitlen")
            m.d.comb += bitlen.eq(_bit_length(block))     # W - LZC(block), a balanced tree
            dshift = Signal(signed(self._shift_bits), name="block_shift")
            m.d.comb += dshift.eq(bitlen - (N - 1))
            # the decode of decode_shift, simplified for shifts in [-(N-1), W-(N-1)] (no clamping needed)
            dec = {"is_right": Signal(name="sh_is_right"), "amount": Signal(range(W + 1), name="sh_amount"),
                   "lamt": Signal(range(N + 2), name="sh_lamt")}
            m.d.comb += [dec["is_right"].eq(bitlen >= N), dec["amount"].eq(bitlen - N),
                         dec["lamt"].eq(N - 1 - bitlen)]
            v = p.boundary({"accs": v["accs"], "shift": dshift, "dec": dec})

        # 3. shifter, 4. round + saturate
        parts = [build_shift(m, acc, v["dec"], man_bits=N, name=f"cv{j}") for j, acc in enumerate(v["accs"])]
        v = p.boundary(_carry({"parts": parts}, shift=v.get("shift")))
        results = [build_round(m, part, man_bits=N, name=f"cv{j}") for j, part in enumerate(v["parts"])]
        v = p.boundary(_carry({"out": [r[0] for r in results], "ovf": [r[1] for r in results]},
                              shift=v.get("shift")))
        p.check_complete()
        for j in range(L):
            m.d.comb += [self.o.payload.out[j].eq(v["out"][j]), self.o.payload.overflow[j].eq(v["ovf"][j])]
        if self._mode == "dfp16":
            m.d.comb += self.o.payload.shift.eq(v["shift"])
        return m


def _carry(values, **optional):
    """``values`` plus the optional entries that exist (the shift decode in flex mode, the derived
    shift in dfp16 mode), for :meth:`StallPipeline.boundary`."""
    values.update({key: value for key, value in optional.items() if value is not None})
    return values


def _bit_length(value):
    """Bit length of an unsigned value (index of the highest set bit + 1, 0 for 0) as a balanced
    mux tree of depth ceil(log2 width)."""
    n = len(value)
    if n == 1:
        return value[0]
    half = n // 2
    lo, hi = value[:half], value[half:]
    return Mux(hi.any(), half + _bit_length(hi), _bit_length(lo))
