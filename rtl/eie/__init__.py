"""EIE sparse engine (Han et al., ISCA 2016): processing element and array."""

from .array import EIEArray
from .leading_nonzero import LeadingNonZero
from .pe import EIEPE

__all__ = ["EIEPE", "EIEArray", "LeadingNonZero"]
