"""Floating-point datapath split like HardFloat: unpack -> exact product -> align/add -> normalize -> round.

Stream cores (``amaranth.lib.stream`` in/out, pipelined by :class:`~tensorforge.rtl.pipeline.StallPipeline`):

- :class:`FMA` -- ``d = round(a*b + c)``, a/b in ``in_format``, c/d in ``acc_format``
- :class:`Mul` -- ``d = round(a*b)``
- :class:`Add` -- ``d = round(a + b)``

all three on the :class:`MulAdd` skeleton, built from the combinational units
:class:`Unpack`, :class:`Multiplier`, :class:`AlignAdd`, :class:`Normalize` and the one
shared :class:`Round` (also meant for the tensor-core dot products).
"""

from .add import Add
from .align_add import AlignAdd
from .fma import FMA
from .mul import Mul
from .muladd import FLAG_WIDTH, MulAdd
from .multiplier import Multiplier
from .normalize import Normalize, leading_zero_count
from .round import Round
from .unpack import Unpack

__all__ = ["FMA", "Mul", "Add", "MulAdd", "Unpack", "Multiplier", "AlignAdd", "Normalize", "Round",
           "leading_zero_count", "FLAG_WIDTH"]
