"""Systolic-array GEMM: tiling schedule, stream transactions, bit-exact reference and cycle model.

This module is the specification of :class:`tensorforge.rtl.systolic.array.SystolicArray`
(numpy only). The GEMM is ``Y[M, N] = X[M, K] @ W[K, N]`` on an array of ``rows`` x ``cols``
processing elements (PEs); ``X`` are the *activations*, ``W`` the *weights*.

Tiling (:func:`schedule`)
    The GEMM is cut into *passes*. Loop order (outermost first): N tiles of ``cols``
    columns, then M, then (weight-stationary only) K.

    * ``"ws"`` (weight-stationary): one pass = one ``rows`` x ``cols`` weight tile
      ``W[k0:k0+rows, n0:n0+cols]`` held in the PEs while ``m_count`` activation rows
      ``X[m, k0:k0+rows]`` stream through. M is split into chunks of at most ``acc_depth``
      rows (the depth of the array's accumulator queue); for each chunk the K tiles run in
      order ``k0 = 0, rows, 2*rows, ...``. The first K pass of a chunk starts a fresh sum
      (``start``), the last one sends its results out (``emit``).
    * ``"os"`` (output-stationary): one pass = one ``rows`` x ``cols`` output tile
      ``Y[m0:m0+rows, n0:n0+cols]`` that stays in the PEs while all ``K`` reduction steps
      stream through; the tile is then drained (one row of ``cols`` results per cycle)
      while the next pass already computes.

    Ragged edges are padded with zeros: the last K tile of WS has zero weight rows and zero
    activation columns; partial N tiles have zero weight columns (their results are
    dropped); in OS partial M tiles have zero activation rows (their results are dropped).
    The padding is part of the arithmetic (it matters for -0 in floating point) and the
    reference :func:`gemm` reproduces it.

Accumulation order (what :func:`gemm` computes, bit for bit)
    * Integer formats (``IntFormat``): exact products, two's-complement accumulation that
      wraps modulo ``2**acc_format.width``. Wrapping addition is associative, so the order
      does not change the result; the result is ``(X @ W) mod 2**acc_width``.
    * Floating point, OS: each output is the ``chain`` dot product of NUMERICS.md section 2
      with ``c = +0``: ``acc = +0; for k in 0..K-1: acc = fma(x[m, k], w[k, n], acc)``.
    * Floating point, WS: within a K tile (``rows`` products, zero padded) the column of PEs
      computes the same chain starting from ``+0``; the partial sums of successive K tiles
      are then added in K order by the accumulator: ``s = p_0; s = add(s, p_j)``
      (one rounding per add, ``rounding`` mode), i.e.
      ``y = (...((p_0 + p_1) + p_2) ...) + p_{T-1}``.

Stream transactions (:func:`stream_beats`)
    Exactly the beats the RTL streams carry, in order: ``w`` beats (one row of a weight
    tile: ``cols`` values), ``x`` beats (``rows`` values plus flags) and the expected order
    of ``y`` beats (one row of ``cols`` results). See the SystolicArray docstring for the
    protocol; :func:`assemble` puts the ``y`` beats back into ``Y``.

Cycle model (:func:`cycles`)
    Counts clock cycles from the first accepted input beat (the first weight beat in WS, the
    first joined x/w beat in OS) to the last accepted ``y`` beat, both included, when every
    input is offered as early as the array accepts it and ``y`` is always ready. The RTL is
    tested to match it exactly. With ``L = mac_latency`` (the PE's multiply-add pipeline:
    1 for the default integer arithmetic, ``stages`` otherwise), ``A = addend_delay`` (cycles
    after the operands at which the PE samples the partial sum coming from above: 0 for the
    FMA, ``stages - 1`` for integers) and ``H = L - A`` (cycles a partial sum spends in one
    PE row):

    * WS, every pass but the last with ``m_count >= max(R, (R-1)*H + C - 1)`` (no
      weight-load bubbles): ``cycles = R + sum(m_count) + R*H + C - 1 + A``; for one chunk
      this is ``folds*M + 2R + C - 1 + A`` (H = 1) with ``folds = ceil(K/R)*ceil(N/C)``.
    * OS: ``cycles = K + (P-1)*max(K, R, C) + R + C`` with ``P = ceil(M/R)*ceil(N/C)``.

    SCALE-Sim (Samajdar et al.) charges every fold the fill and drain again:
    :func:`scalesim_cycles` gives ``folds*(2R + C + T - 2)`` for weight/input-stationary and
    ``folds*(R + C + T - 2)`` for output-stationary (T = M for WS, N for IS, K for OS). The
    generated array overlaps the next tile's weight load (double-buffered weight registers)
    and the previous tile's drain (separate result registers / accumulator queue) with
    computation, so fill and drain are paid once per GEMM instead of once per fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fp as _fp
from .formats import FloatFormat, IntFormat

__all__ = [
    "DATAFLOWS", "Pass", "schedule", "stream_beats", "assemble", "gemm",
    "cycles", "scalesim_cycles", "utilization", "ws_pipeline_depth", "to_signed", "ACC_SPACING",
]

#: WS: the fewest cycles between accepting a row that queues a partial sum (``emit`` = 0) and
#: the row that adds to it (``start`` = 0); the array holds the later row until then.
ACC_SPACING = 3

DATAFLOWS = ("ws", "os")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_pos_int(value, name, lo=1, hi=None):
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        allowed = f"an integer >= {lo}" if hi is None else f"an integer between {lo} and {hi}"
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return value


def _check_dataflow(dataflow):
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")
    return dataflow


@dataclass(frozen=True)
class Pass:
    """One pass of the array (see the module docstring).

    WS: weight tile ``W[k0:k0+rows, n0:n0+cols]``, activation rows ``m0 .. m0+m_count-1``;
    ``start``: fresh accumulation (first K tile), ``emit``: results leave the array (last K tile).
    OS: output tile ``Y[m0:m0+rows, n0:n0+cols]`` over all K (``k0 = 0``, ``m_count`` = valid
    rows of the tile, ``start = emit = True``).
    """

    m0: int
    m_count: int
    k0: int
    n0: int
    start: bool
    emit: bool


def schedule(M, K, N, *, rows, cols, dataflow="ws", acc_depth=256) -> list[Pass]:
    """The passes of an ``M x K x N`` GEMM on a ``rows x cols`` array, in stream order."""
    for value, name in ((M, "M"), (K, "K"), (N, "N"), (rows, "rows"), (cols, "cols"), (acc_depth, "acc_depth")):
        _check_pos_int(value, name)
    _check_dataflow(dataflow)
    passes = []
    for n0 in range(0, N, cols):
        if dataflow == "ws":
            for m0 in range(0, M, acc_depth):
                mc = min(acc_depth, M - m0)
                k_tiles = list(range(0, K, rows))
                for j, k0 in enumerate(k_tiles):
                    passes.append(Pass(m0, mc, k0, n0, start=j == 0, emit=j == len(k_tiles) - 1))
        else:
            for m0 in range(0, M, rows):
                passes.append(Pass(m0, min(rows, M - m0), 0, n0, start=True, emit=True))
    return passes


def _as_u64_matrix(a, width, name):
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, not shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer (bit pattern) array, not dtype {arr.dtype}")
    return arr.astype(np.int64).view(np.uint64) & np.uint64((1 << width) - 1) if arr.dtype.kind == "i" \
        else arr.astype(np.uint64) & np.uint64((1 << width) - 1)


def stream_beats(x, w, *, rows, cols, dataflow="ws", acc_depth=256, in_width=8, weight_width=None):
    """The exact stream transactions of one GEMM (see the SystolicArray protocol).

    ``x`` (M x K) and ``w`` (K x N) are integer arrays of bit patterns (only the low
    ``in_width`` / ``weight_width`` bits are used; signed numpy values are taken as two's
    complement). Returns a dict:

    * ``"w"``: uint64 array (n_w, cols) -- the weight beats in order (field ``w[c]``).
    * ``"x"``: uint64 array (n_x, rows) -- the activation beats in order (field ``x[r]``).
    * ``"last"``, ``"start"``, ``"emit"``: bool arrays (n_x,) -- the x beat flags
      (``start``/``emit`` are all ones in OS; the OS RTL has no such fields).
    * ``"y"``: list of ``(m, n0)`` for WS (one per expected y beat: result row m, columns
      n0..n0+cols-1) or ``(m0, n0)`` per drained tile row in OS, see :func:`assemble`.
    * ``"passes"``: the :func:`schedule`.

    WS: per pass, ``rows`` weight beats (weight row ``k0 + i`` in beat i, i.e. the beat that
    ends up in PE row i), then ``m_count`` x beats ``X[m, k0:k0+rows]``; the w stream is a
    separate stream, so the weights of the next pass are sent while the current pass computes.
    OS: per pass, ``K`` joined beats: x beat k = ``X[m0:m0+rows, k]`` (the k-th column of
    the activation tile), w beat k = ``W[k, n0:n0+cols]``; ``last`` on k = K-1.
    """
    weight_width = in_width if weight_width is None else weight_width
    xb = _as_u64_matrix(x, in_width, "x")
    wb = _as_u64_matrix(w, weight_width, "w")
    M, K = xb.shape
    K2, N = wb.shape
    if K != K2:
        raise ValueError(f"x is {M}x{K} but w is {K2}x{N}: the inner dimensions must agree")
    passes = schedule(M, K, N, rows=rows, cols=cols, dataflow=dataflow, acc_depth=acc_depth)
    Kp = _ceil_div(K, rows) * rows if dataflow == "ws" else K
    Mp = _ceil_div(M, rows) * rows if dataflow == "os" else M
    Np = _ceil_div(N, cols) * cols
    xp = np.zeros((Mp, Kp), np.uint64)
    xp[:M, :K] = xb
    wp = np.zeros((Kp, Np), np.uint64)
    wp[:K, :N] = wb
    w_beats, x_beats, last, start, emit, y = [], [], [], [], [], []
    for p in passes:
        if dataflow == "ws":
            w_beats.append(wp[p.k0:p.k0 + rows, p.n0:p.n0 + cols])
            x_beats.append(xp[p.m0:p.m0 + p.m_count, p.k0:p.k0 + rows])
            flags = np.zeros(p.m_count, bool)
            flags[-1] = True
            last.append(flags)
            start.append(np.full(p.m_count, p.start))
            emit.append(np.full(p.m_count, p.emit))
            if p.emit:
                y.extend((m, p.n0) for m in range(p.m0, p.m0 + p.m_count))
        else:
            w_beats.append(wp[:, p.n0:p.n0 + cols])
            x_beats.append(xp[p.m0:p.m0 + rows, :].T)
            flags = np.zeros(K, bool)
            flags[-1] = True
            last.append(flags)
            start.append(np.ones(K, bool))
            emit.append(np.ones(K, bool))
            y.extend((m, p.n0) for m in range(p.m0, p.m0 + rows))
    return {
        "w": np.concatenate(w_beats), "x": np.concatenate(x_beats),
        "last": np.concatenate(last), "start": np.concatenate(start), "emit": np.concatenate(emit),
        "y": y, "passes": passes,
    }


def assemble(y_beats, y_map, M, N, *, dtype=np.uint64):
    """Put the ``y`` beats (sequence of rows of ``cols`` bit patterns) back into ``Y[M, N]``.

    ``y_map`` is ``stream_beats(...)["y"]``; beats for padded rows/columns are dropped. Raises
    ValueError when the number of beats differs from the expected count.
    """
    if len(y_beats) != len(y_map):
        raise ValueError(f"expected {len(y_map)} y beats, got {len(y_beats)}")
    out = np.zeros((M, N), dtype)
    for beat, (m, n0) in zip(y_beats, y_map):
        if m >= M:
            continue
        n1 = min(N, n0 + len(beat))
        out[m, n0:n1] = np.asarray(beat[:n1 - n0], dtype=np.uint64).astype(dtype)
    return out


def _chain(xp, wp, k_lo, k_hi, acc, in_format, acc_format, rounding):
    """acc = fma(x[:, k], w[k, :], acc) for k in k_lo..k_hi-1 (broadcast over M x N)."""
    for k in range(k_lo, k_hi):
        acc, _ = _fp.fma(xp[:, k:k + 1], wp[k:k + 1, :], acc, in_format, acc_format, rounding)
    return acc


def gemm(x, w, *, in_format=IntFormat(8), acc_format=IntFormat(32), weight_format=None,
         rows, cols, dataflow="ws", rounding="rne"):
    """Bit-exact result of the systolic array for ``Y = X @ W`` (see the module docstring).

    ``x`` (M x K) and ``w`` (K x N) are bit patterns of ``in_format`` / ``weight_format``
    (default ``in_format``). Integer formats: returns ``Y mod 2**acc_width`` as uint64 bit
    patterns (:func:`to_signed` gives the values when ``acc_format.signed``).
    Floating point (``in_format`` and ``acc_format`` FloatFormat, ``weight_format`` equal to
    ``in_format``): returns bit patterns of ``acc_format`` (dtype ``fp.bits_dtype``), in the
    array's accumulation order for ``dataflow`` and ``rows`` (``cols`` does not change
    numerics but is validated).
    """
    weight_format = in_format if weight_format is None else weight_format
    _check_pos_int(rows, "rows")
    _check_pos_int(cols, "cols")
    _check_dataflow(dataflow)
    if isinstance(in_format, IntFormat):
        if not isinstance(weight_format, IntFormat) or not isinstance(acc_format, IntFormat):
            raise TypeError(f"integer GEMM needs IntFormat weight_format and acc_format, "
                            f"not {weight_format!r} and {acc_format!r}")
        xb = _as_u64_matrix(x, in_format.width, "x")
        wb = _as_u64_matrix(w, weight_format.width, "w")
        if xb.shape[1] != wb.shape[0]:
            raise ValueError(f"x is {xb.shape[0]}x{xb.shape[1]} but w is {wb.shape[0]}x{wb.shape[1]}: "
                             f"the inner dimensions must agree")

        def sext(u, fmt):
            if not fmt.signed or fmt.width == 64:
                return u
            sign = np.uint64(1 << (fmt.width - 1))
            return (u ^ sign) - sign   # wraps in uint64: two's-complement sign extension

        xs, ws = sext(xb, in_format), sext(wb, weight_format)
        # uint64 arithmetic is arithmetic modulo 2**64, a ring homomorphism onto 2**acc_width
        acc = np.zeros((xs.shape[0], ws.shape[1]), np.uint64)
        with np.errstate(over="ignore"):
            for k in range(xs.shape[1]):
                acc += xs[:, k:k + 1] * ws[k:k + 1, :]
        return acc & np.uint64(acc_format.mask)
    if isinstance(in_format, FloatFormat):
        if weight_format != in_format or not isinstance(acc_format, FloatFormat):
            raise TypeError(f"floating-point GEMM needs weight_format == in_format and a FloatFormat "
                            f"acc_format, not {weight_format!r} and {acc_format!r}")
        xp = np.asarray(x).astype(np.uint64)
        wp = np.asarray(w).astype(np.uint64)
        M, K = xp.shape
        if K != wp.shape[0]:
            raise ValueError(f"x is {M}x{K} but w is {wp.shape[0]}x{wp.shape[1]}: the inner dimensions must agree")
        N = wp.shape[1]
        zero = np.zeros((M, N), _fp.bits_dtype(acc_format))
        if dataflow == "os":
            return _chain(xp, wp, 0, K, zero, in_format, acc_format, rounding)
        Kp = _ceil_div(K, rows) * rows
        xz = np.zeros((M, Kp), np.uint64)
        xz[:, :K] = xp
        wz = np.zeros((Kp, N), np.uint64)
        wz[:K, :] = wp
        s = None
        for k0 in range(0, Kp, rows):
            p = _chain(xz, wz, k0, k0 + rows, zero, in_format, acc_format, rounding)
            s = p if s is None else _fp.add(s, p, acc_format, rounding)[0]
        return s
    raise TypeError(f"in_format must be an IntFormat or FloatFormat, not {in_format!r}")


def to_signed(bits, fmt: IntFormat) -> np.ndarray:
    """uint64 bit patterns of an IntFormat -> int64 values (two's complement when signed)."""
    u = np.asarray(bits).astype(np.uint64) & np.uint64(fmt.mask)
    if not fmt.signed:
        return u.astype(np.int64) if fmt.width < 64 else u
    sign = np.uint64(1 << (fmt.width - 1))
    return ((u ^ sign) - sign).view(np.int64)


def _check_addend_delay(addend_delay, mac_latency):
    if not isinstance(addend_delay, int) or isinstance(addend_delay, bool) \
            or not 0 <= addend_delay < mac_latency:
        raise ValueError(f"addend_delay must be an integer between 0 and mac_latency - 1 ({mac_latency - 1}), "
                         f"not {addend_delay!r}")
    return addend_delay


def ws_pipeline_depth(rows, cols, mac_latency=1, addend_delay=0) -> int:
    """Cycles from accepting a WS x beat to its y beat:
    ``rows*(mac_latency - addend_delay) + cols - 1 + addend_delay``."""
    _check_pos_int(mac_latency, "mac_latency")
    _check_addend_delay(addend_delay, mac_latency)
    return rows * (mac_latency - addend_delay) + cols - 1 + addend_delay


def cycles(M, K, N, rows, cols, dataflow="ws", *, acc_depth=256, mac_latency=1, addend_delay=0) -> int:
    """Cycles of one GEMM on the generated array, first input beat to last output beat inclusive.

    Exact event model of the RTL (no back-pressure, inputs offered as early as accepted):

    WS, pass p with ``m_count = Mc_p`` rows (R = rows, C = cols, L = mac_latency,
    A = addend_delay, H = L - A):

    * weight beat i (i < R) of pass p is accepted in cycle
      ``max(prev_w + 1, xl_{p-2} + max(1, i*H + C - 1))`` where ``prev_w`` is the cycle of the
      previous weight beat (-1 at the start) and ``xl_q`` the cycle of the last x beat of pass
      q: weights are double buffered, and row i of a bank is rewritten only once the last
      activation row of the pass that used it has passed PE (i, C-1);
    * x beats of pass p occupy Mc_p consecutive cycles from ``max(we_p + 1, xl_{p-1} + 1)``
      (``we_p``: cycle of the pass's last weight beat), and a pass that adds to the sums of
      the pass before it (not ``start``) begins no earlier than ``xs_{p-1} + ACC_SPACING``
      (``xs_q``: cycle of the first x beat of pass q): each of its rows reads the entry of
      the accumulator queue the same row of pass p-1 wrote, which takes ``ACC_SPACING`` = 3
      cycles (only passes of 1 or 2 rows are affected);
    * the last y beat is taken ``R*H + C - 1 + A`` cycles after the last x beat.

    OS (P passes, each K joined beats, S = max(R, C)): the last beat of pass p is accepted
    ``max(K, S)`` cycles after that of pass p-1 (a tile's results must be drained, one row
    per cycle, before the next tile's results overwrite them), the last y beat
    ``C + R`` cycles after the last beat of the last pass.
    """
    for value, name in ((mac_latency, "mac_latency"),):
        _check_pos_int(value, name)
    _check_addend_delay(addend_delay, mac_latency)
    passes = schedule(M, K, N, rows=rows, cols=cols, dataflow=dataflow, acc_depth=acc_depth)
    R, C = rows, cols
    if dataflow == "os":
        if mac_latency != 1:
            raise ValueError(f"mac_latency must be 1 for the output-stationary dataflow, not {mac_latency!r}")
        S = max(R, C)
        last = K - 1 + (len(passes) - 1) * max(K, S)
        return last + C + R + 1
    H = mac_latency - addend_delay
    w_cycle = -1
    xs = None
    xl = [None] * len(passes)
    for p, ps in enumerate(passes):
        for i in range(R):
            w_cycle += 1
            if p >= 2:
                w_cycle = max(w_cycle, xl[p - 2] + max(1, i * H + C - 1))
        if p == 0:
            xs = w_cycle + 1
        else:
            xs = max(w_cycle + 1, xl[p - 1] + 1, xs + ACC_SPACING if not ps.start else 0)
        xl[p] = xs + ps.m_count - 1
    return xl[-1] + ws_pipeline_depth(R, C, mac_latency, addend_delay) + 1


def scalesim_cycles(M, K, N, rows, cols, dataflow="ws") -> int:
    """SCALE-Sim's analytical compute cycles (Samajdar et al., "SCALE-Sim", arXiv 1811.02883).

    ``"ws"``: folds = ceil(K/R)*ceil(N/C), T = M, cycles = folds*(2R + C + T - 2).
    ``"is"``: folds = ceil(K/R)*ceil(M/C), T = N, cycles = folds*(2R + C + T - 2).
    ``"os"``: folds = ceil(M/R)*ceil(N/C), T = K, cycles = folds*(R + C + T - 2).
    """
    for value, name in ((M, "M"), (K, "K"), (N, "N"), (rows, "rows"), (cols, "cols")):
        _check_pos_int(value, name)
    R, C = rows, cols
    if dataflow == "ws":
        return _ceil_div(K, R) * _ceil_div(N, C) * (2 * R + C + M - 2)
    if dataflow == "is":
        return _ceil_div(K, R) * _ceil_div(M, C) * (2 * R + C + N - 2)
    if dataflow == "os":
        return _ceil_div(M, R) * _ceil_div(N, C) * (R + C + K - 2)
    raise ValueError(f"dataflow must be one of ws, is, os, not {dataflow!r}")


def utilization(M, K, N, rows, cols, n_cycles) -> float:
    """MAC utilization ``M*K*N / (rows*cols*cycles)``."""
    return M * K * N / (rows * cols * n_cycles)
