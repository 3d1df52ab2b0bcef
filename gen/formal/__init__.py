"""Formal verification of stream cores: a generic SymbiYosys harness and ``tensorforge prove``.

See :mod:`.harness` for the properties and assumptions, :mod:`.prove` for running them.
"""

from .harness import PROPERTIES, HarnessError
from .prove import FormalError, PropertyResult, plan, prove

__all__ = ["PROPERTIES", "HarnessError", "FormalError", "PropertyResult", "plan", "prove"]
