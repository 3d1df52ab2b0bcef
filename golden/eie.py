"""EIE sparse matrix-vector engine: compression toolchain, bit-exact arithmetic and cycle model.

Specification: NUMERICS.md section 5, after Han et al., "EIE: Efficient Inference
Engine on Compressed Deep Neural Network", ISCA 2016 (arXiv 1602.01528). This module
is numpy-only; it is the reference the RTL (``tensorforge.rtl.eie``) must match bit
for bit (:func:`spmv`) and cycle for cycle (:func:`cycles`).

Compression (:func:`compress`)
==============================

*Weight sharing.* The non-zero weights of the layer are clustered by 1-D k-means
(Lloyd's algorithm, *linear* initialisation: centroids evenly spaced between the
smallest and the largest non-zero weight, as in Deep Compression; assignment ties
go to the lower centroid; an empty cluster keeps its centroid). There is no
randomness, so the result is deterministic. ``2**codebook_bits - 1`` clusters give
codes ``1 .. 2**codebook_bits - 1``; **code 0 is reserved for the exact zero** used
by padding entries (``codebook[0] == 0`` always). The centroids are rounded (RNE)
and saturated to the ``weight_format`` integer (16-bit two's complement by
default) with ``weight_frac_bits`` fraction bits: the real weight of code ``c`` is
``codebook[c] * 2**-weight_frac_bits``. After rounding, every non-zero weight is
re-assigned to the nearest *rounded* codebook value among codes 1.. (ties: lower
code), so the quantized matrix is exactly "each non-zero weight replaced by the
nearest representable codebook value" (:func:`decompress` gives it back as
integers). ``weight_frac_bits=None`` picks the largest value (0..30) for which the
largest centroid magnitude still fits the format.

*Interleaved CSC.* Row ``i`` belongs to PE ``i % n_pe`` as local row ``i // n_pe``.
For each PE and column ``j`` the PE's non-zeros of column ``j`` are stored in
increasing local-row order as entries ``(v, z)``: ``v`` the code, ``z`` the number of
zero rows (of that PE) skipped since the previous entry of the column (since local
row 0 for the first entry). With ``M = 2**index_bits - 1``, a gap ``g > M`` first
emits ``g // (M+1)`` padding entries ``(v=0, z=M)`` (each stands for ``M`` zeros
plus one zero slot of its own) and then the entry with ``z = g % (M+1)``. Decoding:
the local row of an entry is ``x = z`` for the first entry of a column and
``x = x_prev + z + 1`` afterwards. The paper's example (one PE) is the column with
ones at rows 2, 3 and 22 -- see ``tests/golden/test_eie.py``.

Pointer array ``p[pe]`` (``n_cols + 1`` entries): the entries of column ``j`` are
``p[j] .. p[j+1]-1`` (``p[0] = 0``, ``p[n_cols]`` = number of entries of the PE).

Memory images (per PE; what the load interface writes, word by word)
------------------------------------------------------------------------
- ``codebook_image``: ``2**codebook_bits`` words, ``weight_format.width`` bits,
  two's complement (numpy ``uint32``). Shared by all PEs (each holds a copy).
- ``ptr_even[pe][k] = p[pe][2k]`` and ``ptr_odd[pe][k] = p[pe][2k+1]``: two banks of
  ``pointer_bits``-bit words (numpy ``uint32``), so that ``p[j]`` and ``p[j+1]``
  always sit in different banks and are read in one cycle: for column ``j`` the
  even bank is read at ``(j+1) >> 1`` and the odd bank at ``j >> 1``; ``p[j]`` comes
  from the even bank when ``j`` is even, from the odd bank when ``j`` is odd.
  Sizes: ``ceil((n_cols+1)/2)`` even words, ``floor((n_cols+1)/2)`` odd words.
- ``matrix_rows[pe]``: the entries packed ``entries_per_row = row_bits //
  entry_bits`` to a ``row_bits``-bit word (numpy ``uint64``; default 64-bit rows of 8
  8-bit entries). Entry ``k`` of the PE sits in row ``k // entries_per_row``, lane
  ``k % entries_per_row``, at bits ``[lane*entry_bits + entry_bits-1 : lane*entry_bits]``
  (lane 0 in the least significant bits). Inside an entry, ``v`` occupies the low
  ``codebook_bits`` bits and ``z`` the ``index_bits`` above it:
  ``entry = v | z << codebook_bits``. Unused lanes of the last row are zero.

Arithmetic (:func:`spmv`) -- bit-exact to the PE
================================================

- Activations: ``act_format`` integers (16-bit two's complement by default) with an
  implicit binary point; the helpers :func:`to_fixed` / :func:`from_fixed` use
  ``act_frac_bits`` (default 8, i.e. Q7.8). The datapath itself only sees integers.
- Products ``codebook[v] * a_j`` are exact (``weight.width + act.width`` bits).
- Accumulation: two's complement in ``acc_width`` bits (default 48), **wrapping**
  modulo ``2**acc_width``. Wrapping makes the result independent of the order in
  which activations are processed. No wrap can occur when
  ``n_cols * 2**(weight.width + act.width - 2) < 2**(acc_width - 1)``, e.g. for
  16-bit operands and the default width, up to 131071 columns.
- Code 0 multiplies by exactly zero (the PE forces it, whatever word 0 of its codebook
  memory holds; :func:`compress` always stores 0 there).
- Completion (applied by the PE when a result is read out): ``b = acc`` arithmetically
  shifted right by ``out_shift`` (default
  ``weight_frac_bits``, so that outputs keep the activations' Q format) with
  round-half-to-even, saturated to ``out_format`` (default ``act_format``), then
  ReLU (``max(b, 0)``) when ``relu`` is true.
- Multi-layer (:func:`run_layers`): the destination of one layer is the source of
  the next (the hardware swaps its source/destination register files).

Microarchitecture and cycle model (:func:`cycles`)
==================================================

One central unit and ``n_pe`` PEs; cycle 0 is the first cycle in which the
central unit may broadcast. Per cycle:

*Leading non-zero detection / broadcast.* The non-zero activations are
broadcast in increasing column order, at most one per cycle. The broadcast in
cycle ``t`` happens when every PE queue holds fewer than ``queue_depth`` entries
at the start of cycle ``t`` (the *registered* occupancy: a pop in the same
cycle does not make room until the next cycle, so there is no combinational path
from any PE back to the broadcast). A pushed entry can be popped from cycle
``t+1`` on.

*PE, cycle by cycle.* A PE has three decoupled parts: the activation queue
(``queue_depth`` entries), a *pointer prefetch* pipeline that turns queue entries
into column descriptors ahead of time, and the *walker* that issues sparse-matrix
entries. Every decision is taken from registers (no SRAM output feeds a control
decision in the cycle it appears), which is what lets the PE close timing at
100 MHz on an ECP5. For the column ``j`` popped in cycle ``q``, with ``c`` stored
entries (for this PE), taken by the walker in cycle ``s``:

- ``q`` (*fetch*): pop the queue head ``(j, a_j)`` and present the pointer addresses
  to the even/odd banks (synchronous single-port SRAMs, one read each). A pop needs
  a non-empty queue and a free *descriptor slot*: at most
  ``DESCRIPTOR_SLOTS`` (4) columns may be popped and not yet taken by the walker,
  counted at the start of the cycle (a take in the same cycle frees its slot only
  from the next cycle). At most one pop per cycle.
- ``q+1`` (*pointer register*): ``p[j]``, ``p[j+1]`` come out of the banks and are
  registered as they are.
- ``q+2`` (*decode*): ``c = p[j+1] - p[j]``, the pointer checks (decreasing pair,
  end beyond the matrix memory: the column becomes empty and a flag is raised) and
  the flags "no entry", "one entry" are computed and the descriptor
  ``(p[j], c, a_j, flags)`` is written to the descriptor FIFO.
- ``s >= q+3`` (*take*): the walker takes the oldest descriptor when it is free, i.e.
  in a cycle in which it issues nothing or issues the last entry of its current
  column. Taking costs no issue slot of its own: the entries of the column are
  issued in cycles ``s+1 .. s+c`` (one per cycle; row ``ptr // entries_per_row``,
  lane ``ptr % entries_per_row``), so the next take can happen in ``s + max(1, c)``:
  a column costs ``max(1, c)`` cycles of the walker (an empty column 1 cycle) and
  back-to-back columns keep the walker issuing every cycle. Four descriptor slots
  cover the ``q -> s`` distance of 3 cycles, so even a run of one-entry columns
  proceeds at one column per cycle.
- Arithmetic pipeline of an entry issued in cycle ``i`` (``PIPELINE_STAGES`` = 6
  stages after the issue):
  ``R`` (``i+1``): the sparse-matrix row comes out of the SRAM and is registered;
  ``E`` (``i+2``): lane select, codebook lookup and address accumulation
  (``x = z`` for the first entry of a column, ``x_prev + z + 1`` afterwards);
  ``M`` (``i+3``): exact product ``w * a_j``;
  ``A1`` (``i+4``): read accumulator ``x``; if the entry in ``W`` targets the same
  accumulator, its sum (written only at the end of this cycle) is taken instead;
  ``A2`` (``i+5``): add the product (wrapping); if the entry just ahead (now in
  ``W``) targets the same accumulator, its fresh sum is *bypassed* to the adder
  instead of the value read in ``A1`` (back-to-back hits on one accumulator, as in
  the paper);
  ``W`` (``i+6``): write accumulator ``x``.
  The pipeline never stalls.

Closed form (``k`` indexes the non-zero activations in broadcast order, ``c[p,k]``
the entries of PE ``p`` in that column, ``D`` the queue depth, ``S =
DESCRIPTOR_SLOTS`` = 4)::

    b[k]   = max(b[k-1] + 1, max_p q[p, k-D] + 1)                 (b[0] = 0; 2nd term for k >= D)
    q[p,k] = max(b[k] + 1, q[p,k-1] + 1, s[p,k-S] + 1)            (terms that exist)
    s[p,k] = max(q[p,k] + 3, s[p,k-1] + max(1, c[p,k-1]))

PE ``p`` is done at the end of cycle ``max(s[p,K-1], last_issue[p] + 6)`` and
``compute_cycles = 1 + max_p(that)`` (0 when no activation is non-zero); the
first all-idle cycle is ``compute_cycles``. In steady state a PE is as fast as
before the prefetch stage was added (one entry or one empty column per cycle);
what it adds is latency (pop to first issue 4 cycles instead of 1, issue to write
6 instead of 4) and ``S`` extra columns of look-ahead behind each queue. Fixed
overheads around the compute phase are parameters of :func:`cycles`
(``start_latency``, ``finish_latency``). Efficiency figures (see
:class:`CycleReport`): ``load_balance_efficiency = entries processed / (n_pe *
compute_cycles)`` (idle PE cycles are load imbalance, fill and drain; padding
entries count as work) and ``mac_efficiency = useful non-zero MACs / (n_pe *
compute_cycles)`` (padding entries and empty-column cycles count as waste).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .formats import INT16, IntFormat

__all__ = [
    "CompressedLayer", "CycleReport",
    "compress", "decompress", "quantize_codebook", "entry_counts",
    "accumulate", "round_shift_rne", "spmv", "run_layers",
    "cycles", "schedule", "to_fixed", "from_fixed", "sparse_workload",
    "PIPELINE_STAGES", "DESCRIPTOR_SLOTS", "PREFETCH_LATENCY", "ARRAY_START_LATENCY", "ARRAY_FINISH_LATENCY",
]

#: Arithmetic pipeline stages after an entry's issue (R, E, M, A1, A2, W): an entry issued in
#: cycle ``i`` writes its accumulator at the end of cycle ``i + PIPELINE_STAGES``.
PIPELINE_STAGES = 6
#: Columns a PE may have popped from its activation queue and not yet handed to its walker
#: (pointer reads in flight plus decoded descriptors waiting).
DESCRIPTOR_SLOTS = 4
#: Cycles from a pop to the first cycle the walker can take that column's descriptor
#: (pointer read, pointer register, decode).
PREFETCH_LATENCY = 3
#: ``rtl.eie.EIEArray``: cycles from the accepted ``start`` to cycle 0 of the model
#: (source bitmap latched, then the leading-non-zero tree fills the broadcast register).
ARRAY_START_LATENCY = 2
#: ``rtl.eie.EIEArray``: cycles from the first all-idle cycle (model cycle ``compute``)
#: to ``done``; with both, ``total`` = cycles from ``start`` to ``done``.
ARRAY_FINISH_LATENCY = 1


# ----------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------
def _check_int(name, value, lo, hi, what=None):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be {what or f'an integer between {lo} and {hi}'}, not {value!r}")
    return int(value)


def _check_signed_format(name, fmt, lo=2, hi=32):
    if not isinstance(fmt, IntFormat):
        raise TypeError(f"{name} must be an IntFormat (e.g. IntFormat(16)), not {fmt!r}")
    if not fmt.signed or not lo <= fmt.width <= hi:
        raise ValueError(f"{name} must be a signed IntFormat of {lo} to {hi} bits, not {fmt}")
    return fmt


def _wrap(x, width):
    """Two's-complement wrap of int64 values to ``width`` bits (1..64)."""
    x = np.asarray(x, dtype=np.int64)
    if width >= 64:
        return x
    shift = np.int64(64 - width)
    return (x << shift) >> shift


