"""EIE processing element: activation queue, pointer prefetch, walker, 6-stage MAC with bypass.

The cycle-by-cycle behaviour is specified in ``tensorforge.golden.eie`` (module
docstring, "Microarchitecture and cycle model"); this component implements it
exactly, so ``golden.eie.schedule`` predicts every pop and every take and
``golden.eie.spmv`` every output bit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...golden.eie import DESCRIPTOR_SLOTS, PIPELINE_STAGES
from ...golden.formats import INT16, IntFormat
from ..pipeline import StallPipeline

__all__ = ["EIEPE", "LOAD_CODEBOOK", "LOAD_PTR_EVEN", "LOAD_PTR_ODD", "LOAD_MATRIX",
           "ERR_PTR_ORDER", "ERR_PTR_RANGE", "ERR_ROW_RANGE"]

#: ``load.payload.target`` values.
LOAD_CODEBOOK, LOAD_PTR_EVEN, LOAD_PTR_ODD, LOAD_MATRIX = 0, 1, 2, 3
#: Bits of the sticky ``error`` output.
ERR_PTR_ORDER = 1    # p[j] > p[j+1]: the column is skipped
ERR_PTR_RANGE = 2    # p[j+1] beyond the sparse-matrix memory: the column is skipped
ERR_ROW_RANGE = 4    # an entry decodes to a local row >= rows: its write is dropped


def _bits_for(n):
    """Bits to hold 0..n."""
    return max(1, int(n).bit_length())


def _check(name, value, lo, hi, what=None):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be {what or f'an integer between {lo} and {hi}'}, not {value!r}")
    return value


class EIEPE(wiring.Component):
    """One EIE processing element (Han et al., ISCA 2016, section IV).

    Parameters (keyword-only)
    -------------------------
    act_queue_depth : int, 1..64 (default 8)
        Activation queue depth. ``act.ready`` is the *registered* "not full".
    rows : int, 1..4096 (default 64)
        Destination accumulators (local rows this PE can own).
    max_cols : int, 1..65536 (default 1024)
        Columns the pointer banks can describe (``max_cols + 1`` pointers).
    matrix_depth : int, 1..65536 (default 1024)
        Sparse-matrix SRAM rows (``row_bits`` wide).
    codebook_bits, index_bits : int, 1..8 (default 4, 4)
    row_bits : int (default 64)
        Sparse-matrix SRAM width: a multiple of ``codebook_bits + index_bits`` holding a
        power-of-two number of entries, at most 64.
    pointer_bits : int, 1..32 (default 16)
    weight_format, act_format : IntFormat, signed, 2..32 bits (default 16-bit)
    acc_width : int (default 48)
        Accumulator width, ``weight.width + act.width`` .. 64; accumulation wraps.
    readout_stages : int, 1..3 (default 3)
        Registers in the read-out path (latency of ``rd`` -> ``o``).

    Ports
    -----
    act : In(stream) ``{col, value}``
        Broadcast activations. Accepted when ``act.valid & act.ready``; ``act.ready`` is
        ``queue level != act_queue_depth`` at the start of the cycle.
    load : In(stream) ``{target, addr, data}``, always ready
        Writes one word: ``target`` 0 codebook (``addr`` = code), 1 even pointer bank,
        2 odd pointer bank, 3 sparse-matrix row. Load only while ``idle``.
    rd : In(stream) ``{row}`` / o : Out(stream) ``{value}``
        Read-out: for each requested local row, ``o`` returns
        ``ReLU?(sat(round_rne(acc >> shift)))`` ``readout_stages`` cycles later (a
        ``StallPipeline``: accumulator read | arithmetic shift with the round-up decision
        taken in parallel from the guard and sticky bits | increment, saturate (decided
        from the shifted bits) and ReLU; it stalls on ``o.ready``). Rows never written
        since ``clear`` read 0.
    shift : In(range(acc_width)), relu : In(1)
        Completion configuration for the read-out (hold stable while reading).
    clear : In(1)
        Pulse while idle: forgets every accumulator and the error flags.
    idle : Out(1)
        Queue empty, no column popped and not yet taken, no entry left to issue and the MAC
        pipeline empty.
    error : Out(3)
        Sticky ``ERR_PTR_ORDER | ERR_PTR_RANGE | ERR_ROW_RANGE`` (cleared by ``clear``).
    pop, take, issue : Out(1)
        Observation: a queue entry is popped (pointer read issued) / the walker takes a
        column descriptor / a sparse-matrix entry is issued, this cycle.

    Timing (``tensorforge.golden.eie``, "Microarchitecture and cycle model"): a column
    popped in cycle ``q`` (needs one of ``DESCRIPTOR_SLOTS`` = 4 free slots) has its
    pointers registered in ``q+1`` and decoded in ``q+2``; the walker takes it in some
    cycle ``s >= q+3`` when free and issues its ``c`` entries in ``s+1 .. s+c``, so a
    column costs ``max(1, c)`` walker cycles. An entry issued in cycle ``i`` passes
    R (matrix row register), E (lane, codebook, row index), M (product), A1 (accumulator
    read, forwarding from W), A2 (add, bypass of the entry ahead) and is written back at
    the end of cycle ``i + 6`` (``latency``). No SRAM output and no adder feeds a control
    decision in the same cycle.
    """

    def __init__(self, *, act_queue_depth=8, rows=64, max_cols=1024, matrix_depth=1024, codebook_bits=4,
                 index_bits=4, row_bits=64, pointer_bits=16, weight_format=INT16, act_format=INT16,
                 acc_width=48, readout_stages=3):
        self._MustUse__used = True          # a constructor that raises must not warn "never used"
        self._depth = _check("act_queue_depth", act_queue_depth, 1, 64)
        self._rows = _check("rows", rows, 1, 4096)
        self._max_cols = _check("max_cols", max_cols, 1, 65536)
        self._matrix_depth = _check("matrix_depth", matrix_depth, 1, 65536)
        self._cb = _check("codebook_bits", codebook_bits, 1, 8)
        self._ib = _check("index_bits", index_bits, 1, 8)
        eb = codebook_bits + index_bits
        if (not isinstance(row_bits, int) or isinstance(row_bits, bool) or not eb <= row_bits <= 64
                or row_bits % eb or (row_bits // eb) & (row_bits // eb - 1)):
            raise ValueError(f"row_bits must be a multiple of codebook_bits + index_bits = {eb} holding "
                             f"a power-of-two number of entries, at most 64, not {row_bits!r}")
        self._row_bits = row_bits
        self._pointer_bits = _check("pointer_bits", pointer_bits, 1, 32)
        for name, fmt in (("weight_format", weight_format), ("act_format", act_format)):
            if not isinstance(fmt, IntFormat):
                raise TypeError(f"{name} must be an IntFormat (e.g. IntFormat(16)), not {fmt!r}")
            if not fmt.signed or not 2 <= fmt.width <= 32:
                raise ValueError(f"{name} must be a signed IntFormat of 2 to 32 bits, not {fmt}")
        self._wf, self._af = weight_format, act_format
        self._acc = _check("acc_width", acc_width, weight_format.width + act_format.width, 64)
        self._readout_stages = _check("readout_stages", readout_stages, 1, 3)

        self._col_bits = _bits_for(max_cols - 1)
        self._even_depth = (max_cols + 2) // 2
        self._odd_depth = (max_cols + 1) // 2
        addr_bits = max(_bits_for(matrix_depth - 1), _bits_for(self._even_depth - 1), codebook_bits)
        super().__init__({
            "act": In(stream.Signature(data.StructLayout({
                "col": unsigned(self._col_bits), "value": signed(act_format.width)}))),
            "load": In(stream.Signature(data.StructLayout({
                "target": unsigned(2), "addr": unsigned(addr_bits), "data": unsigned(row_bits)}))),
            "rd": In(stream.Signature(data.StructLayout({"row": unsigned(_bits_for(rows - 1))}))),
            "o": Out(stream.Signature(data.StructLayout({"value": signed(act_format.width)}))),
            "shift": In(range(acc_width)),
            "relu": In(1),
            "clear": In(1),
            "idle": Out(1),
            "error": Out(3),
            "pop": Out(1),
            "take": Out(1),
            "issue": Out(1),
        })
        self._MustUse__used = False

    # read-only parameters
    act_queue_depth = property(lambda self: self._depth)
    rows = property(lambda self: self._rows)
    max_cols = property(lambda self: self._max_cols)
    matrix_depth = property(lambda self: self._matrix_depth)
    codebook_bits = property(lambda self: self._cb)
    index_bits = property(lambda self: self._ib)
    row_bits = property(lambda self: self._row_bits)
    pointer_bits = property(lambda self: self._pointer_bits)
    weight_format = property(lambda self: self._wf)
    act_format = property(lambda self: self._af)
    acc_width = property(lambda self: self._acc)

    @property
    def entries_per_row(self):
        return self._row_bits // (self._cb + self._ib)

    readout_stages = property(lambda self: self._readout_stages)

    @property
    def field_formats(self):
        """``{stream: {field: format}}`` for the manifest (``None``: raw bits / control fields)."""
        return {"act": {"col": None, "value": self._af}, "load": {"target": None, "addr": None, "data": None},
                "rd": {"row": None}, "o": {"value": self._af}}

    @property
    def readout_latency(self):
        """Cycles from an accepted ``rd`` request to its ``o`` value (``readout_stages``)."""
        return self._readout_stages

    @property
    def latency(self):
        """Cycles from an entry's issue to its accumulator write (R, E, M, A1, A2, W)."""
        return PIPELINE_STAGES

    def elaborate(self, platform):
        m = Module()
        cb, ib, eb = self._cb, self._ib, self._cb + self._ib
        epr = self.entries_per_row
        lane_bits = max(0, (epr - 1).bit_length())
        pb, acc_w, aw, ww = self._pointer_bits, self._acc, self._af.width, self._wf.width
        rows = self._rows

        # ---- memories -------------------------------------------------------------------
        m.submodules.codebook = codebook = Memory(shape=signed(ww), depth=1 << cb, init=[])
        m.submodules.ptr_even = ptr_even = Memory(shape=unsigned(pb), depth=self._even_depth, init=[])
        m.submodules.ptr_odd = ptr_odd = Memory(shape=unsigned(pb), depth=self._odd_depth, init=[])
        m.submodules.matrix = matrix = Memory(shape=unsigned(self._row_bits), depth=self._matrix_depth, init=[])
        m.submodules.accum = accum = Memory(shape=signed(acc_w), depth=rows, init=[])

        # ---- load interface ---------------------------------------------------------------
        ld = self.load.payload
        m.d.comb += self.load.ready.eq(1)
        for target, mem in ((LOAD_CODEBOOK, codebook), (LOAD_PTR_EVEN, ptr_even),
                            (LOAD_PTR_ODD, ptr_odd), (LOAD_MATRIX, matrix)):
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(ld.addr), wp.data.eq(ld.data),
                         wp.en.eq(self.load.valid & (ld.target == target))]

        # ---- activation queue --------------------------------------------------------------
        # Each entry carries its two pointer-bank addresses, computed when it is pushed, so the
        # pop side drives the bank addresses straight from the queue storage.
        ev_bits = _bits_for(self._even_depth - 1)
        od_bits = _bits_for(self._odd_depth - 1)
        m.submodules.queue = queue = SyncFIFO(width=1 + ev_bits + od_bits + aw, depth=self._depth)
        in_col = self.act.payload.col
        m.d.comb += [queue.w_data.eq(Cat(in_col[0], ((in_col + 1) >> 1)[:ev_bits], (in_col >> 1)[:od_bits],
                                         self.act.payload.value)),
                     queue.w_en.eq(self.act.valid), self.act.ready.eq(queue.w_rdy)]
        head_odd = queue.r_data[0]
        head_ev_addr = queue.r_data[1:1 + ev_bits]
        head_od_addr = queue.r_data[1 + ev_bits:1 + ev_bits + od_bits]
        head_val = queue.r_data[1 + ev_bits + od_bits:].as_signed()

        # ---- pointer prefetch: fetch (cycle q), pointer register (q+1), decode (q+2) ------------
        # ``slots_used`` counts columns popped and not yet taken by the walker; a pop needs a free
        # slot at the start of the cycle, so the descriptor FIFO never overflows and the pop
        # decision is two registered compares.
        slots_used = Signal(range(DESCRIPTOR_SLOTS + 1))
        take = Signal()
        pop = Signal()
        m.d.comb += [pop.eq(queue.r_rdy & (slots_used != DESCRIPTOR_SLOTS)), queue.r_en.eq(pop)]
        with m.If(pop & ~take):
            m.d.sync += slots_used.eq(slots_used + 1)
        with m.Elif(take & ~pop):
            m.d.sync += slots_used.eq(slots_used - 1)

        ev_rd = ptr_even.read_port()
        od_rd = ptr_odd.read_port()
        m.d.comb += [ev_rd.addr.eq(head_ev_addr), od_rd.addr.eq(head_od_addr)]
        f_valid, f_odd, f_act = Signal(), Signal(), Signal(signed(aw))       # fetch -> pointer register
        m.d.sync += [f_valid.eq(pop), f_odd.eq(head_odd), f_act.eq(head_val)]
        r_valid, r_odd, r_act = Signal(), Signal(), Signal(signed(aw))       # pointer register -> decode
        r_ev, r_od = Signal(pb), Signal(pb)
        m.d.sync += [r_valid.eq(f_valid), r_odd.eq(f_odd), r_act.eq(f_act),
                     r_ev.eq(ev_rd.data), r_od.eq(od_rd.data)]
        start_p = Mux(r_odd, r_od, r_ev)
        end_p = Mux(r_odd, r_ev, r_od)
        diff = Signal(pb)
        m.d.comb += diff.eq(end_p - start_p)
        order_bad = start_p > end_p
        range_bad = end_p > self._matrix_depth * epr
        ok = ~order_bad & ~range_bad
        bad_order = r_valid & order_bad
        bad_range = r_valid & ~order_bad & range_bad
        count = Signal(pb)
        m.d.comb += count.eq(Mux(ok, diff, 0))
        desc = data.StructLayout({"start": unsigned(pb), "count": unsigned(pb), "act": signed(aw),
                                  "nonempty": unsigned(1), "one": unsigned(1)})
        m.submodules.descriptors = dq = SyncFIFO(width=desc.size, depth=DESCRIPTOR_SLOTS)
        d_in = Signal(desc)
        m.d.comb += [d_in.start.eq(start_p), d_in.count.eq(count), d_in.act.eq(r_act),
                     d_in.nonempty.eq(ok & (diff != 0)), d_in.one.eq(ok & (diff == 1)),
                     dq.w_data.eq(d_in), dq.w_en.eq(r_valid)]
        d_out = Signal(desc)
        m.d.comb += d_out.eq(dq.r_data)

        # ---- walker: take (cycle s), issue entries s+1 .. s+c ---------------------------------
        cur = Signal(pb)                    # address of the entry issued this cycle (when walking)
        rem = Signal(pb)                    # entries left, this cycle's included
        walking = Signal()                  # rem != 0
        one_left = Signal()                 # rem == 1
        wact = Signal(signed(aw))
        first = Signal()
        issue = Signal()
        m.d.comb += [issue.eq(walking), take.eq((~walking | one_left) & dq.r_rdy), dq.r_en.eq(take)]
        with m.If(take):
            m.d.sync += [cur.eq(d_out.start), rem.eq(d_out.count), walking.eq(d_out.nonempty),
                         one_left.eq(d_out.one), wact.eq(d_out.act), first.eq(1)]
        with m.Elif(walking):
            m.d.sync += [cur.eq(cur + 1), rem.eq(rem - 1), walking.eq(~one_left), one_left.eq(rem == 2),
                         first.eq(0)]
        m.d.comb += [self.pop.eq(pop), self.take.eq(take), self.issue.eq(issue)]

        # ---- issue (cycle i): sparse-matrix read; R (i+1): the row is registered ---------------
        mat_rd = matrix.read_port()
        m.d.comb += mat_rd.addr.eq(cur >> lane_bits)
        i_valid, i_first = Signal(), Signal()
        i_lane = Signal(max(1, lane_bits))
        i_act = Signal(signed(aw))
        m.d.sync += [i_valid.eq(issue), i_first.eq(first), i_act.eq(wact)]
        if lane_bits:
            m.d.sync += i_lane.eq(cur[:lane_bits])
        e_valid, e_first = Signal(), Signal()
        e_lane = Signal(max(1, lane_bits))
        e_act = Signal(signed(aw))
        e_row = Signal(self._row_bits)
        m.d.sync += [e_valid.eq(i_valid), e_first.eq(i_first), e_lane.eq(i_lane), e_act.eq(i_act),
                     e_row.eq(mat_rd.data)]

        # ---- E (i+2): lane select, codebook lookup, address accumulation ----------------------
        entry = e_row.word_select(e_lane, eb) if lane_bits else e_row[:eb]
        v = entry[:cb]
        z = entry[cb:eb]
        cb_rd = codebook.read_port(domain="comb")
        m.d.comb += cb_rd.addr.eq(v)
        w = Mux(v == 0, 0, cb_rd.data)                  # code 0 is the exact zero, whatever word 0 holds
        xw = _bits_for(rows + (1 << ib))
        x_prev = Signal(xw)
        x = Signal(xw + 1)
        m.d.comb += x.eq(Mux(e_first, z, x_prev + z + 1))
        m_valid = Signal()
        m_x = Signal(xw + 1)
        m_w = Signal(signed(ww))
        m_a = Signal(signed(aw))
        m.d.sync += [m_valid.eq(e_valid), m_x.eq(x), m_w.eq(w), m_a.eq(e_act)]
        with m.If(e_valid):
            m.d.sync += x_prev.eq(x)

        # ---- M (i+3): exact product --------------------------------------------------------
        a1_valid = Signal()
        a1_x = Signal(xw + 1)
        a1_prod = Signal(signed(ww + aw))
        m.d.sync += [a1_valid.eq(m_valid), a1_x.eq(m_x), a1_prod.eq(m_w * m_a)]

        # ---- A1 (i+4): accumulator read, forwarding from W ---------------------------------
        written = Signal(rows)                           # accumulator holds a value since clear
        acc_rd = accum.read_port(domain="comb")
        m.d.comb += acc_rd.addr.eq(a1_x)
        a2_valid = Signal()
        a2_x = Signal(xw + 1)
        a2_prod = Signal(signed(ww + aw))
        a2_old = Signal(signed(acc_w))
        a2_bypass = Signal()
        w_valid = Signal()
        w_x = Signal(xw + 1)
        w_sum = Signal(signed(acc_w))
        in_range_a = a1_x < rows
        stored = Mux(in_range_a & written.bit_select(a1_x[:_bits_for(rows - 1)], 1), acc_rd.data, 0)
        from_w = w_valid & (w_x == a1_x)                 # written at the end of this cycle: not in `stored`
        m.d.sync += [a2_valid.eq(a1_valid), a2_x.eq(a1_x), a2_prod.eq(a1_prod),
                     a2_old.eq(Mux(from_w, w_sum, stored)),
                     a2_bypass.eq(a2_valid & (a2_x == a1_x))]      # the entry ahead: its sum is in W next

        # ---- A2 (i+5): add (wrapping) with bypass of the entry just ahead -------------------
        old = Mux(a2_bypass, w_sum, a2_old)
        m.d.sync += [w_valid.eq(a2_valid), w_x.eq(a2_x), w_sum.eq((old + a2_prod)[:acc_w].as_signed())]

        # ---- W (i+6): write back ---------------------------------------------------------
        acc_wr = accum.write_port()
        w_ok = w_valid & (w_x < rows)
        m.d.comb += [acc_wr.addr.eq(w_x), acc_wr.data.eq(w_sum), acc_wr.en.eq(w_ok)]

        # ---- errors, clear, idle -----------------------------------------------------------
        err = Signal(3)
        with m.If(self.clear):
            m.d.sync += [err.eq(0), written.eq(0)]
        with m.Else():
            m.d.sync += err.eq(err | Cat(bad_order, bad_range, w_valid & ~(w_x < rows)))
            with m.If(w_ok):
                m.d.sync += written.bit_select(w_x[:_bits_for(rows - 1)], 1).eq(1)
        m.d.comb += [
            self.error.eq(err),
            self.idle.eq(~queue.r_rdy & (slots_used == 0) & ~walking & ~i_valid & ~e_valid & ~m_valid
                         & ~a1_valid & ~a2_valid & ~w_valid),
        ]

        # ---- read-out: round half to even, saturate, ReLU (StallPipeline) -------------------
        rp = StallPipeline(m, i=self.rd, o=self.o, stages=self._readout_stages, weights=[2, 4, 2], name="ro")
        out_rd = accum.read_port(domain="comb")
        rrow = self.rd.payload.row
        m.d.comb += out_rd.addr.eq(rrow)
        racc = Signal(signed(acc_w))
        m.d.comb += racc.eq(Mux((rrow < rows) & written.bit_select(rrow, 1), out_rd.data, 0))
        s1 = rp.boundary({"acc": racc})
        # step 2: arithmetic shift, with the rounding decision taken in parallel from the bits
        # shifted out: guard g = acc[sh-1], sticky = (acc[sh-2:0] != 0), up = g & (sticky | lsb)
        sh = self.shift
        acc1 = s1["acc"]
        q = Signal(signed(acc_w))
        m.d.comb += q.eq(acc1 >> sh)
        guard = Cat(Const(0, 1), acc1).bit_select(sh, 1)            # acc[sh-1]; 0 when sh == 0
        below_guard = Cat(*[sh > k + 1 for k in range(acc_w)])      # bit k: k < sh - 1
        sticky = (acc1.as_unsigned() & below_guard).any()
        up = Signal()
        m.d.comb += up.eq(guard & (sticky | q[0]))
        s2 = rp.boundary({"q": q, "up": up})
        # step 3: q + up saturated to act_format (from the bits of q alone), then ReLU
        lo, hi = self._af.min, self._af.max
        q2, up2 = s2["q"], s2["up"]
        top = q2[aw - 1:]                                            # must be all sign bits to fit
        neg = q2[-1]
        over_hi = ~neg & (top != 0)                                  # q > hi
        at_hi = (top == 0) & q2[:aw - 1].all()                       # q == hi
        under_lo = neg & ~top.all()                                  # q < lo (q + up <= lo)
        sat_hi = over_hi | (at_hi & up2)
        low = Signal(signed(aw))
        m.d.comb += low.eq(q2[:aw] + up2)                           # q + up when it fits
        result = Signal(signed(aw))
        negative = under_lo | (~sat_hi & low[-1])
        m.d.comb += result.eq(Mux(self.relu & negative, 0, Mux(sat_hi, hi, Mux(under_lo, lo, low))))
        s3 = rp.boundary({"value": result})
        m.d.comb += self.o.payload.value.eq(s3["value"])
        rp.check_complete()
        return m
