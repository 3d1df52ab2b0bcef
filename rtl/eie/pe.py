"""EIE processing element: activation queue, pointer/sparse-matrix read, 4-stage MAC with bypass.

The cycle-by-cycle behaviour is specified in ``tensorforge.golden.eie`` (module
docstring, "Microarchitecture and cycle model"); this component implements it
exactly, so ``golden.eie.schedule`` predicts every pop and ``golden.eie.spmv`` every
output bit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

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
        ``StallPipeline``: accumulator read | shift and round | saturate and ReLU; it
        stalls on ``o.ready``). Rows never written since ``clear`` read 0.
    shift : In(range(acc_width)), relu : In(1)
        Completion configuration for the read-out (hold stable while reading).
    clear : In(1)
        Pulse while idle: forgets every accumulator and the error flags.
    idle : Out(1)
        Queue empty, no pointer read, no entry left and the MAC pipeline empty.
    error : Out(3)
        Sticky ``ERR_PTR_ORDER | ERR_PTR_RANGE | ERR_ROW_RANGE`` (cleared by ``clear``).
    pop, issue : Out(1)
        Observation: a queue entry is popped (pointer read issued) / a sparse-matrix
        entry is issued, this cycle.

    Timing: see ``tensorforge.golden.eie``; a column costs ``max(1, entries)`` cycles,
    an entry issued in cycle ``s`` is written back at the end of cycle ``s + 4``.
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
    def readout_latency(self):
        """Cycles from an accepted ``rd`` request to its ``o`` value (``readout_stages``)."""
        return self._readout_stages

    @property
    def latency(self):
        """Cycles from an entry's issue to its accumulator write (E, M, A, W)."""
        return 4

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
        m.submodules.queue = queue = SyncFIFO(width=self._col_bits + aw, depth=self._depth)
        m.d.comb += [queue.w_data.eq(Cat(self.act.payload.col, self.act.payload.value)),
                     queue.w_en.eq(self.act.valid), self.act.ready.eq(queue.w_rdy)]
        head_col = queue.r_data[:self._col_bits]
        head_val = queue.r_data[self._col_bits:].as_signed()

        # ---- pointer read (cycle q) and walker (cycle q+1 ..) -----------------------------
        ev_rd = ptr_even.read_port()
        od_rd = ptr_odd.read_port()
        m.d.comb += [ev_rd.addr.eq((head_col + 1) >> 1), od_rd.addr.eq(head_col >> 1)]
        ptr_pending = Signal()
        pend_odd = Signal()
        pend_act = Signal(signed(aw))

        start_p = Mux(pend_odd, od_rd.data, ev_rd.data)
        end_p = Mux(pend_odd, ev_rd.data, od_rd.data)
        # Everything derived from the pointer SRAM outputs is computed in parallel (one
        # compare/subtract deep) because it feeds the pop decision in the same cycle.
        diff = Signal(pb)
        m.d.comb += diff.eq(end_p - start_p)
        order_bad = start_p > end_p
        range_bad = end_p > self._matrix_depth * epr
        ok = ~order_bad & ~range_bad
        bad_order = ptr_pending & order_bad
        bad_range = ptr_pending & ~order_bad & range_bad
        # walker registers: next entry address, entries left, and two flags decoded from it
        cur = Signal(pb)
        rem = Signal(pb)
        walking = Signal()                  # rem != 0
        one_left = Signal()                 # rem == 1
        wact = Signal(signed(aw))
        first = Signal()
        ecur, eact, efirst = Signal(pb), Signal(signed(aw)), Signal()
        issue, last = Signal(), Signal()
        n_walking, n_one_left, n_rem = Signal(), Signal(), Signal(pb)
        with m.If(ptr_pending):
            m.d.comb += [ecur.eq(start_p), eact.eq(pend_act), efirst.eq(1),
                         issue.eq(ok & (diff != 0)), last.eq(diff == 1),   # last only matters when issuing
                         n_walking.eq(ok & (diff != 0) & (diff != 1)), n_one_left.eq(ok & (diff == 2)),
                         n_rem.eq(diff - 1)]
        with m.Else():
            m.d.comb += [ecur.eq(cur), eact.eq(wact), efirst.eq(first),
                         issue.eq(walking), last.eq(one_left),
                         n_walking.eq(walking & ~one_left), n_one_left.eq(walking & (rem == 2)),
                         n_rem.eq(rem - 1)]
        free = ~issue | last
        pop = Signal()
        m.d.comb += [pop.eq(free & queue.r_rdy), queue.r_en.eq(pop)]
        m.d.sync += [cur.eq(ecur + 1), rem.eq(n_rem), walking.eq(n_walking), one_left.eq(n_one_left),
                     wact.eq(eact), first.eq(efirst & ~issue), ptr_pending.eq(pop)]
        with m.If(pop):
            m.d.sync += [pend_odd.eq(head_col[0]), pend_act.eq(head_val)]
        m.d.comb += [self.pop.eq(pop), self.issue.eq(issue)]

        # ---- issue: sparse-matrix read (cycle s) ------------------------------------------
        mat_rd = matrix.read_port()
        m.d.comb += mat_rd.addr.eq(ecur >> lane_bits)
        e_valid, e_first = Signal(), Signal()
        e_lane = Signal(max(1, lane_bits))
        e_act = Signal(signed(aw))
        m.d.sync += [e_valid.eq(issue), e_first.eq(efirst), e_act.eq(eact)]
        if lane_bits:
            m.d.sync += e_lane.eq(ecur[:lane_bits])

        # ---- E (s+1): lane select, codebook lookup, address accumulation ------------------
        entry = mat_rd.data.word_select(e_lane, eb) if lane_bits else mat_rd.data[:eb]
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

        # ---- M (s+2): exact product --------------------------------------------------------
        a_valid = Signal()
        a_x = Signal(xw + 1)
        a_prod = Signal(signed(ww + aw))
        m.d.sync += [a_valid.eq(m_valid), a_x.eq(m_x), a_prod.eq(m_w * m_a)]

        # ---- A (s+3): accumulator read with bypass, add (wrapping) -----------------------
        written = Signal(rows)                           # accumulator holds a value since clear
        acc_rd = accum.read_port(domain="comb")
        m.d.comb += acc_rd.addr.eq(a_x)
        w_valid = Signal()
        w_x = Signal(xw + 1)
        w_sum = Signal(signed(acc_w))
        in_range_a = a_x < rows
        stored = Mux(in_range_a & written.bit_select(a_x[:_bits_for(rows - 1)], 1), acc_rd.data, 0)
        bypass = w_valid & (w_x == a_x)
        old = Mux(bypass, w_sum, stored)
        m.d.sync += [w_valid.eq(a_valid), w_x.eq(a_x), w_sum.eq((old + a_prod)[:acc_w].as_signed())]

        # ---- W (s+4): write back ---------------------------------------------------------
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
            self.idle.eq(~queue.r_rdy & ~ptr_pending & ~issue & ~e_valid & ~m_valid & ~a_valid & ~w_valid),
        ]

        # ---- read-out: round half to even, saturate, ReLU (StallPipeline) -------------------
        rp = StallPipeline(m, i=self.rd, o=self.o, stages=self._readout_stages, weights=[2, 5, 2], name="ro")
        out_rd = accum.read_port(domain="comb")
        rrow = self.rd.payload.row
        m.d.comb += out_rd.addr.eq(rrow)
        racc = Signal(signed(acc_w))
        m.d.comb += racc.eq(Mux((rrow < rows) & written.bit_select(rrow, 1), out_rd.data, 0))
        s1 = rp.boundary({"acc": racc})
        sh = self.shift
        q = Signal(signed(acc_w))
        m.d.comb += q.eq(s1["acc"] >> sh)
        one = Const(1, acc_w + 1)
        mask = Signal(acc_w + 1)
        half = Signal(acc_w + 1)
        m.d.comb += [mask.eq((one << sh) - 1), half.eq((one << sh) >> 1)]
        rem_bits = Signal(acc_w + 1)
        m.d.comb += rem_bits.eq(s1["acc"].as_unsigned() & mask)
        up = (sh != 0) & ((rem_bits > half) | ((rem_bits == half) & q[0]))
        rounded = Signal(signed(acc_w + 1))
        m.d.comb += rounded.eq(q + up)
        s2 = rp.boundary({"rounded": rounded})
        lo, hi = self._af.min, self._af.max
        r2 = s2["rounded"]
        sat = Mux(r2 > hi, hi, Mux(r2 < lo, lo, r2))
        result = Signal(signed(aw))
        m.d.comb += result.eq(Mux(self.relu & (sat < 0), 0, sat))
        s3 = rp.boundary({"value": result})
        m.d.comb += self.o.payload.value.eq(s3["value"])
        rp.check_complete()
        return m