# ----------------------------------------------------------------------------------------
# fixed point helpers
# ----------------------------------------------------------------------------------------
def round_shift_rne(x, shift):
    """``x / 2**shift`` rounded half to even, for int64 arrays and shift 0..62."""
    x = np.asarray(x, dtype=np.int64)
    shift = _check_int("shift", shift, 0, 62)
    if shift == 0:
        return x.copy()
    q = x >> np.int64(shift)                      # floor
    rem = x & np.int64((1 << shift) - 1)
    half = np.int64(1 << (shift - 1))
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def to_fixed(x, frac_bits=8, fmt=INT16):
    """Real values -> ``fmt`` integers with ``frac_bits`` fraction bits (RNE, saturating)."""
    fmt = _check_signed_format("fmt", fmt)
    frac_bits = _check_int("frac_bits", frac_bits, -32, 62)
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("to_fixed needs finite values")
    scaled = np.rint(np.ldexp(x, frac_bits))      # np.rint is round-half-even
    return np.clip(scaled, fmt.min, fmt.max).astype(np.int64)


def from_fixed(q, frac_bits=8):
    """Integers with ``frac_bits`` fraction bits -> float64 (exact for < 53 significant bits)."""
    return np.ldexp(np.asarray(q, dtype=np.float64), -int(frac_bits))


