"""Flexpoint (flex16+5) and DFP-16 integer units (NUMERICS.md section 4).

- :class:`FlexDot` -- ``lanes`` k-term int dot products, exact accumulation, shift (from the stream,
  or from the block's leading-zero count in DFP-16 mode), RNE, saturation, per-lane overflow flag
- :class:`MaxAbs` -- the statistic Γ = max |mantissa| over a tensor delimited by start/last
- :class:`RoundShift` -- the combinational output conversion shared by both FlexDot and FlexArith
- :class:`FlexArith` -- the arithmetic strategy that runs the systolic array on flex mantissas

All are bit-exact with :mod:`tensorforge.golden.flex` / :mod:`tensorforge.golden.dfp16`.
"""

from .arith import FlexArith
from .flex_dot import FlexDot
from .max_abs import MaxAbs
from .round_shift import RoundShift

__all__ = ["FlexDot", "MaxAbs", "RoundShift", "FlexArith"]
