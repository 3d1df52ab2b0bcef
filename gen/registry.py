"""The generator registry: generator name -> (component builder, parameter schema, top-name rule).

The CLI, the tests, the benches and the demo all go through this registry, so
a generator is described exactly once. A family module (``gen/cores_fp.py``,
``gen/cores_tensor.py``, ...) builds :class:`Generator` objects and calls
:func:`register`; :data:`FAMILY_MODULES` lists those modules and
:func:`generators` imports them on first use.

Parameters are typed: each :class:`Param` knows its default, how to parse a
command-line string, its allowed values (for ``tensorforge list`` and for
error messages) and how to print a value canonically (for top-module names
and manifests).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..golden.formats import FloatFormat, IntFormat, FlexFormat, parse_float_format, parse_int_format, parse_format

__all__ = [
    "Param", "IntParam", "ChoiceParam", "FormatParam", "SameFormatParam", "BoolParam", "Generator",
    "ParamError", "register", "generators", "get", "resolve", "build", "FAMILY_MODULES",
]

#: Modules that register generators when imported (one per family).
FAMILY_MODULES = [
    "tensorforge.gen.cores_fp",
    "tensorforge.gen.cores_tensor",
    "tensorforge.gen.cores_systolic",
    "tensorforge.gen.cores_eie",
    "tensorforge.gen.cores_flex",
]


class ParamError(ValueError):
    """A generator name or parameter value that is not allowed; the message is one line for the user."""


@dataclass(frozen=True)
class Param:
    """One generator parameter.

    ``name`` is the Python keyword of the component constructor; on the command
    line it is ``--name-with-dashes``.
    """

    name: str
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def allowed(self) -> str:
        """Human description of the allowed values."""
        return "any"

    def parse(self, text: str):
        """Command-line string -> value (raise ParamError naming the flag and what is allowed)."""
        return text

    def check(self, value):
        """Validate a Python value (as given to :func:`resolve`); return it normalized."""
        return value

    def show(self, value) -> str:
        """Canonical text of a value (top names, manifests, ``list``)."""
        return str(value)

    def _bad(self, value):
        return ParamError(f"{self.flag} must be {self.allowed}, not {value!r}")


@dataclass(frozen=True)
class IntParam(Param):
    lo: int = 0
    hi: int = 1 << 30
    power_of_two: bool = False

    @property
    def allowed(self):
        kind = "a power of two" if self.power_of_two else "an integer"
        return f"{kind} between {self.lo} and {self.hi}"

    def parse(self, text):
        try:
            value = int(str(text), 0)
        except ValueError:
            raise self._bad(text) from None
        return self.check(value)

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi \
                or (self.power_of_two and value & (value - 1)):
            raise self._bad(value)
        return value


@dataclass(frozen=True)
class BoolParam(Param):
    @property
    def allowed(self):
        return "true or false"

    def parse(self, text):
        t = str(text).strip().lower()
        if t in ("1", "true", "yes", "on"):
            return True
        if t in ("0", "false", "no", "off"):
            return False
        raise self._bad(text)

    def check(self, value):
        if not isinstance(value, bool):
            raise self._bad(value)
        return value

    def show(self, value):
        return "true" if value else "false"


@dataclass(frozen=True)
class ChoiceParam(Param):
    choices: tuple = ()

    @property
    def allowed(self):
        return "one of " + ", ".join(map(str, self.choices))

    def parse(self, text):
        return self.check(str(text).strip().lower())

    def check(self, value):
        if value not in self.choices:
            raise self._bad(value)
        return value


@dataclass(frozen=True)
class FormatParam(Param):
    """A number format; ``kinds`` restricts to float / int / flex formats;
    ``choices`` (optional) restricts to listed formats."""

    kinds: tuple = ("float",)
    choices: tuple = ()

    @property
    def allowed(self):
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        names = {"float": "a float format (eXmY, fp32, fp16, bf16, tf32, fp8e4m3, fp8e5m2)",
                 "int": "an integer format (iN, uN)", "flex": "a flex format (flexN+M)"}
        return " or ".join(names[k] for k in self.kinds)

    def parse(self, text):
        try:
            if self.kinds == ("float",):
                value = parse_float_format(text)
            elif self.kinds == ("int",):
                value = parse_int_format(text)
            else:
                value = parse_format(text)
        except ValueError:
            raise self._bad(text) from None
        return self.check(value)

    def check(self, value):
        kind = {FloatFormat: "float", IntFormat: "int", FlexFormat: "flex"}.get(type(value))
        if kind not in self.kinds or (self.choices and value not in self.choices):
            raise self._bad(value)
        return value


@dataclass(frozen=True)
class SameFormatParam(FormatParam):
    """A format parameter whose default ``None`` means "the same as ``same_as``"
    (another parameter); ``same`` on the command line selects it."""

    same_as: str = "in_format"

    @property
    def allowed(self):
        return super().allowed + f", or 'same' (the {self.same_as})"

    def parse(self, text):
        if str(text).strip().lower() in ("same", "none", ""):
            return None
        return super().parse(text)

    def check(self, value):
        return None if value is None else super().check(value)

    def show(self, value):
        return "same" if value is None else str(value)


@dataclass(frozen=True)
class Generator:
    """A registered generator.

    ``build(**params)`` returns the Amaranth component; ``top(params)`` the
    top-module name encoding the parameters (e.g. ``fma_e5m10_e8m23_rne_s3``);
    ``bench`` names the cocotb bench module used by ``tensorforge sim``.
    """

    name: str
    summary: str
    build: Callable[..., Any]
    params: tuple
    top: Callable[[dict], str]
    bench: str | None = None
    extra: dict = field(default_factory=dict)

    def param(self, name) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParamError(f"generator {self.name!r} has no parameter {name!r}; "
                         f"allowed: {', '.join(p.flag for p in self.params)}")

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}


_REGISTRY: dict[str, Generator] = {}
_loaded = False


def register(gen: Generator) -> Generator:
    if gen.name in _REGISTRY:
        raise ValueError(f"generator {gen.name!r} is registered twice")
    _REGISTRY[gen.name] = gen
    return gen


def generators() -> dict[str, Generator]:
    """All registered generators by name (imports the family modules on first use)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in FAMILY_MODULES:
            importlib.import_module(module)
    return dict(_REGISTRY)


def get(name: str) -> Generator:
    gens = generators()
    if name not in gens:
        raise ParamError(f"unknown generator {name!r}; allowed: {', '.join(sorted(gens))}")
    return gens[name]


def resolve(gen: Generator | str, params: dict | None = None, *, from_text: bool = False) -> dict:
    """Complete ``params`` with defaults and validate every value.

    With ``from_text`` the values are command-line strings and are parsed.
    Raises :class:`ParamError` for unknown names or bad values, and also when
    the component constructor rejects the combination (its message is kept).
    """
    if isinstance(gen, str):
        gen = get(gen)
    values = gen.defaults()
    for name, value in (params or {}).items():
        p = gen.param(name)
        values[name] = p.parse(value) if from_text else p.check(value)
    try:
        probe = gen.build(**values)
    except (TypeError, ValueError) as exc:
        raise ParamError(str(exc)) from None
    # built only to validate the combination: tell Amaranth not to warn that it went unused
    if hasattr(probe, "_MustUse__silence"):
        probe._MustUse__silence = True
    return values


def build(gen: Generator | str, params: dict | None = None):
    """Resolve parameters and return ``(component, top_name, resolved_params)``."""
    if isinstance(gen, str):
        gen = get(gen)
    values = resolve(gen, params)
    return gen.build(**values), gen.top(values), values