# ----------------------------------------------------------------------------------------
# compressed layer
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CompressedLayer:
    """A fully-connected layer ``W`` (``n_rows x n_cols``) in EIE's compressed form.

    Attributes
    ----------
    n_rows, n_cols, n_pe : int
        Matrix shape and PE count (row ``i`` -> PE ``i % n_pe``, local row ``i // n_pe``).
    codebook_bits, index_bits, row_bits, pointer_bits : int
        Field widths: ``v`` code, ``z`` relative index, sparse-matrix SRAM row, pointer word.
    weight_format : IntFormat
        Codebook word format (two's complement); real value = ``codebook * 2**-weight_frac_bits``.
    weight_frac_bits : int
    codebook : int64 array, ``2**codebook_bits`` signed values, ``codebook[0] == 0``.
    v, z : tuple of uint8 arrays, one per PE (all entries, column-major, padding included).
    p : tuple of int64 arrays, one per PE, ``n_cols + 1`` pointers.
    ptr_even, ptr_odd : tuple of uint32 arrays, the pointer-bank images.
    matrix_rows : tuple of uint64 arrays, the sparse-matrix SRAM images.
    """

    n_rows: int
    n_cols: int
    n_pe: int
    codebook_bits: int
    index_bits: int
    row_bits: int
    pointer_bits: int
    weight_format: IntFormat
    weight_frac_bits: int
    codebook: np.ndarray
    v: tuple
    z: tuple
    p: tuple
    ptr_even: tuple
    ptr_odd: tuple
    matrix_rows: tuple

    @property
    def entry_bits(self) -> int:
        return self.codebook_bits + self.index_bits

    @property
    def entries_per_row(self) -> int:
        return self.row_bits // self.entry_bits

    @property
    def max_z(self) -> int:
        return (1 << self.index_bits) - 1

    def local_rows(self, pe: int) -> int:
        """Number of rows PE ``pe`` owns: ``ceil((n_rows - pe) / n_pe)``."""
        return max(0, -(-(self.n_rows - pe) // self.n_pe))

    @property
    def rows_per_pe(self) -> int:
        """Rows of PE 0, the largest local slice (destination registers needed per PE)."""
        return self.local_rows(0)

    @property
    def codebook_image(self) -> np.ndarray:
        """Codebook words as unsigned two's-complement bits (uint32)."""
        return (self.codebook & self.weight_format.mask).astype(np.uint32)

    @property
    def n_entries(self) -> np.ndarray:
        """Stored entries (padding included) per PE."""
        return np.array([len(v) for v in self.v], dtype=np.int64)

    @property
    def n_padding(self) -> np.ndarray:
        """Padding entries (``v == 0``) per PE."""
        return np.array([int(np.count_nonzero(v == 0)) for v in self.v], dtype=np.int64)

    @property
    def nnz(self) -> int:
        """Stored non-zero weights (entries with ``v != 0``) over all PEs."""
        return int(sum(np.count_nonzero(v) for v in self.v))

    def column_entries(self) -> np.ndarray:
        """``(n_pe, n_cols)`` entries (padding included) of each PE in each column."""
        return np.stack([np.diff(p) for p in self.p]) if self.n_pe else np.zeros((0, self.n_cols), np.int64)

    def column_nonzeros(self) -> np.ndarray:
        """``(n_pe, n_cols)`` non-padding entries of each PE in each column."""
        out = np.zeros((self.n_pe, self.n_cols), dtype=np.int64)
        for pe in range(self.n_pe):
            col = np.repeat(np.arange(self.n_cols), np.diff(self.p[pe]))
            out[pe] = np.bincount(col[self.v[pe] != 0], minlength=self.n_cols)
        return out


# ----------------------------------------------------------------------------------------
# weight sharing
# ----------------------------------------------------------------------------------------
def _kmeans_1d(values, k, iters):
    """Deterministic 1-D Lloyd k-means with linear initialisation; returns sorted centroids."""
    lo, hi = float(values.min()), float(values.max())
    cent = np.linspace(lo, hi, k) if k > 1 else np.array([(lo + hi) / 2.0])
    for _ in range(iters):
        labels = _nearest(values, cent)
        sums = np.bincount(labels, weights=values, minlength=k)
        counts = np.bincount(labels, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), cent)
        new = np.sort(new)
        if np.array_equal(new, cent):
            break
        cent = new
    return cent


def _nearest(values, sorted_cent):
    """Index of the nearest sorted centroid; ties go to the lower index."""
    if len(sorted_cent) == 1:
        return np.zeros(len(values), dtype=np.int64)
    mids = (sorted_cent[:-1] + sorted_cent[1:]) / 2.0
    # values exactly on a midpoint go left (side='left' counts mids < value)
    return np.searchsorted(mids, values, side="left").astype(np.int64)


def quantize_codebook(centroids, weight_format=INT16, weight_frac_bits=None):
    """Round real centroids to ``weight_format`` integers; returns ``(ints, frac_bits)``.

    ``weight_frac_bits=None`` picks the largest value in 0..30 whose RNE-rounded
    largest magnitude fits the format (0 for an all-zero input).
    """
    weight_format = _check_signed_format("weight_format", weight_format)
    cent = np.asarray(centroids, dtype=np.float64)
    if weight_frac_bits is None:
        top = float(np.max(np.abs(cent))) if cent.size else 0.0
        weight_frac_bits = 0
        if top > 0:
            for f in range(30, -1, -1):
                r = float(np.rint(np.ldexp(top, f)))
                if -r >= weight_format.min and r <= weight_format.max:
                    weight_frac_bits = f
                    break
    weight_frac_bits = _check_int("weight_frac_bits", weight_frac_bits, 0, 30)
    return to_fixed(cent, weight_frac_bits, weight_format), weight_frac_bits


# ----------------------------------------------------------------------------------------
# compression
# ----------------------------------------------------------------------------------------
def compress(W, n_pe, codebook_bits=4, index_bits=4, weight_format=INT16, *, weight_frac_bits=None,
             row_bits=64, pointer_bits=16, kmeans_iters=50, codebook=None) -> CompressedLayer:
    """Compress a dense weight matrix into EIE's interleaved CSC with a shared codebook.

    Parameters
    ----------
    W : 2-D array of real numbers, ``n_rows x n_cols``; exact zeros are pruned weights.
    n_pe : int, 1..4096
        Number of PEs the rows are interleaved over.
    codebook_bits : int, 1..8
        Width of the code ``v``; ``2**codebook_bits - 1`` clusters plus the zero code.
    index_bits : int, 1..8
        Width of the relative index ``z``; gaps above ``2**index_bits - 1`` get padding.
    weight_format : IntFormat
        Signed codebook word format, 2..32 bits (default 16-bit).
    weight_frac_bits : int or None
        Fraction bits of the codebook words (0..30); None chooses automatically.
    row_bits : int
        Sparse-matrix SRAM word width, 8..64, a multiple of ``codebook_bits +
        index_bits`` holding a power-of-two number of entries (default 64: 8 entries).
    pointer_bits : int, 1..32
        Pointer word width; every PE's entry count must fit in it.
    kmeans_iters : int
        Maximum Lloyd iterations (stops earlier when the centroids stop moving).
    codebook : optional int array of ``2**codebook_bits`` words
        Use this codebook (``codebook[0]`` must be 0, ``weight_frac_bits`` must be given)
        instead of k-means: weights take the nearest entry among codes 1...

    Raises ValueError/TypeError naming the bad parameter, and ValueError when a PE's
    entry count does not fit ``pointer_bits``.
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix, not an array of shape {W.shape}")
    if not (np.issubdtype(W.dtype, np.floating) or np.issubdtype(W.dtype, np.integer)):
        raise TypeError(f"W must hold real numbers, not {W.dtype}")
    W = W.astype(np.float64)
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite (no NaN or infinity)")
    n_pe = _check_int("n_pe", n_pe, 1, 4096)
    codebook_bits = _check_int("codebook_bits", codebook_bits, 1, 8)
    index_bits = _check_int("index_bits", index_bits, 1, 8)
    weight_format = _check_signed_format("weight_format", weight_format)
    entry_bits = codebook_bits + index_bits
    if (not isinstance(row_bits, (int, np.integer)) or isinstance(row_bits, bool) or not entry_bits <= row_bits <= 64
            or row_bits % entry_bits or (row_bits // entry_bits) & (row_bits // entry_bits - 1)):
        raise ValueError(f"row_bits must be a multiple of codebook_bits + index_bits = {entry_bits} "
                         f"holding a power-of-two number of entries, at most 64, not {row_bits!r}")
    pointer_bits = _check_int("pointer_bits", pointer_bits, 1, 32)
    kmeans_iters = _check_int("kmeans_iters", kmeans_iters, 1, 10000)
    n_rows, n_cols = W.shape
    n_codes = 1 << codebook_bits

    # ---- weight sharing -----------------------------------------------------------
    mask = W != 0
    values = W[mask]
    if codebook is not None:
        if weight_frac_bits is None:
            raise ValueError("weight_frac_bits must be given together with codebook")
        weight_frac_bits = _check_int("weight_frac_bits", weight_frac_bits, 0, 30)
        cb = np.asarray(codebook)
        if cb.shape != (n_codes,) or not np.issubdtype(cb.dtype, np.integer):
            raise ValueError(f"codebook must be {n_codes} integers (2**codebook_bits), not {codebook!r}")
        cb = cb.astype(np.int64)
        if cb[0] != 0 or cb.min() < weight_format.min or cb.max() > weight_format.max:
            raise ValueError(f"codebook must have codebook[0] == 0 and words within {weight_format}, "
                             f"not {codebook!r}")
    else:
        if values.size:
            cent = _kmeans_1d(values, n_codes - 1, kmeans_iters)
        else:
            cent = np.zeros(n_codes - 1)
        ints, weight_frac_bits = quantize_codebook(cent, weight_format, weight_frac_bits)
        cb = np.concatenate([[0], np.sort(ints)]).astype(np.int64)
    # nearest rounded codebook value among codes 1.. (ties -> lower code)
    real_cb = np.ldexp(cb[1:].astype(np.float64), -weight_frac_bits)
    order = np.argsort(real_cb, kind="stable")
    labels = order[_nearest(values, real_cb[order])] + 1 if values.size else np.zeros(0, np.int64)
    codes = np.zeros(W.shape, dtype=np.int64)
    codes[mask] = labels

    # ---- interleaved CSC ------------------------------------------------------------
    M = (1 << index_bits) - 1
    vs, zs, ps, evens, odds, rows_img = [], [], [], [], [], []
    epr = row_bits // entry_bits
    for pe in range(n_pe):
        local = codes[pe::n_pe, :]                  # local rows x n_cols
        col, row = np.nonzero(local.T)              # column-major order, rows ascending
        code = local[row, col]
        first = np.ones(len(col), dtype=bool)
        first[1:] = col[1:] != col[:-1]
        prev = np.empty(len(col), dtype=np.int64)
        prev[:] = -1
        prev[1:] = np.where(first[1:], -1, row[:-1])
        gap = row - prev - 1
        npad = gap // (M + 1)
        per = npad + 1                              # entries emitted per non-zero
        total = int(per.sum())
        v = np.zeros(total, dtype=np.uint8)
        z = np.full(total, M, dtype=np.uint8)
        last = np.cumsum(per) - 1                   # position of each real entry
        v[last] = code
        z[last] = gap % (M + 1)
        ecol = np.repeat(col, per)
        p = np.zeros(n_cols + 1, dtype=np.int64)
        p[1:] = np.cumsum(np.bincount(ecol, minlength=n_cols))
        if p[-1] > (1 << pointer_bits) - 1:
            raise ValueError(f"PE {pe} needs {p[-1]} sparse-matrix entries but pointer_bits={pointer_bits} "
                             f"addresses at most {(1 << pointer_bits) - 1}; raise pointer_bits or n_pe")
        vs.append(v)
        zs.append(z)
        ps.append(p)
        evens.append(p[0::2].astype(np.uint32))
        odds.append(p[1::2].astype(np.uint32))
        ent = v.astype(np.uint64) | (z.astype(np.uint64) << np.uint64(codebook_bits))
        padded = np.zeros(-(-total // epr) * epr, dtype=np.uint64)
        padded[:total] = ent
        lanes = padded.reshape(-1, epr) << (np.arange(epr, dtype=np.uint64) * np.uint64(entry_bits))
        rows_img.append(np.bitwise_or.reduce(lanes, axis=1) if len(lanes) else np.zeros(0, np.uint64))
    return CompressedLayer(n_rows=n_rows, n_cols=n_cols, n_pe=n_pe, codebook_bits=codebook_bits,
                           index_bits=index_bits, row_bits=row_bits, pointer_bits=pointer_bits,
                           weight_format=weight_format, weight_frac_bits=weight_frac_bits, codebook=cb,
                           v=tuple(vs), z=tuple(zs), p=tuple(ps), ptr_even=tuple(evens), ptr_odd=tuple(odds),
                           matrix_rows=tuple(rows_img))


def _entry_rows(layer, pe):
    """(local row, column) of every stored entry of ``pe``, decoded from v/z/p."""
    p = layer.p[pe]
    z = layer.z[pe].astype(np.int64)
    cnt = np.diff(p)
    col = np.repeat(np.arange(layer.n_cols), cnt)
    step = np.cumsum(z + 1)
    base = np.concatenate([[0], step])[p[:-1]]       # running sum before each column's first entry
    x = step - np.repeat(base, cnt) - 1
    return x, col


def decompress(layer: CompressedLayer) -> np.ndarray:
    """The quantized weight matrix as ``weight_format`` integers (``n_rows x n_cols`` int64).

    Decodes from the v/z/p arrays (not from the original matrix). Raises ValueError
    if an entry decodes to a local row outside the PE's slice.
    """
    out = np.zeros((layer.n_rows, layer.n_cols), dtype=np.int64)
    for pe in range(layer.n_pe):
        x, col = _entry_rows(layer, pe)
        if x.size and x.max() >= layer.local_rows(pe):
            raise ValueError(f"PE {pe}: an entry decodes to local row {x.max()}, "
                             f"beyond its {layer.local_rows(pe)} rows")
        out[x * layer.n_pe + pe, col] = layer.codebook[layer.v[pe].astype(np.int64)]
    return out


def entry_counts(mask, n_pe, index_bits=4) -> np.ndarray:
    """``(n_pe, n_cols)`` stored entries (padding included) per PE and column, from the
    sparsity pattern alone -- what :func:`cycles` needs, without k-means or images.

    Equal to ``compress(W, n_pe, index_bits=...).column_entries()`` for ``mask = W != 0``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D matrix, not an array of shape {mask.shape}")
    n_pe = _check_int("n_pe", n_pe, 1, 4096)
    index_bits = _check_int("index_bits", index_bits, 1, 8)
    n_cols = mask.shape[1]
    out = np.zeros((n_pe, n_cols), dtype=np.int64)
    for pe in range(n_pe):
        col, row = np.nonzero(mask[pe::n_pe, :].T)
        first = np.ones(len(col), dtype=bool)
        first[1:] = col[1:] != col[:-1]
        prev = np.full(len(col), -1, dtype=np.int64)
        prev[1:] = np.where(first[1:], -1, row[:-1])
        per = (row - prev - 1) // (1 << index_bits) + 1
        out[pe] = np.bincount(col, weights=per, minlength=n_cols).astype(np.int64)
    return out


# ----------------------------------------------------------------------------------------
# arithmetic
# ----------------------------------------------------------------------------------------
def _check_activations(layer, a, act_format):
    act_format = _check_signed_format("act_format", act_format)
    a = np.asarray(a)
    if a.shape != (layer.n_cols,):
        raise ValueError(f"a must have shape ({layer.n_cols},) (n_cols), not {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"a must hold integers ({act_format} fixed point), not {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < act_format.min or a.max() > act_format.max):
        raise ValueError(f"a must be within {act_format} ({act_format.min}..{act_format.max})")
    return a, act_format


def accumulate(layer: CompressedLayer, a, *, act_format=INT16, acc_width=48) -> np.ndarray:
    """Raw accumulators ``sum_j codebook[v] * a_j`` over every stored entry of every
    non-zero activation, wrapped to ``acc_width`` (1..64) bits; shape ``(n_rows,)`` int64."""
    a, act_format = _check_activations(layer, a, act_format)
    acc_width = _check_int("acc_width", acc_width, 1, 64)
    acc = np.zeros(layer.n_rows, dtype=np.int64)
    for pe in range(layer.n_pe):
        x, col = _entry_rows(layer, pe)
        act = a[col]
        live = act != 0                               # zero activations are never broadcast
        prod = layer.codebook[layer.v[pe].astype(np.int64)[live]] * act[live]
        np.add.at(acc, x[live] * layer.n_pe + pe, prod)   # int64 add wraps mod 2**64
    return _wrap(acc, acc_width)


def spmv(layer: CompressedLayer, a, *, act_format=INT16, acc_width=48, out_shift=None, out_format=None,
         relu=True) -> np.ndarray:
    """``b = ReLU(sat(round_rne(W a / 2**out_shift)))`` exactly as the PEs compute it.

    Parameters
    ----------
    layer : CompressedLayer
    a : ``(n_cols,)`` integers in ``act_format``.
    act_format : IntFormat, signed (default 16-bit).
    acc_width : int, 1..64
        Accumulator width; accumulation wraps modulo ``2**acc_width``.
    out_shift : int or None
        Right shift applied at completion (RNE); default ``layer.weight_frac_bits``.
    out_format : IntFormat or None
        Saturation target; default ``act_format``.
    relu : bool
        Apply ``max(b, 0)`` after saturation.

    Returns ``(n_rows,)`` int64 values within ``out_format``.
    """
    acc = accumulate(layer, a, act_format=act_format, acc_width=acc_width)
    out_format = _check_signed_format("out_format", act_format if out_format is None else out_format)
    shift = layer.weight_frac_bits if out_shift is None else out_shift
    shift = _check_int("out_shift", shift, 0, 62)
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be a bool, not {relu!r}")
    b = np.clip(round_shift_rne(acc, shift), out_format.min, out_format.max)
    if relu:
        b = np.maximum(b, 0)
    return b


def run_layers(layers, a, *, act_format=INT16, acc_width=48, relu=True) -> list:
    """Run compressed layers back to back (the destination of one is the source of the
    next); returns the list of every layer's output. ``relu`` is a bool or one per layer."""
    layers = list(layers)
    if not layers:
        raise ValueError("layers must hold at least one CompressedLayer")
    relus = [relu] * len(layers) if isinstance(relu, (bool, np.bool_)) else list(relu)
    if len(relus) != len(layers):
        raise ValueError(f"relu must be a bool or one bool per layer ({len(layers)}), not {relu!r}")
    outs = []
    x = a
    for k, layer in enumerate(layers):
        if k and layer.n_cols != layers[k - 1].n_rows:
            raise ValueError(f"layer {k} has {layer.n_cols} columns but layer {k - 1} produces "
                             f"{layers[k - 1].n_rows} activations")
        x = spmv(layer, x, act_format=act_format, acc_width=acc_width, relu=relus[k])
        outs.append(x)
    return outs


# ----------------------------------------------------------------------------------------
# cycle model
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CycleReport:
    """Result of :func:`cycles`.

    Attributes
    ----------
    total : int
        ``start_latency + compute + finish_latency``.
    compute : int
        Cycles from the first broadcast opportunity through the last accumulator write.
    n_pe, queue_depth : int
    broadcasts : int
        Non-zero activations broadcast (``K``).
    busy : int64 array (n_pe,)
        Cycles in which each PE issued a sparse-matrix entry (= its entries processed).
    macs : int64 array (n_pe,)
        Useful multiply-accumulates (non-padding entries) per PE.
    broadcast_cycle : int64 array (K,)
        Cycle ``b[k]`` in which activation ``k`` was broadcast.
    pop_cycle : int64 array (n_pe, K)
        Cycle ``q[p, k]`` in which PE ``p`` popped activation ``k``.
    take_cycle : int64 array (n_pe, K)
        Cycle ``s[p, k]`` in which PE ``p``'s walker took column ``k`` (entries issued in
        ``s+1 .. s+c``).
    done_cycle : int64 array (n_pe,)
        Last cycle in which each PE had work (last take or accumulator write); -1 if none.
    """

    total: int
    compute: int
    n_pe: int
    queue_depth: int
    broadcasts: int
    busy: np.ndarray
    macs: np.ndarray
    broadcast_cycle: np.ndarray
    pop_cycle: np.ndarray
    take_cycle: np.ndarray
    done_cycle: np.ndarray

    @property
    def load_balance_efficiency(self) -> float:
        """Entries processed / (n_pe * compute): 1 minus the idle fraction."""
        return float(self.busy.sum()) / (self.n_pe * self.compute) if self.compute else 1.0

    @property
    def mac_efficiency(self) -> float:
        """Useful non-zero MACs / (n_pe * compute)."""
        return float(self.macs.sum()) / (self.n_pe * self.compute) if self.compute else 1.0


def schedule(counts, queue_depth, broadcast_cycle=None):
    """The closed-form schedule of the module docstring.

    Parameters
    ----------
    counts : ``(n_pe, K)`` integers, entries of each PE in the k-th broadcast column.
    queue_depth : int, 1..1024.
    broadcast_cycle : optional ``(K,)`` cycles; when given, the broadcasts happen at
        exactly these cycles (the caller guarantees they respect the queue rule, as a
        testbench driving one PE does) and only the pops and takes are computed.

    Returns ``(b, q, s)``: broadcast cycles ``(K,)``, pop cycles ``(n_pe, K)`` and the
    cycles ``(n_pe, K)`` in which each PE's walker takes each column (its entries are
    issued in cycles ``s+1 .. s+c``).
    """
    queue_depth = _check_int("queue_depth", queue_depth, 1, 1024)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a (n_pe, K) matrix, not shape {counts.shape}")
    n_pe, K = counts.shape
    cost = np.maximum(counts, 1)
    b = np.zeros(K, dtype=np.int64)
    q = np.zeros((n_pe, K), dtype=np.int64)
    s = np.zeros((n_pe, K), dtype=np.int64)
    given = None if broadcast_cycle is None else np.asarray(broadcast_cycle, dtype=np.int64)
    if given is not None and given.shape != (K,):
        raise ValueError(f"broadcast_cycle must have shape ({K},), not {given.shape}")
    # plain Python over K with per-PE numpy vectors keeps this O(K * n_pe) and fast
    D, S = queue_depth, DESCRIPTOR_SLOTS
    for k in range(K):
        if given is not None:
            bk = int(given[k])
        else:
            bk = 0 if k == 0 else int(b[k - 1]) + 1
            if k >= D:
                bk = max(bk, int(q[:, k - D].max()) + 1)
        b[k] = bk
        qk = np.full(n_pe, bk + 1, dtype=np.int64)
        if k:
            qk = np.maximum(qk, q[:, k - 1] + 1)
        if k >= S:
            qk = np.maximum(qk, s[:, k - S] + 1)
        q[:, k] = qk
        sk = qk + PREFETCH_LATENCY
        if k:
            sk = np.maximum(sk, s[:, k - 1] + cost[:, k - 1])
        s[:, k] = sk
    return b, q, s


def cycles(layer, a, *, queue_depth=8, n_pe=None, start_latency=ARRAY_START_LATENCY,
           finish_latency=ARRAY_FINISH_LATENCY,
           nonzeros=None) -> CycleReport:
    """Cycle count of one layer on the array described in the module docstring.

    Parameters
    ----------
    layer : CompressedLayer, or an ``(n_pe, n_cols)`` matrix of entry counts
        (e.g. from :func:`entry_counts`) for sweeps that need no codebook or images.
    a : ``(n_cols,)`` activations; only which ones are non-zero matters.
    queue_depth : int, 1..1024
        Activation queue depth of every PE.
    start_latency, finish_latency : int >= 0
        Fixed cycles before the first broadcast opportunity (start handshake, leading
        non-zero detection) and after the last accumulator write; added to ``total``
        only. The defaults (2 and 1) are ``rtl.eie.EIEArray``'s: ``total`` is then the
        number of cycles from the accepted ``start`` to ``done`` (read-out excluded).
    nonzeros : optional ``(n_pe, n_cols)`` non-padding entry counts, for ``macs`` when
        ``layer`` is a count matrix (defaults to the counts themselves).

    n_pe : optional int
        The PE count is the layer's (the interleaving fixes it); when given it must match.
    """
    if isinstance(layer, CompressedLayer):
        counts_all = layer.column_entries()
        nz_all = layer.column_nonzeros()
    else:
        counts_all = np.asarray(layer, dtype=np.int64)
        if counts_all.ndim != 2:
            raise ValueError(f"layer must be a CompressedLayer or an (n_pe, n_cols) count matrix, "
                             f"not shape {counts_all.shape}")
        nz_all = counts_all if nonzeros is None else np.asarray(nonzeros, dtype=np.int64)
    if n_pe is not None and n_pe != counts_all.shape[0]:
        raise ValueError(f"n_pe must match the layer's interleaving ({counts_all.shape[0]} PEs), not {n_pe!r}")
    n_pe, n_cols = counts_all.shape
    a = np.asarray(a)
    if a.shape != (n_cols,):
        raise ValueError(f"a must have shape ({n_cols},) (n_cols), not {a.shape}")
    start_latency = _check_int("start_latency", start_latency, 0, 1 << 30)
    finish_latency = _check_int("finish_latency", finish_latency, 0, 1 << 30)
    cols = np.flatnonzero(a)
    counts = counts_all[:, cols]
    b, q, s = schedule(counts, queue_depth)
    K = len(cols)
    busy = counts.sum(axis=1)
    macs = nz_all[:, cols].sum(axis=1)
    done = np.full(n_pe, -1, dtype=np.int64)
    if K:
        done = s[:, -1].copy()                             # the walker takes the last column
        for pe in range(n_pe):
            nzk = np.flatnonzero(counts[pe])
            if nzk.size:
                k = nzk[-1]
                last_issue = s[pe, k] + counts[pe, k]
                done[pe] = max(done[pe], last_issue + PIPELINE_STAGES)
    compute = int(done.max()) + 1 if K else 0
    return CycleReport(total=start_latency + compute + finish_latency, compute=compute, n_pe=n_pe,
                       queue_depth=queue_depth, broadcasts=K, busy=busy, macs=macs, broadcast_cycle=b,
                       pop_cycle=q, take_cycle=s, done_cycle=done)


# ----------------------------------------------------------------------------------------
# workloads
# ----------------------------------------------------------------------------------------
def sparse_workload(n_rows, n_cols, weight_density, act_density, seed=0, *, act_frac_bits=8,
                    act_format=INT16):
    """A random layer and input: ``(W, a)``.

    ``W`` has Bernoulli(``weight_density``) non-zeros drawn from N(0, 1/n_cols) (never
    exactly zero); ``a`` has Bernoulli(``act_density``) non-zeros, ReLU-like positive
    values |N(0,1)| in ``act_format`` with ``act_frac_bits`` (never zero).
    """
    n_rows = _check_int("n_rows", n_rows, 1, 1 << 20)
    n_cols = _check_int("n_cols", n_cols, 1, 1 << 20)
    for name, d in (("weight_density", weight_density), ("act_density", act_density)):
        if not isinstance(d, (int, float)) or isinstance(d, bool) or not 0.0 <= d <= 1.0:
            raise ValueError(f"{name} must be a number between 0 and 1, not {d!r}")
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols), dtype=np.float32) < weight_density
    vals = rng.standard_normal(int(mask.sum())) / np.sqrt(n_cols)
    vals[vals == 0] = 1e-3
    W = np.zeros((n_rows, n_cols))
    W[mask] = vals
    amask = rng.random(n_cols) < act_density
    a = to_fixed(np.abs(rng.standard_normal(n_cols)), act_frac_bits, act_format)
    a = np.where(a == 0, 1, a)
    a = np.where(amask, a, 0).astype(np.int64)
    return W, a
