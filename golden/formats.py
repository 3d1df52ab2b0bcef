"""Number formats: one definition used by golden models, RTL generators, benches and the CLI.

Every format is a frozen dataclass that validates itself in ``__post_init__``,
carries its derived facts and prints as its canonical short name:

- :class:`FloatFormat` -- binary floating point, ``e5m10`` (FP16), ``e8m23``
  (FP32), ``e8m7`` (BF16), ``tf32`` (e8m10 stored in 32 bits), ``e4m3fn``
  (ml_dtypes ``float8_e4m3fn``: no infinities, one NaN pattern per sign),
  ``e5m2``.
- :class:`IntFormat` -- two's-complement or unsigned integers, ``i8``, ``u16``.
- :class:`FlexFormat` -- flexpoint: N-bit integer mantissas sharing one M-bit
  exponent, ``flex16+5``.

:func:`parse_format` turns any of these names (and the aliases ``fp32``,
``fp16``, ``bf16``, ``tf32``, ``fp8e4m3``, ``fp8e5m2``, ``int8``...) back into
the object. Semantics are specified in NUMERICS.md section 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "FloatFormat", "IntFormat", "FlexFormat",
    "FP32", "FP16", "BF16", "TF32", "FP8_E4M3", "FP8_E5M2",
    "INT8", "INT16", "INT32", "FLEX16_5",
    "FLOAT_PRESETS", "parse_format", "parse_float_format", "parse_int_format",
]


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format.

    Parameters
    ----------
    exp_bits : int
        Exponent field width, 2..11.
    man_bits : int
        Stored fraction (mantissa) width without the hidden bit, 1..52.
    has_inf : bool
        False for the "fn" (finite) convention of ``float8_e4m3fn``: the
        all-ones exponent is an ordinary binade and only S.1111.111 is NaN.
    storage_bits : int or None
        Container width. Defaults to ``1 + exp_bits + man_bits``. TF32 is
        e8m10 stored in 32 bits: the sign, exponent and fraction occupy the
        top 19 bits and the low 13 bits are ignored on input (truncation) and
        written as zero on output.
    name : str or None
        Canonical name override (``tf32``); default ``e{exp}m{man}`` with an
        ``fn`` suffix when ``has_inf`` is False.

    Bit layout (MSB to LSB): sign, exponent, fraction, ignored padding.
    """

    exp_bits: int
    man_bits: int
    has_inf: bool = True
    storage_bits: int | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not isinstance(self.exp_bits, int) or isinstance(self.exp_bits, bool) or not 2 <= self.exp_bits <= 11:
            raise ValueError(f"exp_bits must be an integer between 2 and 11, not {self.exp_bits!r}")
        if not isinstance(self.man_bits, int) or isinstance(self.man_bits, bool) or not 1 <= self.man_bits <= 52:
            raise ValueError(f"man_bits must be an integer between 1 and 52, not {self.man_bits!r}")
        if not isinstance(self.has_inf, bool):
            raise TypeError(f"has_inf must be a bool, not {self.has_inf!r}")
        natural = 1 + self.exp_bits + self.man_bits
        if self.storage_bits is None:
            object.__setattr__(self, "storage_bits", natural)
        elif not isinstance(self.storage_bits, int) or not natural <= self.storage_bits <= 64:
            raise ValueError(f"storage_bits must be an integer between {natural} (1 + exp_bits + man_bits) "
                             f"and 64, not {self.storage_bits!r}")

    # -- naming --------------------------------------------------------------------------
    def __str__(self):
        if self.name is not None:
            return self.name
        return f"e{self.exp_bits}m{self.man_bits}" + ("" if self.has_inf else "fn")

    def __repr__(self):
        return f"FloatFormat({self})"

    # -- layout --------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Container width in bits (the width of ports and numpy words)."""
        return self.storage_bits

    @property
    def pad_bits(self) -> int:
        """Ignored low bits of the container (13 for TF32, else 0)."""
        return self.storage_bits - (1 + self.exp_bits + self.man_bits)

    @property
    def sig_bits(self) -> int:
        """Significand precision p including the hidden bit."""
        return self.man_bits + 1

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max_field(self) -> int:
        """All-ones exponent field value."""
        return (1 << self.exp_bits) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number (also the subnormal scale)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite binade."""
        top = self.exp_max_field if not self.has_inf else self.exp_max_field - 1
        return top - self.bias

    @property
    def sign_mask(self) -> int:
        return 1 << (self.storage_bits - 1)

    @property
    def mask(self) -> int:
        return (1 << self.storage_bits) - 1

    def pack(self, sign: int, exp_field: int, man_field: int) -> int:
        """Bits of a value given its three fields (padding bits zero)."""
        return (((sign << self.exp_bits | exp_field) << self.man_bits) | man_field) << self.pad_bits

    # -- special values ------------------------------------------------------------------
    @property
    def max_finite(self) -> int:
        """Bits of the largest positive finite value."""
        if self.has_inf:
            return self.pack(0, self.exp_max_field - 1, (1 << self.man_bits) - 1)
        return self.pack(0, self.exp_max_field, (1 << self.man_bits) - 2)

    @property
    def min_normal(self) -> int:
        return self.pack(0, 1, 0)

    @property
    def min_subnormal(self) -> int:
        return self.pack(0, 0, 1)

    @property
    def inf(self) -> int | None:
        """Bits of +infinity, or None for formats without infinities."""
        return self.pack(0, self.exp_max_field, 0) if self.has_inf else None

    @property
    def canonical_nan(self) -> int:
        """The quiet NaN produced by IEEE-mode operations (RISC-V convention):
        0x7FC00000 for FP32, 0x7E00 for FP16, 0x7FC0 for BF16; S.1111.111 (0x7F) for e4m3fn."""
        if self.has_inf:
            return self.pack(0, self.exp_max_field, 1 << (self.man_bits - 1))
        return self.pack(0, self.exp_max_field, (1 << self.man_bits) - 1)

    @property
    def max_value(self) -> float:
        """Largest finite value as a Python float (may be inf for wide exponents)."""
        man = (1 << self.man_bits) - 1 - (0 if self.has_inf else 1)
        return (1 + man / (1 << self.man_bits)) * 2.0 ** self.emax

    @property
    def min_subnormal_value(self) -> float:
        return 2.0 ** (self.emin - self.man_bits)


@dataclass(frozen=True)
class IntFormat:
    """An integer format: ``width`` bits, two's complement when ``signed``.

    Prints as ``i8`` / ``u8``.
    """

    width: int
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.width, int) or isinstance(self.width, bool) or not 1 <= self.width <= 64:
            raise ValueError(f"width must be an integer between 1 and 64, not {self.width!r}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, not {self.signed!r}")

    def __str__(self):
        return f"{'i' if self.signed else 'u'}{self.width}"

    def __repr__(self):
        return f"IntFormat({self})"

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


@dataclass(frozen=True)
class FlexFormat:
    """Flexpoint flexN+M: N-bit two's-complement mantissas, one shared M-bit
    signed exponent per tensor (value = mantissa * 2**exponent). Prints as
    ``flex16+5``."""

    man_bits: int = 16
    exp_bits: int = 5

    def __post_init__(self):
        if not isinstance(self.man_bits, int) or isinstance(self.man_bits, bool) or not 2 <= self.man_bits <= 32:
            raise ValueError(f"man_bits must be an integer between 2 and 32, not {self.man_bits!r}")
        if not isinstance(self.exp_bits, int) or isinstance(self.exp_bits, bool) or not 2 <= self.exp_bits <= 16:
            raise ValueError(f"exp_bits must be an integer between 2 and 16, not {self.exp_bits!r}")

    def __str__(self):
        return f"flex{self.man_bits}+{self.exp_bits}"

    def __repr__(self):
        return f"FlexFormat({self})"

    @property
    def width(self) -> int:
        return self.man_bits

    @property
    def man_min(self) -> int:
        return -(1 << (self.man_bits - 1))

    @property
    def man_max(self) -> int:
        return (1 << (self.man_bits - 1)) - 1

    @property
    def exp_min(self) -> int:
        return -(1 << (self.exp_bits - 1))

    @property
    def exp_max(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1


FP32 = FloatFormat(8, 23)
FP16 = FloatFormat(5, 10)
BF16 = FloatFormat(8, 7)
TF32 = FloatFormat(8, 10, storage_bits=32, name="tf32")
FP8_E4M3 = FloatFormat(4, 3, has_inf=False)
FP8_E5M2 = FloatFormat(5, 2)

INT8 = IntFormat(8)
INT16 = IntFormat(16)
INT32 = IntFormat(32)
FLEX16_5 = FlexFormat(16, 5)

#: Name -> preset, including the aliases the CLI accepts.
FLOAT_PRESETS = {
    "fp32": FP32, "fp16": FP16, "bf16": BF16, "tf32": TF32,
    "fp8e4m3": FP8_E4M3, "fp8e5m2": FP8_E5M2,
    str(FP32): FP32, str(FP16): FP16, str(BF16): BF16,
    str(FP8_E4M3): FP8_E4M3, str(FP8_E5M2): FP8_E5M2,
}

_FLOAT_RE = re.compile(r"e(\d+)m(\d+)(fn)?")
_INT_RE = re.compile(r"(i|u|int|uint)(\d+)")
_FLEX_RE = re.compile(r"flex(\d+)\+(\d+)")


def parse_float_format(text) -> FloatFormat:
    """``fp16``/``e5m10``/``tf32``/``fp8e4m3``/``e4m3fn``... -> FloatFormat (ValueError otherwise)."""
    if isinstance(text, FloatFormat):
        return text
    key = str(text).strip().lower()
    if key in FLOAT_PRESETS:
        return FLOAT_PRESETS[key]
    m = _FLOAT_RE.fullmatch(key)
    if m:
        return FloatFormat(int(m[1]), int(m[2]), has_inf=m[3] is None)
    raise ValueError(f"unknown floating-point format {text!r}: use eXmY (e.g. e5m10) or one of "
                     f"{', '.join(sorted(set(FLOAT_PRESETS)))}")


def parse_int_format(text) -> IntFormat:
    """``i8``/``int8``/``u16``... -> IntFormat (ValueError otherwise)."""
    if isinstance(text, IntFormat):
        return text
    m = _INT_RE.fullmatch(str(text).strip().lower())
    if m:
        return IntFormat(int(m[2]), signed=not m[1].startswith("u"))
    raise ValueError(f"unknown integer format {text!r}: use iN or uN (e.g. i8, u16)")


def parse_format(text):
    """Any format name -> FloatFormat, IntFormat or FlexFormat (ValueError otherwise)."""
    if isinstance(text, (FloatFormat, IntFormat, FlexFormat)):
        return text
    key = str(text).strip().lower()
    m = _FLEX_RE.fullmatch(key)
    if m:
        return FlexFormat(int(m[1]), int(m[2]))
    if _INT_RE.fullmatch(key):
        return parse_int_format(key)
    try:
        return parse_float_format(key)
    except ValueError:
        raise ValueError(f"unknown number format {text!r}: use eXmY, fp32/fp16/bf16/tf32/fp8e4m3/fp8e5m2, "
                         f"iN/uN or flexN+M") from None
