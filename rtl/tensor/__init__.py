"""Tensor-core arithmetic: fused dot-product-add lanes and M x N x K MMA blocks.

Stream cores (``amaranth.lib.stream``, pipelined by :class:`~tensorforge.rtl.pipeline.StallPipeline`):

- :class:`DotProductAdd` -- ``d = sum_i a[i]*b[i] + c`` with ``chain``, ``exact`` or
  ``nvidia`` semantics (NUMERICS.md section 2, bit-exact with
  :func:`tensorforge.golden.dot.dot_product_add`)
- :class:`MMA` -- ``D = A*B + C`` for a whole m x n x k block per cycle (m*n lanes)

Combinational building blocks: :class:`AlignmentPlanner`, :class:`TruncatingAligner`,
:class:`WindowPlacer`, :class:`AdderTree`.
"""

from .adder_tree import AdderTree
from .alignment_planner import AlignmentPlanner
from .dot_product_add import DotProductAdd
from .mma import MMA
from .truncating_aligner import TruncatingAligner
from .window_placer import WindowPlacer

__all__ = ["DotProductAdd", "MMA", "AlignmentPlanner", "TruncatingAligner", "WindowPlacer", "AdderTree"]
