"""FPGA targets of the open synthesis flow: device, package, speed grade and capacity.

=============  ==========================  =================  ==========  =======  =====  ======
target         device (nextpnr flag)       default package    speed       LUT4/FF  DSP    BRAM
=============  ==========================  =================  ==========  =======  =====  ======
ice40-up5k     iCE40 UltraPlus UP5K        sg48 (39 I/O)      --          5,280    8      30
ecp5-25k       ECP5 LFE5U-25F              CABGA381           6 (slowest) 24,288   28     56
ecp5-45k       ECP5 LFE5U-45F              CABGA381           6           43,848   72     108
ecp5-85k       ECP5 LFE5U-85F              CABGA381           6           83,640   156    208
=============  ==========================  =================  ==========  =======  =====  ======

DSP counts MULT18X18D (ECP5; two per sysDSP slice) or SB_MAC16 (iCE40); BRAM
counts DP16KD (18 Kbit, ECP5) or SB_RAM40_4K (4 Kbit, iCE40). The capacities
are the ``available`` figures nextpnr 0.11 reports for these devices (a test
checks them against a real run); they drive the "does not fit" check that runs
before place-and-route.

Speed grade 6 is the default on ECP5 because it is nextpnr's default and the
grade of the common boards (ULX3S, ECPIX-5 use -6/-8; the slowest grade gives
figures that hold on every part). With it, a registered 16x16 multiply in one
MULT18X18D reaches ~145 MHz on the 25k part, the reference figure quoted in the
architecture notes. ``--speed 8`` gives the fastest grade.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["Target", "TARGETS", "get_target", "RESOURCE_NAMES"]

#: Generic resource names used in every report, in display order.
RESOURCE_NAMES = ("LUT4", "FF", "DSP", "BRAM", "IO")


@dataclass(frozen=True)
class Target:
    """One device of the flow.

    ``family`` is ``"ecp5"`` or ``"ice40"``; ``device_flag`` the nextpnr device
    option (``--25k``, ``--up5k``); ``capacity`` maps the generic resource names
    (:data:`RESOURCE_NAMES`) to what the device has.
    """

    name: str
    family: str
    part: str
    device_flag: str
    package: str
    packages: tuple
    speed: int | None
    speeds: tuple
    default_freq_mhz: float
    capacity: dict = field(default_factory=dict)
    io_by_package: dict = field(default_factory=dict)

    def with_options(self, package: str | None = None, speed: int | None = None) -> "Target":
        """The same device with another package and/or speed grade (validated)."""
        t = self
        if package is not None:
            canon = {p.lower(): p for p in self.packages}.get(str(package).lower())
            if canon is None:
                raise ValueError(f"package for {self.name} must be one of {', '.join(self.packages)}, not {package!r}")
            cap = dict(self.capacity)
            cap["IO"] = self.io_by_package.get(canon, cap["IO"])
            t = replace(t, package=canon, capacity=cap)
        if speed is not None:
            if not self.speeds:
                raise ValueError(f"{self.name} has no speed grades; do not give --speed")
            if isinstance(speed, bool) or speed not in self.speeds:
                raise ValueError(f"speed for {self.name} must be one of {', '.join(map(str, self.speeds))}, not {speed!r}")
            t = replace(t, speed=speed)
        return t

    @property
    def dsp_cell(self) -> str:
        return "MULT18X18D" if self.family == "ecp5" else "SB_MAC16"

    @property
    def bram_cell(self) -> str:
        return "DP16KD" if self.family == "ecp5" else "SB_RAM40_4K"

    def describe(self) -> str:
        speed = f", speed {self.speed}" if self.speed is not None else ""
        return f"{self.part} {self.package}{speed}"


_ECP5_PACKAGES = ("CABGA256", "CABGA381", "CABGA554", "CABGA756", "CSFBGA285", "TQFP144")
# user I/O per package (Lattice ECP5 family data sheet, pinout tables)
_ECP5_IO = {
    "25k": {"CABGA256": 197, "CABGA381": 197, "CSFBGA285": 118, "TQFP144": 98},
    "45k": {"CABGA256": 197, "CABGA381": 203, "CABGA554": 245, "CSFBGA285": 118, "TQFP144": 98},
    "85k": {"CABGA381": 205, "CABGA554": 259, "CABGA756": 365, "CSFBGA285": 118},
}


def _ecp5(size, luts, dsp, bram):
    io = _ECP5_IO[size]
    return Target(
        name=f"ecp5-{size}", family="ecp5", part=f"LFE5U-{size[:-1]}F", device_flag=f"--{size}",
        package="CABGA381", packages=tuple(p for p in _ECP5_PACKAGES if p in io), speed=6, speeds=(6, 7, 8),
        default_freq_mhz=200.0,
        capacity={"LUT4": luts, "FF": luts, "DSP": dsp, "BRAM": bram, "IO": io["CABGA381"]},
        io_by_package=io,
    )


TARGETS: dict[str, Target] = {
    "ice40-up5k": Target(
        name="ice40-up5k", family="ice40", part="iCE40UP5K", device_flag="--up5k",
        package="sg48", packages=("sg48", "uwg30"), speed=None, speeds=(), default_freq_mhz=100.0,
        capacity={"LUT4": 5280, "FF": 5280, "DSP": 8, "BRAM": 30, "IO": 39},
        io_by_package={"sg48": 39, "uwg30": 21},
    ),
    "ecp5-25k": _ecp5("25k", 24288, 28, 56),
    "ecp5-45k": _ecp5("45k", 43848, 72, 108),
    "ecp5-85k": _ecp5("85k", 83640, 156, 208),
}


def get_target(name: str, *, package: str | None = None, speed: int | None = None) -> Target:
    """Look a target up by name and apply package/speed options; ValueError names what is allowed."""
    if name not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {name!r}")
    return TARGETS[name].with_options(package=package, speed=speed)
