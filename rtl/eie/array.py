"""EIE array: central unit (leading-non-zero detection, broadcast), N PEs, load/start/read-out.

The cycle-by-cycle behaviour of the compute phase is the one of
``tensorforge.golden.eie`` ("Microarchitecture and cycle model"): measured cycles
from ``start`` to ``done`` equal ``golden.eie.cycles(layer, a, queue_depth=D).total``
(with the default ``start_latency=ARRAY_START_LATENCY``, ``finish_latency=ARRAY_FINISH_LATENCY``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...golden.eie import ARRAY_FINISH_LATENCY, ARRAY_START_LATENCY
from ...golden.formats import INT16
from .leading_nonzero import LeadingNonZero
from .pe import EIEPE, LOAD_CODEBOOK, LOAD_MATRIX, LOAD_PTR_EVEN, LOAD_PTR_ODD

__all__ = ["EIEArray", "TARGET_CODEBOOK", "TARGET_PTR_EVEN", "TARGET_PTR_ODD", "TARGET_MATRIX",
           "TARGET_ACT", "TARGET_CLEAR", "ERR_PTR_ORDER", "ERR_PTR_RANGE", "ERR_ROW_RANGE", "ERR_LOAD",
           "START_LATENCY", "FINISH_LATENCY"]

#: ``load.payload.target`` values (the load command format, see :class:`EIEArray`).
TARGET_CODEBOOK, TARGET_PTR_EVEN, TARGET_PTR_ODD, TARGET_MATRIX, TARGET_ACT, TARGET_CLEAR = 0, 1, 2, 3, 4, 5
#: Bits of ``error``.
ERR_PTR_ORDER = 1    # some PE met p[j] > p[j+1] (column skipped)
ERR_PTR_RANGE = 2    # some PE met p[j+1] beyond its sparse-matrix memory (column skipped)
ERR_ROW_RANGE = 4    # some entry decoded to a local row >= rows (write dropped)
ERR_LOAD = 8         # a load command was out of range (word dropped); a start then does no work
#: Cycles from the accepted ``start`` to the first broadcast opportunity (cycle-model cycle 0).
START_LATENCY = ARRAY_START_LATENCY
#: Cycles from the end of the compute phase (all PEs idle) to ``done``.
FINISH_LATENCY = ARRAY_FINISH_LATENCY


def _bits_for(n):
    return max(1, int(n).bit_length())


def _decode(m, index, n, name):
    """One-hot decode of ``index`` into ``n`` bits, as two small decoders ANDed (no wide case)."""
    bits = max(1, (n - 1).bit_length())
    lo_bits = bits // 2
    hi_bits = bits - lo_bits
    lo = [Signal(name=f"{name}_lo{k}") for k in range(1 << lo_bits)]
    hi = [Signal(name=f"{name}_hi{k}") for k in range(1 << hi_bits)]
    idx = Signal(bits, name=f"{name}_idx")
    m.d.comb += idx.eq(index)
    for k, sig in enumerate(lo):
        m.d.comb += sig.eq(idx[:lo_bits] == k if lo_bits else 1)
    for k, sig in enumerate(hi):
        m.d.comb += sig.eq(idx[lo_bits:] == k)
    out = Signal(n, name=f"{name}_onehot")
    m.d.comb += out.eq(Cat(*[hi[j >> lo_bits] & lo[j & ((1 << lo_bits) - 1)] for j in range(n)]))
    return out


def _below(m, count, n, name):
    """Thermometer ``bit j = (j < count)`` for ``j < n``, from two small comparisons per bit group."""
    bits = max(1, n.bit_length())
    lo_bits = bits // 2
    c = Signal(bits, name=f"{name}_count")
    m.d.comb += c.eq(count)
    hi_c, lo_c = c[lo_bits:], c[:lo_bits]
    hi_max, lo_max = (1 << (bits - lo_bits)) - 1, (1 << lo_bits) - 1
    groups = {}
    out = []
    for j in range(n):
        g, r = j >> lo_bits, j & lo_max
        if g not in groups:
            gt, eq = Signal(name=f"{name}_gt{g}"), Signal(name=f"{name}_eq{g}")
            # (comparisons against a field's maximum are constant: leave them out for lint)
            m.d.comb += [gt.eq(hi_c > g if g < hi_max else 0), eq.eq(hi_c == g)]
            groups[g] = (gt, eq)
        gt, eq = groups[g]
        out.append(gt | (eq & (lo_c > r)) if lo_bits and r < lo_max else gt)
    sig = Signal(n, name=f"{name}_mask")
    m.d.comb += sig.eq(Cat(*out))
    return sig


def _check(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    return value


class EIEArray(wiring.Component):
    """EIE sparse matrix-vector engine: ``n_pe`` :class:`EIEPE` plus the central unit.

    Computes ``b = ReLU?(sat(round_rne((W a) >> shift)))`` for a layer compressed by
    ``golden.eie.compress(W, n_pe)``; bit-exact to ``golden.eie.spmv``.

    Parameters (keyword-only)
    -------------------------
    n_pe : int, 1..256
        Processing elements; row ``i`` lives in PE ``i % n_pe`` as local row ``i // n_pe``.
    queue_depth : int, 1..64 (default 8)
        Activation queue depth of every PE.
    rows : int (default 64)
        Local rows per PE (the array holds layers of up to ``n_pe * rows`` rows).
    max_cols : int, 1..65536 (default 1024)
        Input activations (columns) the source memory and pointer banks hold.
    matrix_depth, codebook_bits, index_bits, row_bits, pointer_bits, weight_format,
    act_format, acc_width, readout_stages
        Passed to every :class:`EIEPE` (same meaning and ranges).
    lnzd_fanin : int, 2..16 (default 4)
        Fan-in of the leading-non-zero detection tree.

    Load command format (``load`` stream, accepted only while idle: ``ready = ~busy``)
    -------------------------------------------------------------------------------
    Payload ``{target: 3 bits, pe, addr, data}``; one word per accepted transfer:

    ========  ===================  ======================================================
    target    name                 effect
    ========  ===================  ======================================================
    0         ``TARGET_CODEBOOK``  codebook word ``addr`` := ``data`` in *every* PE (``pe`` ignored)
    1         ``TARGET_PTR_EVEN``  PE ``pe`` even pointer bank word ``addr`` := ``data``
    2         ``TARGET_PTR_ODD``   PE ``pe`` odd pointer bank word ``addr`` := ``data``
    3         ``TARGET_MATRIX``    PE ``pe`` sparse-matrix row ``addr`` := ``data``
    4         ``TARGET_ACT``       input activation ``addr`` (column) := low ``act_format.width``
                                   bits of ``data`` (two's complement)
    5         ``TARGET_CLEAR``     every input activation := 0 and ``ERR_LOAD`` cleared
    6, 7      --                   invalid: ``ERR_LOAD``
    ========  ===================  ======================================================

    Images are exactly ``golden.eie.CompressedLayer.codebook_image``, ``ptr_even[pe]``,
    ``ptr_odd[pe]`` and ``matrix_rows[pe]``. Data bits above a memory's width are
    ignored. A command whose ``pe >= n_pe`` or ``addr`` is beyond the target memory
    (codebook ``2**codebook_bits``, even bank ``max_cols//2 + 1``, odd bank
    ``(max_cols+1)//2``, matrix ``matrix_depth``, activations ``max_cols``) is dropped
    and sets the sticky ``ERR_LOAD``. Memories keep their contents across runs (only
    the accumulators are cleared by ``start``), so a new layer only needs to overwrite
    the words it uses; stale words beyond its pointers are never read.

    Ports
    -----
    load : In(stream) ``{target, pe, addr, data}``
        See above.
    start : In(stream) ``{n_out, shift, relu, check, n_cols}``, ready while idle
        Starts one layer: clears the accumulators and the PE error flags, broadcasts every
        non-zero input activation, then streams the results of rows ``0 .. n_out-1``
        (clamped to ``n_pe * rows``) on ``o``. ``shift`` is the completion right shift
        (``CompressedLayer.weight_frac_bits`` for Q-format-preserving outputs), ``relu``
        enables ReLU. ``check = 1`` first runs a *check pass* over columns
        ``0 .. n_cols-1`` (see below); ``n_cols`` is ignored when ``check = 0``.
    o : Out(stream) ``{value}``
        Results in row order, ``act_format``; honours ``o.ready`` (any back-pressure).
        Rows beyond the layer (but below ``n_pe * rows``) read 0.
    busy : Out(1)
        From the accepted ``start`` until the last result has been accepted.
    done : Out(1)
        High from the end of the compute phase until the next accepted ``start``.
    error : Out(4)
        ``ERR_PTR_ORDER | ERR_PTR_RANGE | ERR_ROW_RANGE`` (of the current/last run; ORed
        over the PEs; cleared by ``start``) and ``ERR_LOAD`` (sticky until ``TARGET_CLEAR``).
    cycles : Out(32)
        Cycles of the last run from ``start`` to ``done``: when ``start`` is accepted in
        cycle 0, ``done`` is first high in cycle ``cycles``.
    broadcast : Out(1)
        Observation: an activation is broadcast to all PEs this cycle.

    Malformed images (what happens, precisely)
    ------------------------------------------
    The PEs check every column's pointers when they read them: a decreasing pair
    (``ERR_PTR_ORDER``) or an end pointer beyond ``matrix_depth * entries_per_row``
    (``ERR_PTR_RANGE``) skips that column in that PE (no entry issued, one cycle spent);
    an entry decoding to a local row ``>= rows`` (``ERR_ROW_RANGE``) has its
    accumulator write dropped. No memory is ever accessed out of range.

    - ``check = 1`` (not half-executed): a check pass broadcasts *every* column
      ``0 .. n_cols-1`` with the value 0 through the normal datapath, so every pointer
      pair and every stored entry of those columns is walked and checked while all
      accumulators stay 0. If any flag is raised the layer is **not executed**: ``done``
      rises right after the check pass, ``error`` holds the flags and every result reads
      0. Otherwise the real run follows at once.
    - ``check = 0`` (fast): errors are found during the run; everything else runs
      normally, so the results equal ``spmv`` of the layer with those columns/entries
      removed, and ``error`` is set when ``done`` rises -- results with ``error != 0``
      must be discarded.
    - A bad load command is caught before starting in both modes: with ``ERR_LOAD``
      set, ``start`` broadcasts nothing (all results 0) and ``cycles == 3``.

    Timing
    ------
    ``start`` accepted in cycle 0: the source bitmap is latched (cycle 0), the LNZD tree
    fills the broadcast register (cycle 1), cycle 2 is the cycle model's cycle 0
    (``START_LATENCY = 2``). The cycle after all PEs are idle with nothing left to
    broadcast (model cycle ``compute``) raises ``done`` (``FINISH_LATENCY = 1``), so
    ``cycles == golden.eie.cycles(layer, a, queue_depth=D).total``. With ``check = 1``
    the check pass comes first and the run starts in the cycle the check pass drains:
    ``cycles == cycles(layer, ones(n_cols), queue_depth=D).compute + START_LATENCY +
    cycles(layer, a, queue_depth=D).total`` for a well-formed layer. Read-out: one
    result per cycle without back-pressure, first result ``readout_stages`` cycles
    after ``done``.
    """

    def __init__(self, *, n_pe, queue_depth=8, rows=64, max_cols=1024, matrix_depth=1024, codebook_bits=4,
                 index_bits=4, row_bits=64, pointer_bits=16, weight_format=INT16, act_format=INT16,
                 acc_width=48, readout_stages=3, lnzd_fanin=4):
        self._MustUse__used = True
        self._n_pe = _check("n_pe", n_pe, 1, 256)
        self._depth = _check("queue_depth", queue_depth, 1, 64)
        if not isinstance(lnzd_fanin, int) or isinstance(lnzd_fanin, bool) or not 2 <= lnzd_fanin <= 16:
            raise ValueError(f"lnzd_fanin must be an integer between 2 and 16, not {lnzd_fanin!r}")
        self._fanin = lnzd_fanin
        self._pe_kwargs = dict(act_queue_depth=queue_depth, rows=rows, max_cols=max_cols,
                               matrix_depth=matrix_depth, codebook_bits=codebook_bits, index_bits=index_bits,
                               row_bits=row_bits, pointer_bits=pointer_bits, weight_format=weight_format,
                               act_format=act_format, acc_width=acc_width, readout_stages=readout_stages)
        proto = EIEPE(**self._pe_kwargs)          # validates the shared PE parameters
        self._proto = proto
        proto._MustUse__used = True        # only a parameter check, never elaborated
        self._rows, self._max_cols, self._matrix_depth = rows, max_cols, matrix_depth
        self._cb, self._ib, self._row_bits, self._pointer_bits = codebook_bits, index_bits, row_bits, pointer_bits
        self._wf, self._af, self._acc, self._readout_stages = weight_format, act_format, acc_width, readout_stages
        pe_addr = len(proto.load.payload.addr)
        self._addr_bits = max(pe_addr, _bits_for(max_cols - 1))
        self._data_bits = max(row_bits, act_format.width, weight_format.width, pointer_bits)
        self._pe_bits = _bits_for(n_pe - 1)
        self._cap = n_pe * rows
        super().__init__({
            "load": In(stream.Signature(data.StructLayout({
                "target": unsigned(3), "pe": unsigned(self._pe_bits), "addr": unsigned(self._addr_bits),
                "data": unsigned(self._data_bits)}))),
            "start": In(stream.Signature(data.StructLayout({
                "n_out": unsigned(_bits_for(self._cap)), "shift": unsigned(_bits_for(acc_width - 1)),
                "relu": unsigned(1), "check": unsigned(1), "n_cols": unsigned(_bits_for(max_cols))}))),
            "o": Out(stream.Signature(data.StructLayout({"value": signed(act_format.width)}))),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(4),
            "cycles": Out(32),
            "broadcast": Out(1),
        })
        self._MustUse__used = False

    n_pe = property(lambda self: self._n_pe)
    queue_depth = property(lambda self: self._depth)
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
    lnzd_fanin = property(lambda self: self._fanin)
    start_latency = property(lambda self: START_LATENCY)
    finish_latency = property(lambda self: FINISH_LATENCY)

    @property
    def readout_latency(self):
        """Cycles from ``done`` to the first result (no back-pressure): ``readout_stages``."""
        return self._readout_stages

    @property
    def entries_per_row(self):
        return self._proto.entries_per_row

    @property
    def field_formats(self):
        """``{stream: {field: format}}`` for the manifest (``None``: raw bits / control fields)."""
        return {"load": {"target": None, "pe": None, "addr": None, "data": None},
                "start": {"n_out": None, "shift": None, "relu": None, "check": None, "n_cols": None},
                "o": {"value": self._af}}

    def elaborate(self, platform):
        m = Module()
        n, aw, cols = self._n_pe, self._af.width, self._max_cols
        pes = [EIEPE(**self._pe_kwargs) for _ in range(n)]
        for p, pe in enumerate(pes):
            m.submodules[f"pe{p}"] = pe

        IDLE, COMPUTE, READOUT, CHECK = 0, 1, 2, 3
        state = Signal(2)
        fill = Signal()                     # cycle 1 of a run: the broadcast register is filling
        shift = Signal(len(self.start.payload.shift))
        relu = Signal()
        n_out = Signal(len(self.start.payload.n_out))
        done = Signal()
        count = Signal(32)
        cycles_out = Signal(32)
        load_err = Signal()
        m.d.comb += [self.busy.eq(state != IDLE), self.done.eq(done), self.cycles.eq(cycles_out)]

        # ---- source activations: memory + non-zero bitmap ------------------------------------
        m.submodules.act_mem = act_mem = Memory(shape=signed(aw), depth=cols, init=[])
        nz = Signal(cols)                   # activation j is non-zero
        pending = Signal(cols)              # non-zero and not yet broadcast in this run

        # ---- load interface -----------------------------------------------------------------
        ld = self.load.payload
        m.d.comb += self.load.ready.eq(state == IDLE)
        ld_fire = self.load.valid & self.load.ready
        pe_ok = ld.pe < n
        limits = {TARGET_CODEBOOK: 1 << self._cb, TARGET_PTR_EVEN: cols // 2 + 1,
                  TARGET_PTR_ODD: (cols + 1) // 2, TARGET_MATRIX: self._matrix_depth, TARGET_ACT: cols}
        ok = Signal()
        with m.Switch(ld.target):
            for t, lim in limits.items():
                with m.Case(t):
                    m.d.comb += ok.eq((ld.addr < lim) & (pe_ok if t in (1, 2, 3) else 1))
            with m.Case(TARGET_CLEAR):
                m.d.comb += ok.eq(1)
            with m.Default():
                m.d.comb += ok.eq(0)
        pe_target = {TARGET_CODEBOOK: LOAD_CODEBOOK, TARGET_PTR_EVEN: LOAD_PTR_EVEN,
                     TARGET_PTR_ODD: LOAD_PTR_ODD, TARGET_MATRIX: LOAD_MATRIX}
        pe_tgt = Signal(2)
        with m.Switch(ld.target):
            for t, v in pe_target.items():
                with m.Case(t):
                    m.d.comb += pe_tgt.eq(v)
            with m.Default():
                m.d.comb += pe_tgt.eq(0)
        for p, pe in enumerate(pes):
            mine = (ld.target == TARGET_CODEBOOK) | ((ld.target >= 1) & (ld.target <= 3) & (ld.pe == p))
            m.d.comb += [pe.load.valid.eq(ld_fire & ok & mine), pe.load.payload.target.eq(pe_tgt),
                         pe.load.payload.addr.eq(ld.addr), pe.load.payload.data.eq(ld.data)]
        act_wr = act_mem.write_port()
        is_act = ld_fire & ok & (ld.target == TARGET_ACT)
        act_val = ld.data[:aw]
        m.d.comb += [act_wr.addr.eq(ld.addr), act_wr.data.eq(act_val), act_wr.en.eq(is_act)]
        with m.If(ld_fire & ~ok):
            m.d.sync += load_err.eq(1)
        with m.If(ld_fire & ok & (ld.target == TARGET_CLEAR)):
            m.d.sync += [nz.eq(0), load_err.eq(0)]
        ld_sel = _decode(m, ld.addr[:_bits_for(cols - 1)], cols, "act_sel")
        with m.If(is_act):
            m.d.sync += nz.eq(Mux(act_val != 0, nz | ld_sel, nz & ~ld_sel))

        # ---- leading non-zero detection and broadcast ------------------------------------------
        m.submodules.lnzd = lnzd = LeadingNonZero(width=cols, fanin=self._fanin)
        m.d.comb += lnzd.bits.eq(pending)
        act_rd = act_mem.read_port(domain="comb")
        m.d.comb += act_rd.addr.eq(lnzd.index)
        bc_valid = Signal()
        bc_col = Signal(len(pes[0].act.payload.col))
        bc_val = Signal(signed(aw))
        all_ready = Signal()
        m.d.comb += all_ready.eq(Cat(*[pe.act.ready for pe in pes]).all())
        fire = bc_valid & all_ready
        for pe in pes:
            m.d.comb += [pe.act.valid.eq(fire), pe.act.payload.col.eq(bc_col), pe.act.payload.value.eq(bc_val)]
        m.d.comb += self.broadcast.eq(fire)
        running = (state == COMPUTE) | (state == CHECK)
        bc_sel = _decode(m, lnzd.index, cols, "bc_sel")
        with m.If(running & (fire | ~bc_valid)):
            # the check pass broadcasts every column with the value 0: pointers and entries are
            # walked (and checked) but every accumulator stays 0
            m.d.sync += [bc_valid.eq(lnzd.valid), bc_col.eq(lnzd.index),
                         bc_val.eq(Mux(state == CHECK, 0, act_rd.data))]
            with m.If(lnzd.valid):
                m.d.sync += pending.eq(pending & ~bc_sel)

        # ---- start / compute / done -------------------------------------------------------------
        all_idle = Cat(*[pe.idle for pe in pes]).all()
        st = self.start.payload
        m.d.comb += self.start.ready.eq(state == IDLE)
        start_fire = self.start.valid & self.start.ready
        for pe in pes:
            m.d.comb += [pe.clear.eq(start_fire), pe.shift.eq(shift), pe.relu.eq(relu)]
        m.d.sync += fill.eq(0)
        col_mask = _below(m, st.n_cols, cols, "cols")
        checking = st.check & ~load_err
        with m.If(start_fire):
            m.d.sync += [state.eq(Mux(checking, CHECK, COMPUTE)), fill.eq(1), done.eq(0), count.eq(1),
                         pending.eq(Mux(load_err, 0, Mux(st.check, col_mask, nz))), shift.eq(st.shift),
                         relu.eq(st.relu), n_out.eq(Mux(st.n_out > self._cap, self._cap, st.n_out))]
        drained = ~fill & ~bc_valid & ~lnzd.valid & all_idle
        pe_error = Signal()
        with m.If(running):
            m.d.sync += count.eq(count + 1)
            with m.If(drained & ((state == COMPUTE) | pe_error)):
                m.d.sync += [done.eq(1), cycles_out.eq(count + 1),
                             state.eq(Mux(n_out == 0, IDLE, READOUT))]
            with m.Elif(drained):                   # check pass clean: this cycle is the run's cycle 0
                m.d.sync += [state.eq(COMPUTE), fill.eq(1), pending.eq(nz)]

        # ---- read-out: requests and results in row order (row = r * n_pe + p) --------------------
        rq_p, op_p = Signal(range(max(2, n))), Signal(range(max(2, n)))
        rq_r = Signal(range(max(2, self._rows)))
        rq_n, op_n = Signal(len(n_out)), Signal(len(n_out))
        reading = state == READOUT
        req_live = reading & (rq_n != n_out)
        rd_ready = Signal()
        out_valid, out_value = Signal(), Signal(signed(aw))
        for p, pe in enumerate(pes):
            m.d.comb += [pe.rd.valid.eq(req_live & (rq_p == p)), pe.rd.payload.row.eq(rq_r),
                         pe.o.ready.eq(reading & self.o.ready & (op_p == p))]
            with m.If(rq_p == p):
                m.d.comb += rd_ready.eq(pe.rd.ready)
            with m.If(op_p == p):
                m.d.comb += [out_valid.eq(pe.o.valid), out_value.eq(pe.o.payload.value)]
        m.d.comb += [self.o.valid.eq(reading & out_valid), self.o.payload.value.eq(out_value)]
        with m.If(req_live & rd_ready):
            m.d.sync += rq_n.eq(rq_n + 1)
            with m.If(rq_p == n - 1):
                m.d.sync += [rq_p.eq(0), rq_r.eq(rq_r + 1)]
            with m.Else():
                m.d.sync += rq_p.eq(rq_p + 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [op_n.eq(op_n + 1), op_p.eq(Mux(op_p == n - 1, 0, op_p + 1))]
            with m.If(op_n + 1 == n_out):
                m.d.sync += state.eq(IDLE)
        with m.If(start_fire):
            m.d.sync += [rq_p.eq(0), rq_r.eq(0), rq_n.eq(0), op_p.eq(0), op_n.eq(0)]

        # ---- status -------------------------------------------------------------------------------
        pe_err = Signal(3)
        acc = Const(0, 3)
        for pe in pes:
            acc = acc | pe.error
        m.d.comb += [pe_err.eq(acc), pe_error.eq(acc != 0), self.error.eq(Cat(pe_err, load_err))]
        return m
