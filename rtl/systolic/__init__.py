"""Systolic-array generator: arithmetic strategies, PE, Mesh and the streamed SystolicArray."""

from .arith import FloatArith, IntArith, arith_for
from .array import SystolicArray
from .mesh import Mesh
from .pe import PE

__all__ = ["IntArith", "FloatArith", "arith_for", "PE", "Mesh", "SystolicArray"]
