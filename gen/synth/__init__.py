"""Open FPGA synthesis flow: Yosys + nextpnr (YoWASP, from PyPI) for iCE40 UP5K and ECP5.

Public API:

- :func:`synthesize` / :func:`synthesize_artifact` -> :class:`SynthResult`
  (raise :class:`DoesNotFit` or :class:`SynthError`);
- :func:`get_target`, :data:`TARGETS`;
- :func:`ooc_wrapper` (the out-of-context wrapper built from a manifest);
- :func:`format_result` (the text report ``tensorforge synth`` prints);
- :func:`sweep` and :func:`reference_tables` (``tensorforge sweep`` / ``tables``).

CLI subcommands ``synth``, ``sweep`` and ``tables`` live in :mod:`.commands`.
"""

from .flow import DoesNotFit, SynthError, SynthResult, synthesize, synthesize_artifact, tool_versions
from .targets import TARGETS, Target, get_target
from .wrapper import ooc_wrapper
from .text import format_result
from .sweep import sweep
from .tables import REFERENCE_CONFIGS, TABLE_TARGETS, reference_tables

__all__ = [
    "DoesNotFit", "SynthError", "SynthResult", "synthesize", "synthesize_artifact", "tool_versions",
    "TARGETS", "Target", "get_target", "ooc_wrapper", "format_result", "sweep",
    "REFERENCE_CONFIGS", "TABLE_TARGETS", "reference_tables",
]
