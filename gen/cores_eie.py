"""Registry entries for the EIE sparse engine: ``eie`` (the N-PE array) and ``eie_pe`` (one PE).

``tensorforge generate eie --n-pe 16 --queue-depth 8 --rows 64 --max-cols 1024`` builds
:class:`tensorforge.rtl.eie.EIEArray` (``n_pe`` :class:`~tensorforge.rtl.eie.EIEPE` plus the
central unit with the leading-non-zero tree). Layers are compressed with
:func:`tensorforge.golden.eie.compress` (same ``n_pe``, ``codebook_bits``, ``index_bits``,
``row_bits``, ``pointer_bits``, ``weight_format``) and loaded through the ``load`` stream
(command format in the EIEArray docstring).

Top-module names: ``eie_<n_pe>pe_d<queue_depth>_r<rows>_c<max_cols>_m<matrix_depth>``, followed by
``_<name><value>`` for every other parameter that differs from its default (e.g.
``eie_16pe_d8_r64_c1024_m1024_ib5``). The manifest's ``latency`` is null (data-dependent);
the fixed overheads are documented in EIEArray (``start_latency`` 2, ``finish_latency`` 1,
``readout_latency`` = ``readout_stages``) and the compute phase by ``golden.eie.cycles``.

``tensorforge generate eie_pe --queue-depth 8 --rows 64`` builds one
:class:`~tensorforge.rtl.eie.EIEPE` on its own (the unit the performance target of the PE
is measured on: ``tensorforge synth eie_pe --target ecp5-25k``); top names
``eie_pe_d<queue_depth>_r<rows>_c<max_cols>_m<matrix_depth>`` with the same suffixes. It has
no simulation bench of its own (``tests/rtl/test_eie_pe.py`` drives it in Amaranth).
"""

from __future__ import annotations

from ..golden.formats import INT16
from ..rtl.eie import EIEArray, EIEPE
from .registry import FormatParam, Generator, IntParam, register

__all__ = ["build_array", "build_pe", "top_name", "pe_top_name"]

_SUFFIX = (("codebook_bits", "cb", 4), ("index_bits", "ib", 4), ("row_bits", "rb", 64),
           ("pointer_bits", "pb", 16), ("acc_width", "acc", 48), ("readout_stages", "ro", 3),
           ("lnzd_fanin", "fan", 4))


def build_array(**params):
    """The EIEArray of one parameter set (the registry's ``build``)."""
    return EIEArray(**params)


def build_pe(*, queue_depth, **params):
    """The EIEPE of one parameter set (``queue_depth`` is the PE's ``act_queue_depth``)."""
    return EIEPE(act_queue_depth=queue_depth, **params)


def top_name(p: dict) -> str:
    """Top-module name of a resolved parameter set (see the module docstring)."""
    return _suffixed(p, f"eie_{p['n_pe']}pe_d{p['queue_depth']}_r{p['rows']}_c{p['max_cols']}_m{p['matrix_depth']}")


def pe_top_name(p: dict) -> str:
    """Top-module name of a resolved ``eie_pe`` parameter set."""
    return _suffixed(p, f"eie_pe_d{p['queue_depth']}_r{p['rows']}_c{p['max_cols']}_m{p['matrix_depth']}")


def _suffixed(p, name):
    for key, tag, default in _SUFFIX:
        if key in p and p[key] != default:
            name += f"_{tag}{p[key]}"
    for key, tag in (("weight_format", "w"), ("act_format", "a")):
        if p[key] != INT16:
            name += f"_{tag}{p[key]}"
    return name


_PE_PARAMS = (
    IntParam("queue_depth", 8, "activation queue depth per PE", lo=1, hi=64),
    IntParam("rows", 64, "local rows (accumulators) per PE; layers up to n_pe*rows rows", lo=1, hi=4096),
    IntParam("max_cols", 1024, "input activations (columns) held", lo=1, hi=65536),
    IntParam("matrix_depth", 1024, "sparse-matrix SRAM rows per PE", lo=1, hi=65536),
    IntParam("codebook_bits", 4, "weight code bits (codebook of 2**bits words)", lo=1, hi=8),
    IntParam("index_bits", 4, "relative row index bits", lo=1, hi=8),
    IntParam("row_bits", 64, "sparse-matrix SRAM row width", lo=2, hi=64),
    IntParam("pointer_bits", 16, "column pointer width", lo=1, hi=32),
    FormatParam("weight_format", INT16, "codebook word format (signed integer)", kinds=("int",)),
    FormatParam("act_format", INT16, "activation format (signed integer)", kinds=("int",)),
    IntParam("acc_width", 48, "accumulator width (wrapping)", lo=4, hi=64),
    IntParam("readout_stages", 3, "read-out pipeline registers", lo=1, hi=3),
)

register(Generator(
    name="eie",
    summary="EIE sparse matrix-vector engine (compressed FC layers, zero skipping), N PEs",
    build=build_array,
    params=(IntParam("n_pe", 4, "processing elements (rows interleaved i % n_pe)", lo=1, hi=256),) + _PE_PARAMS + (
        IntParam("lnzd_fanin", 4, "leading-non-zero tree fan-in", lo=2, hi=16),
    ),
    top=top_name,
    bench="eie",
))


register(Generator(
    name="eie_pe",
    summary="one EIE processing element (activation queue, pointer prefetch, walker, MAC pipeline)",
    build=build_pe,
    params=_PE_PARAMS,
    top=pe_top_name,
))
