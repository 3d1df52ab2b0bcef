"""Formal verification of stream cores: a generic harness, SymbiYosys and an unrolling engine, and
``tensorforge prove``.

See :mod:`.harness` for the properties, miters and assumptions, :mod:`.unroll` for the
hash-consed BMC / k-induction engine, :mod:`.prove` for running them.
"""

from .harness import PROPERTIES, HarnessError
from .prove import ENGINES, MITERS, FormalError, PropertyResult, plan, prove

__all__ = ["PROPERTIES", "ENGINES", "MITERS", "HarnessError", "FormalError", "PropertyResult", "plan", "prove"]
