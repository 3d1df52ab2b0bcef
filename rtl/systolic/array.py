"""Systolic array for GEMM with stream interfaces, input skew and output de-skew."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import IntArith
from .mesh import Mesh, check_dim, check_logic_multipliers
from .pe import addend_delay, check_arith, check_dataflow, psum_hop
from ..fp.params import silence_on_error
from ..output_queue import CreditOutputQueue

__all__ = ["SystolicArray", "ACC_SPACING"]

#: WS: the fewest cycles between accepting a row that queues a partial sum (``emit`` = 0) and
#: the row that adds to it (``start`` = 0). The queue's block RAM is read two cycles before
#: that row's output stage, and the entry is written in the output stage of the row that
#: queued it: 2 + 1 (equals :data:`tensorforge.golden.systolic.ACC_SPACING`).
ACC_SPACING = 3


def _delay(m, value, n, enable, name, *, reset_less=True):
    """``value`` delayed by ``n`` registers that load while ``enable`` is high, or every cycle
    when ``enable`` is None (data registers are ``reset_less``; control bits pass
    ``reset_less=False``)."""
    for i in range(n):
        reg = Signal.like(value, name=f"{name}_d{i + 1}", reset_less=reset_less)
        if enable is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(enable):
                m.d.sync += reg.eq(value)
        value = reg
    return value


class SystolicArray(wiring.Component):
    """GEMM systolic array ``Y = X @ W`` (``rows`` x ``cols`` PEs) with valid/ready streams.

    Parameters
    ----------
    rows, cols : int
        Array size R x C (1..1024 each).
    dataflow : ``"ws"`` | ``"os"``
        Weight-stationary or output-stationary (see below).
    arith : arithmetic strategy
        :class:`.arith.IntArith` (default: i8 x i8 -> i32, any widths) or
        :class:`.arith.FloatArith`. The array never branches on the number format.
    acc_depth : int
        WS only: depth of the accumulator queue = the most activation rows one pass may have
        (1..65536, default 256). Unused by OS.
    logic_multipliers : int
        How many PEs (the last ones in row-major order) build their multiplier from logic
        instead of leaving ``a * b`` to DSP inference (0..rows*cols, default 0; see
        :class:`.mesh.Mesh`). Changes resources only, never numerics or timing.

    Streams (``amaranth.lib.stream``, valid/ready; a beat moves when both are high)
        ``w``  (in)  payload ``w[c]``, c < C: one row of weights (``arith.weight_format``).
        ``x``  (in)  payload ``x[r]``, r < R (``arith.in_format``), flag ``last``; WS adds
                     flags ``start`` and ``emit``.
        ``y``  (out) payload ``y[c]``, c < C: one row of results (``arith.acc_format``).

    Protocol, weight-stationary (``Y[m, n0:n0+C] += X[m, k0:k0+R] @ W[k0:k0+R, n0:n0+C]``)
        A *pass* uses one weight tile. Its R ``w`` beats carry the tile's rows in order:
        beat i = ``W[k0+i, n0:n0+C]`` (zero padded). The ``w`` stream is independent of ``x``:
        the array holds two weight tiles (double buffering), so the next pass's tile loads
        while the current pass computes; beat i is accepted as soon as row i of the bank it
        replaces is no longer needed by any activation in flight. The pass's activation rows
        follow on ``x``, one beat per row m: ``x[r] = X[m, k0+r]``, ``last`` on the pass's final row
        (the next beat uses the next weight tile). ``start``: the row begins a fresh sum
        (first K tile); otherwise its partial sum is added to the one the previous pass left
        for the same row in the accumulator queue (passes are FIFO-matched row by row, so a
        ``start=0`` pass must have exactly as many rows as the pass before it and at most
        ``acc_depth`` rows). ``emit``: the sum goes out on ``y`` (last K tile), else back to
        the queue. ``y`` carries one beat per emitted row, in x order:
        ``y[c] = Y[m, n0+c]``. Numerics: :func:`tensorforge.golden.systolic.gemm`.
    Protocol, output-stationary (``Y[m0:m0+R, n0:n0+C] = X[m0:m0+R, :] @ W[:, n0:n0+C]``)
        ``x`` and ``w`` are joined: a beat is taken from both in the same cycle (each
        ``ready`` depends combinationally on the other stream's ``valid`` and on ``x.last``,
        so drivers must raise ``valid`` without waiting for ``ready``). Beat k of a pass carries column k
        of the activation tile, ``x[r] = X[m0+r, k]``, and row k of the weights,
        ``w[c] = W[k, n0+c]``; ``last`` marks k = K-1. After it the tile's R result rows
        drain on ``y`` in order r = 0..R-1 (``y[c] = Y[m0+r, n0+c]``) while the next pass
        already computes; the last beat of a pass is held back until ``max(R, C)`` cycles
        after the previous pass's last beat (the drain is one row per cycle).

    Flow control
        WS: the datapath never stalls (no clock enable on any PE, skew or accumulator
        register: a global stall enable is a net with tens of thousands of loads, which set
        Fmax on an FPGA). ``y`` back-pressure is absorbed by a
        :class:`~tensorforge.rtl.output_queue.CreditOutputQueue` of ``latency + 1`` rows (LUT
        RAM, bypassed when empty, so the latency is unchanged): an x row is accepted only with
        a credit, ``x.ready = bank loaded & ((rows in flight or queued < latency + 1) |
        y.ready) & (start | ~acc_wait)`` -- with ``y.ready`` held high the array takes one row
        per cycle. Every term but ``y.ready`` and ``start`` is a flip-flop (each evaluated a
        cycle ahead), so ``x.ready`` is one gate deep. ``acc_wait``: a ``start=0`` row is
        held until ``ACC_SPACING`` = 3 cycles after the row whose queued sum it adds to (the
        same row of the previous pass) was accepted, so ``x.ready`` depends combinationally on ``x.payload.start``; only passes
        of one or two rows after their previous K pass wait, which costs cycles on arrays of
        one or two rows only (larger arrays are paced by their R weight beats per pass). Weight
        loading into a free bank goes on regardless of ``y``; an accepted ``w`` beat is
        written into its PE row from a register one cycle later (R >= 2).
        OS: all datapath registers share one enable, ``advance = y.ready | ~y.valid``: with
        ``y.ready`` low the whole array holds (nothing lost or duplicated) and ``x.ready``
        drops (combinationally from ``y.ready``).
        Clock domain ``sync`` (ports ``clk``, ``rst``); only control registers are reset.

    Timing (properties; cycle-exact model: :func:`tensorforge.golden.systolic.cycles`)
        WS: ``latency`` = R*H + C - 1 + A cycles from an x beat to its y beat (A =
        ``arith.addend_delay``, H = ``arith.mac_latency`` - A: the cycles a partial sum spends
        in one PE row), ``weight_load_cycles`` = R; :meth:`weight_row_release` (i) =
        max(1, i*H + C - 1): the earliest cycle, counted from a pass's last x beat, in which
        row i of its weight bank may be overwritten by the pass after next.
        OS: ``latency`` = C + 1 cycles from a pass's last beat to its first y beat,
        ``drain_cycles`` = R, ``pass_interval`` = max(R, C).
        ``initiation_interval`` = 1 beat per cycle on every stream.

    Implementation notes: the accumulator queue is a memory with one write port and one
    synchronous read port (block RAM on FPGAs) that prefetches the queue head into a register
    one cycle ahead (so no path runs from the block RAM's output through the accumulator
    adder back into it); the read-after-write spacing above means no entry is ever read
    while or right after it is written, so nothing is forwarded around the memory and no
    logic sits between the block RAM and that register; input skew and output de-skew are
    register chains of R(R-1)/2*H activations and C(C-1)/2 accumulators.
    """

    @silence_on_error
    def __init__(self, *, rows=4, cols=4, dataflow="ws", arith=None, acc_depth=256, logic_multipliers=0):
        self._rows = check_dim(rows, "rows")
        self._cols = check_dim(cols, "cols")
        self._dataflow = check_dataflow(dataflow)
        arith = IntArith() if arith is None else arith
        self._arith = check_arith(arith, dataflow)
        self._logic_multipliers = check_logic_multipliers(logic_multipliers, rows, cols, arith)
        if not isinstance(acc_depth, int) or isinstance(acc_depth, bool) or not 1 <= acc_depth <= 65536:
            raise ValueError(f"acc_depth must be an integer between 1 and 65536, not {acc_depth!r}")
        self._acc_depth = acc_depth
        a = arith
        x_fields = {"x": data.ArrayLayout(a.in_shape, rows), "last": 1}
        if dataflow == "ws":
            x_fields.update(start=1, emit=1)
        super().__init__({
            "w": In(stream.Signature(data.StructLayout({"w": data.ArrayLayout(a.weight_shape, cols)}))),
            "x": In(stream.Signature(data.StructLayout(x_fields))),
            "y": Out(stream.Signature(data.StructLayout({"y": data.ArrayLayout(a.acc_shape, cols)}))),
        })

    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    dataflow = property(lambda self: self._dataflow)
    arith = property(lambda self: self._arith)
    acc_depth = property(lambda self: self._acc_depth)
    logic_multipliers = property(lambda self: self._logic_multipliers)

    @property
    def top_name(self):
        """Suggested Verilog top name, e.g. ``systolic_ws_16x16_i8_i32`` (``_lm<N>`` appended
        when N multipliers are built from logic)."""
        lm = f"_lm{self._logic_multipliers}" if self._logic_multipliers else ""
        return f"systolic_{self._dataflow}_{self._rows}x{self._cols}_{self._arith.tag}{lm}"

    @property
    def initiation_interval(self):
        return 1

    @property
    def latency(self):
        if self._dataflow == "ws":
            return self._rows * psum_hop(self._arith) + self._cols - 1 + addend_delay(self._arith)
        return self._cols + 1

    @property
    def weight_load_cycles(self):
        return self._rows

    def weight_row_release(self, row):
        """Cycles after a pass's last x beat until row ``row`` of its weight bank may be reloaded."""
        return max(1, row * psum_hop(self._arith) + self._cols - 1)

    @property
    def drain_cycles(self):
        return self._rows

    @property
    def pass_interval(self):
        return max(self._rows, self._cols)

    @property
    def field_formats(self):
        """``{stream: {field path: format}}`` for the manifest (``None`` for the 1-bit flags)."""
        a = self._arith
        x = {f"x[{r}]": a.in_format for r in range(self._rows)}
        x["last"] = None
        if self._dataflow == "ws":
            x["start"] = None
            x["emit"] = None
        return {
            "w": {f"w[{c}]": a.weight_format for c in range(self._cols)},
            "x": x,
            "y": {f"y[{c}]": a.acc_format for c in range(self._cols)},
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.mesh = mesh = Mesh(rows=self._rows, cols=self._cols, arith=self._arith,
                                        dataflow=self._dataflow, logic_multipliers=self._logic_multipliers)
        if self._dataflow == "ws":
            m.d.comb += mesh.enable.eq(1)
            self._elaborate_ws(m, mesh)
        else:
            advance = Signal()
            m.d.comb += [mesh.enable.eq(advance), advance.eq(self.y.ready | ~self.y.valid)]
            self._elaborate_os(m, mesh, advance)
        return m

    # -- weight-stationary ---------------------------------------------------------------
    def _elaborate_ws(self, m, mesh):
        # H: cycles per PE row of a partial sum; A: cycles from x to the partial-sum input
        R, C, H, A, a = self._rows, self._cols, psum_hop(self._arith), addend_delay(self._arith), self._arith
        w, x, y = self.w, self.x, self.y

        # weight banks: full[b] = tile loaded and not yet finished. After a tile's last x beat,
        # since[b] counts cycles (saturating); that row reaches PE (i, C-1) -- the last use of
        # row i of the bank -- in cycle i*H + C - 1, so load beat i may be accepted from that
        # cycle on: w.ready = ~full[load_bank] & (since[load_bank] >= load_row*H + C - 1).
        last_use = (R - 1) * H + C - 1
        full = [Signal(name=f"bank{b}_full") for b in range(2)]
        since = [Signal(range(last_use + 2), init=last_use + 1, name=f"bank{b}_since") for b in range(2)]
        load_bank = Signal()
        load_row = Signal(range(R))
        cur_bank = Signal()
        x_fire = Signal()
        tile_done = Signal()
        w_fire = Signal()
        # w.ready is that rule evaluated one cycle ahead into a register (same value, cycle for
        # cycle), so no path runs from the bank counters through the comparison into the w
        # handshake and the ~40 registers it loads. The comparisons use registers only, for
        # both possible next load rows and both possible next `since` values; the handshakes
        # of this cycle only select among them.
        w_ready = Signal(init=1, name="w_ready")      # after reset every bank row is free
        m.d.comb += [w.ready.eq(w_ready), w_fire.eq(w.valid & w_ready)]
        fire_last = Signal()
        m.d.comb += fire_last.eq(w_fire & (load_row == R - 1))
        row_after = Mux(load_row == R - 1, 0, load_row + 1)
        free_next = []
        filled = []         # full[b] after this cycle unless its tile is done
        for b in range(2):
            done_b = Signal(name=f"bank{b}_done")
            m.d.comb += done_b.eq(tile_done & (cur_bank == b))
            since_inc = Mux(since[b] <= last_use, since[b] + 1, since[b])
            ge = {}
            for sname, s_next in (("inc", since_inc), ("restart", 1)):
                for rname, row in (("same", load_row), ("after", row_after)):
                    ge[sname, rname] = Signal(name=f"bank{b}_free_{sname}_{rname}")
                    m.d.comb += ge[sname, rname].eq(s_next >= row * H + C - 1)
            # the bank registers load these next values; w_ready is derived from the same ones
            filled.append(full[b] | (fire_last & (load_bank == b)))
            full_next = Mux(done_b, 0, filled[b])
            m.d.sync += [full[b].eq(full_next), since[b].eq(Mux(done_b, 1, since_inc))]
            free_same = Mux(done_b, ge["restart", "same"], ge["inc", "same"])
            free_after = Mux(done_b, ge["restart", "after"], ge["inc", "after"])
            free_next.append(~full_next & Mux(w_fire, free_after, free_same))
        load_bank_next = load_bank ^ fire_last
        m.d.sync += w_ready.eq(Mux(load_bank_next, free_next[1], free_next[0]))
        # The weight write is registered: an accepted beat is written into its PE row one cycle
        # later, from a register, so the w handshake does not drive the row's ~C*8 load enables
        # through the routing. Safe: the bank row it replaces is already free one cycle earlier,
        # and the activation that first uses the last row reaches it (R-1)*H >= 1 cycles after
        # the bank is marked full. With one row that margin is 0: R == 1 writes at once.
        w_load = Signal.like(mesh.w_load, name="w_load")
        for r in range(R):
            for b in range(2):
                m.d.comb += w_load[r][b].eq(w_fire & (load_bank == b) & (load_row == r))
        if R > 1:
            m.d.sync += mesh.w_load.eq(w_load)
            m.d.sync += mesh.w_in.eq(w.payload.w)
        else:
            m.d.comb += [mesh.w_load.eq(w_load), mesh.w_in.eq(w.payload.w)]
        with m.If(w_fire):
            m.d.sync += [load_row.eq(row_after), load_bank.eq(load_bank_next)]

        depth = R * H + C - 1 + A       # cycles from an x beat to its row at the output stage
        # the array never stalls: y back-pressure is absorbed by an output queue of depth + 1
        # rows, and a row enters only with a credit for it (every row takes one; a row whose
        # sum goes back to the accumulator queue returns it at the output stage)
        m.submodules.out_queue = queue = CreditOutputQueue(width=len(y.payload.as_value()), depth=depth + 1)
        # acc_wait: a start=0 row must wait for the sum it adds to (read-after-write spacing
        # of the accumulator queue, below)
        acc_wait = Signal(name="acc_wait")
        # bank_ready == full[cur_bank], kept in a register (next value below)
        bank_ready = Signal(name="bank_ready")
        m.d.comb += [
            x.ready.eq(bank_ready & queue.can_accept & (x.payload.start | ~acc_wait)),
            x_fire.eq(x.valid & x.ready),
        ]
        m.d.comb += tile_done.eq(x_fire & x.payload.last)
        with m.If(tile_done):
            m.d.sync += cur_bank.eq(~cur_bank)
        # a tile that is done switches to the other bank, whose full flag is not cleared
        m.d.sync += bank_ready.eq(Mux(tile_done, Mux(cur_bank, filled[0], filled[1]),
                                      Mux(cur_bank, filled[1], filled[0])))

        # input skew: row r is delayed r*H cycles, the bank tag travels with the activation
        for r in range(R):
            m.d.comb += [
                mesh.x_in[r].eq(_delay(m, x.payload.x[r], r * H, None, f"x{r}_skew")),
                mesh.bank_in[r].eq(_delay(m, cur_bank, r * H, None, f"bank{r}_skew", reset_less=False)),
            ]
        flags = Signal(data.StructLayout({"valid": 1, "start": 1, "emit": 1}), name="flags_in")
        m.d.comb += [flags.valid.eq(x_fire), flags.start.eq(x.payload.start), flags.emit.eq(x.payload.emit)]
        # `ahead` is what the output stage `out` holds in the next cycle (depth >= 1)
        ahead = _delay(m, flags, depth - 1, None, "flags", reset_less=False)
        out = _delay(m, ahead, 1, None, "flags_out", reset_less=False)
        # output de-skew: column c is delayed C-1-c cycles
        psum = [_delay(m, mesh.psum_out[c], C - 1 - c, None, f"psum{c}_deskew") for c in range(C)]

        # accumulator queue (one entry = one row of C partial sums). The head entry is read
        # into a register (`head`) from the memory's synchronous read port (block RAM on
        # FPGAs) one cycle before it is used, so the output adder starts from a flip-flop, not
        # from the block RAM's slow clock-to-output, and nothing but wires lies between the
        # block RAM and `head`. That read is addressed one pop ahead (the pop of the next cycle
        # is known from `ahead`), so it would miss an entry written less than ACC_SPACING
        # cycles before the row that adds to it reaches the output stage. Such rows are never
        # admitted (see `acc_wait` below): no value is forwarded around the memory, and since
        # no read ever meets a write to its own entry, the memory is marked `no_rw_check`
        # (Yosys adds no read-during-write logic after the block RAM).
        row_layout = data.ArrayLayout(a.acc_shape, C)
        mem = Memory(shape=row_layout, depth=self._acc_depth, init=[], attrs={"no_rw_check": 1})
        m.submodules.acc_queue = mem
        wr = mem.write_port()
        rd = mem.read_port(domain="sync", transparent_for=())
        wptr = Signal(range(self._acc_depth))
        rptr = Signal(range(self._acc_depth))      # index of the entry in `head`
        head = Signal(row_layout, name="acc_head", reset_less=True)
        total = Signal(row_layout, name="total")
        for c in range(C):
            m.d.comb += total[c].eq(Mux(out.start, psum[c], a.add(m, a=head[c], b=psum[c], name=f"acc_add{c}")))
        push = Signal()
        pop = Signal()
        pop_ahead = Signal()
        m.d.comb += [
            queue.accept.eq(x_fire),
            queue.retire.eq(push),
            queue.result_valid.eq(out.valid & out.emit),
            queue.result.eq(total.as_value()),
            y.valid.eq(queue.o.valid),
            y.payload.eq(queue.o.payload),
            queue.o.ready.eq(y.ready),
            push.eq(out.valid & ~out.emit),
            pop.eq(out.valid & ~out.start),
            pop_ahead.eq(ahead.valid & ~ahead.start),
            wr.data.eq(total),
            wr.en.eq(push),
        ]

        def incr(ptr):
            return Mux(ptr == self._acc_depth - 1, 0, ptr + 1)

        # rptr + 1 and rptr + 2 are kept in registers, so the block RAM read address is a
        # select among flip-flops, not two increments deep
        D = self._acc_depth
        rptr_p1 = Signal.like(rptr, init=1 % D, name="rptr_p1")
        rptr_p2 = Signal.like(rptr, init=2 % D, name="rptr_p2")
        wptr_p1 = Signal.like(wptr, init=1 % D, name="wptr_p1")
        rptr_next = Signal.like(rptr)       # head index after this cycle
        m.d.comb += [
            rptr_next.eq(Mux(pop, rptr_p1, rptr)),
            wr.addr.eq(wptr),
            # the head index one cycle later: rd.data is loaded into `head` next cycle
            rd.addr.eq(Mux(pop_ahead, Mux(pop, rptr_p2, rptr_p1), rptr_next)),
        ]
        with m.If(pop):
            m.d.sync += [rptr_p1.eq(rptr_p2), rptr_p2.eq(incr(rptr_p2))]
        m.d.sync += [head.eq(rd.data), rptr.eq(rptr_next)]
        with m.If(push):
            m.d.sync += [wptr.eq(wptr_p1), wptr_p1.eq(incr(wptr_p1))]

        # Read-after-write spacing. A row that adds to a queued sum (start=0) claims the
        # oldest queued entry, which is read two cycles before the row's output stage and was
        # written in the output stage of the row that queued it (emit=0): the two rows must be
        # accepted >= ACC_SPACING cycles apart. Rows reach the output stage at a fixed latency,
        # so this is enforced at the input. `owed` counts queued entries not yet claimed by an
        # accepted row; `queued_d[i]`: the row accepted i + 1 cycles ago queued one. Those
        # recent entries are the youngest unclaimed ones (a row claiming one would have been
        # held), so the oldest unclaimed entry is too recent iff 0 < owed <= sum(queued_d):
        # then a start=0 row waits (x.ready low). With nothing unclaimed (a start=0 row without
        # an earlier pass to add to: a protocol error) nothing waits, and a wait ends within
        # ACC_SPACING - 1 cycles, so no input stream can hang the array. Only a pass of one or
        # two rows right after the previous K pass of the same rows ever waits (a longer pass
        # spaces its rows by its own length).
        queues = Signal()
        claims = Signal()
        m.d.comb += [queues.eq(x_fire & ~x.payload.emit), claims.eq(x_fire & ~x.payload.start)]
        owed = Signal(range(D + 2), name="acc_owed")
        m.d.sync += owed.eq(owed + queues - claims)
        queued_d = [Signal(name=f"acc_queued_d{i + 1}") for i in range(ACC_SPACING - 1)]
        for i, reg in enumerate(queued_d):
            m.d.sync += reg.eq(queues if i == 0 else queued_d[i - 1])
        # `acc_wait` is that condition evaluated one cycle ahead into a register, so x.ready
        # starts from a flip-flop. Its next value is computed from registers for each way the
        # row of this cycle may queue (q) and claim (c) -- owed' = owed + q - c, recent' =
        # q + queued_d[:-1] -- and x_fire selects among them last: the handshake feeds one
        # multiplexer, not a count and a compare
        def wait_after(q, c):
            recent = sum([q, *queued_d[:-1]])
            return Cat(*[(owed == k - q + c) & (recent >= k) for k in range(1, ACC_SPACING)]).any()

        start, emit = x.payload.start, x.payload.emit
        wait_idle = wait_after(0, 0)        # also a row that neither queues nor claims
        wait_fire = Mux(emit, Mux(start, wait_idle, wait_after(0, 1)),
                        Mux(start, wait_after(1, 0), wait_after(1, 1)))
        m.d.sync += acc_wait.eq(Mux(x_fire, wait_fire, wait_idle))

    # -- output-stationary ---------------------------------------------------------------
    def _elaborate_os(self, m, mesh, advance):
        R, C = self._rows, self._cols
        w, x, y = self.w, self.x, self.y
        S = max(R, C)
        since_last = Signal(range(S + 1), init=S)
        can = Signal()
        fire = Signal()
        m.d.comb += [
            can.eq(advance & (~x.payload.last | (since_last >= S))),
            x.ready.eq(w.valid & can),
            w.ready.eq(x.valid & can),
            fire.eq(x.valid & w.valid & can),
        ]
        fire_last = Signal()
        m.d.comb += fire_last.eq(fire & x.payload.last)
        with m.If(advance):
            with m.If(fire_last):
                m.d.sync += since_last.eq(1)
            with m.Elif(since_last < S):
                m.d.sync += since_last.eq(since_last + 1)

        for r in range(R):
            m.d.comb += [
                mesh.x_in[r].eq(_delay(m, x.payload.x[r], r, advance, f"x{r}_skew")),
                mesh.valid_in[r].eq(_delay(m, fire, r, advance, f"valid{r}_skew", reset_less=False)),
                mesh.last_in[r].eq(_delay(m, fire_last, r, advance, f"last{r}_skew", reset_less=False)),
            ]
        for c in range(C):
            m.d.comb += mesh.w_in[c].eq(_delay(m, w.payload.w[c], c, advance, f"w{c}_skew"))

        # drain: row r of every column is read C + 1 + r cycles after the pass's last beat
        start_drain = _delay(m, fire_last, C + 1, advance, "drain_start", reset_less=False)
        draining = Signal()
        drain_row = Signal(range(R))
        row = Signal(range(R))
        m.d.comb += [
            row.eq(Mux(start_drain, 0, drain_row)),
            y.valid.eq(start_drain | draining),
        ]
        for c in range(C):
            column = Array([mesh.result[r][c] for r in range(R)])
            m.d.comb += y.payload.y[c].eq(column[row])
        with m.If(advance):
            if R > 1:
                with m.If(start_drain):
                    m.d.sync += [drain_row.eq(1), draining.eq(1)]
                with m.Elif(draining):
                    with m.If(drain_row == R - 1):
                        m.d.sync += [drain_row.eq(0), draining.eq(0)]
                    with m.Else():
                        m.d.sync += drain_row.eq(drain_row + 1)
