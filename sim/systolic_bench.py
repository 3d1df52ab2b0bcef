"""cocotb bench for the systolic GEMM array (runs inside the simulator).

The array (:class:`tensorforge.rtl.systolic.SystolicArray`) has three streams: ``w`` and
``x`` in, ``y`` out (Verilog ``w__payload/valid/ready``, ``x__...``, ``y__...``, ``clk``,
``rst``). The host side (:mod:`tensorforge.sim.systolic_driver`) tiles each GEMM with
:func:`tensorforge.golden.systolic.stream_beats`, computes the expected ``y`` beats with the
golden model and writes one jobs file; this module replays the beats and scores them.

Structure (cocotb's example layout, components reused from
:mod:`tensorforge.sim.stream_bench`):

- two independent :class:`~tensorforge.sim.stream_bench.StreamDriver` s, one for ``w`` and
  one for ``x``, each with its own queue of packed beats and its own random-gap pattern.
  A driver raises ``valid`` as soon as it has a beat (never waiting for ``ready``: in OS
  the array joins the two streams, each ``ready`` depends on the other ``valid``) and
  holds the payload until the handshake;
- a :class:`~tensorforge.sim.stream_bench.StreamMonitor` on ``y`` that drives optional
  random back-pressure on ``y.ready``, records every handshake and checks that a stalled
  ``y`` keeps ``valid`` and its payload;
- :class:`GemmScoreboard`: every lane of every received ``y`` beat against the expected
  beats (computed before the run from the golden model, padding lanes included), bit for
  bit; the received beats are also saved so the host can reassemble ``Y`` and check it
  against an independent reference;
- :class:`SystolicTestbench`: per job resets the array, runs the cycle loop, checks that no
  further ``y`` beat appears afterwards (``latency + 8`` cycles with ``y.ready`` high) and
  measures the cycles from the first ``w``/``x`` handshake to the last ``y`` handshake,
  both included.

Handshakes are sampled in the ``ReadOnly`` phase before each rising edge; inputs are
written right after the edge (as in the generic stream bench), so the combinational
``ready`` paths are seen exactly.

Knobs (environment, set by the driver): ``TF_SYSTOLIC_MANIFEST``, ``TF_SYSTOLIC_JOBS``
(npz written by :func:`tensorforge.sim.systolic_driver.write_jobs`),
``TF_SYSTOLIC_RESULTS`` (results JSON), ``TF_SYSTOLIC_RECEIVED`` (npz of the received ``y``
beats, one array ``y_<job>`` each), ``TF_SYSTOLIC_PROGRESS`` (optional: ``job beats`` text,
updated every 1024 ``y`` beats).

Results JSON: ``top``, ``jobs`` (one dict per GEMM: ``M``, ``K``, ``N``, ``seed``, ``gap``,
``stall``, ``w_beats``, ``x_beats``, ``y_beats``, ``received``, ``mismatches`` (lanes),
``first_mismatches``, ``protocol_errors``, ``first_protocol_errors``, ``cycles``,
``first_input_cycle``, ``last_output_cycle``, ``input_wait_cycles``,
``output_stall_cycles``, ``sim_cycles``, ``wall_seconds``, ``passed``) and ``passed``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from .stream_bench import MAX_REPORTED, StreamDriver, StreamMonitor, TrafficPattern, hexw, pack, unpack

ENV = {
    "manifest": "TF_SYSTOLIC_MANIFEST",
    "jobs": "TF_SYSTOLIC_JOBS",
    "results": "TF_SYSTOLIC_RESULTS",
    "received": "TF_SYSTOLIC_RECEIVED",
    "progress": "TF_SYSTOLIC_PROGRESS",
}

PROGRESS_EVERY = 1024


def port_fields(manifest: dict, stream: str) -> list[dict]:
    for p in manifest["ports"]:
        if p["name"] == f"{stream}__payload":
            return p["fields"]
    raise KeyError(f"manifest of {manifest['top']} has no port {stream}__payload")


def field_arrays(fields: list[dict], lanes: np.ndarray, flags: dict, lane_name: str) -> list:
    """Per-field arrays in manifest order: ``lane_name[i]`` -> column i of ``lanes``, flags by name."""
    out = []
    for f in fields:
        name = f["name"]
        if name.startswith(lane_name + "["):
            out.append(lanes[:, int(name[len(lane_name) + 1:-1])])
        elif name in flags:
            out.append(np.asarray(flags[name]).astype(np.uint64))
        else:
            raise KeyError(f"no data for payload field {name!r}")
    return out


def load_jobs(path: str) -> list[dict]:
    """The jobs file: ``meta`` (JSON list of per-job dicts) plus arrays ``<name>_<job>``."""
    data = np.load(path, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    jobs = []
    for j, m in enumerate(meta):
        job = dict(m)
        for key in ("w", "x", "last", "start", "emit", "y_expected", "y_rows", "y_cols"):
            job[key] = data[f"{key}_{j}"]
        jobs.append(job)
    return jobs


class GemmScoreboard:
    """Compares received ``y`` beats with the expected ones, lane by lane, bit for bit."""

    def __init__(self, y_fields: list[dict], expected: np.ndarray, y_rows: np.ndarray, y_cols: np.ndarray):
        self.fields = [f for f in y_fields if f["name"].startswith("y[")]
        self.expected = expected            # (n_y, C) uint64
        self.y_rows, self.y_cols = y_rows, y_cols   # result row m and first column n0 of each beat
        self.mismatches = 0
        self.first: list[dict] = []

    def check(self, words: list[int]) -> np.ndarray:
        """Score the received payload words; returns them as an (n, C) uint64 array."""
        n = min(len(words), len(self.expected))
        got = np.stack(unpack(self.fields, words[:n]), axis=1) if n else np.zeros((0, len(self.fields)), np.uint64)
        bad = got != self.expected[:n]
        self.mismatches = int(bad.sum())
        width = self.fields[0]["width"]
        for b, c in zip(*np.nonzero(bad)):
            if len(self.first) >= MAX_REPORTED:
                break
            self.first.append({
                "beat": int(b), "row": int(self.y_rows[b]), "col": int(self.y_cols[b]) + int(c), "lane": int(c),
                "expected": hexw(self.expected[b, c], width), "got": hexw(got[b, c], width),
            })
        return got


class SystolicTestbench:
    """Runs the jobs (one GEMM each) on the array; see the module docstring."""

    def __init__(self, dut, manifest: dict, progress_path: str | None = None):
        self.dut, self.manifest = dut, manifest
        self.w_fields = port_fields(manifest, "w")
        self.x_fields = port_fields(manifest, "x")
        self.y_fields = port_fields(manifest, "y")
        self.latency = int(manifest.get("latency") or 0)
        self.progress_path = progress_path
        self.clk = dut.clk
        self.rst = dut.rst
        self.edge = RisingEdge(self.clk)
        self.ro = ReadOnly()
        Clock(self.clk, 10, unit="ns").start()

    def write_progress(self, job: int, beats: int):
        if self.progress_path:
            with open(self.progress_path, "w") as f:
                f.write(f"{job} {beats}")

    async def reset(self, w_drv, x_drv, mon):
        w_drv.reset()
        x_drv.reset()
        mon.reset()
        self.rst.value = 1
        for _ in range(3):
            await self.edge
        self.rst.value = 0
        await self.edge

    async def run_job(self, index: int, job: dict) -> tuple[dict, np.ndarray]:
        seed, gap, stall = int(job["seed"]), float(job["gap"]), float(job["stall"])
        rng = np.random.default_rng([int(job["traffic_seed"]), 0x5157])
        w_gaps = TrafficPattern(rng, gap, "gap")
        x_gaps = TrafficPattern(rng, gap, "gap")
        stalls = TrafficPattern(rng, stall, "stall")
        flags = {"last": job["last"], "start": job["start"], "emit": job["emit"]}
        w_words = pack(self.w_fields, field_arrays(self.w_fields, job["w"], {}, "w"))
        x_words = pack(self.x_fields, field_arrays(self.x_fields, job["x"], flags, "x"))
        w_drv = StreamDriver(self.dut, "w", w_words, w_gaps)
        x_drv = StreamDriver(self.dut, "x", x_words, x_gaps)
        mon = StreamMonitor(self.dut, "y", stalls, None)
        n_y = len(job["y_expected"])
        errors: list[str] = []
        count = [0]

        def protocol_error(text):
            count[0] += 1
            if len(errors) < MAX_REPORTED:
                errors.append(text)

        await self.reset(w_drv, x_drv, mon)
        estimate = int(job["model_cycles"] / max(0.05, (1 - gap) * (1 - stall)) * 1.5) + 4096
        for pattern in (w_gaps, x_gaps, stalls):
            pattern.extend(estimate)
        read_w_ready, read_x_ready = w_drv.read_ready, x_drv.read_ready
        watchdog = 4096 + 8 * self.latency + 4 * len(job["y_expected"][0])
        edge, ro = self.edge, self.ro
        cycle, last_event = 0, 0
        first_in = None
        t0 = time.perf_counter()
        while len(mon.words) < n_y:
            if cycle >= len(stalls.bits):
                for pattern in (w_gaps, x_gaps, stalls):
                    pattern.extend(estimate)
            w_drv.drive(cycle)
            x_drv.drive(cycle)
            mon.drive(cycle)
            await ro
            moved = False
            if w_drv.presenting:
                w_drv.sample(cycle, read_w_ready())
                moved = not w_drv.presenting
            if x_drv.presenting:
                x_drv.sample(cycle, read_x_ready())
                moved = moved or not x_drv.presenting
            if moved and first_in is None:
                first_in = cycle
            before = len(mon.words)
            mon.sample(cycle)
            if len(mon.words) != before:
                moved = True
                if len(mon.words) % PROGRESS_EVERY == 0:
                    self.write_progress(index, len(mon.words))
            if moved:
                last_event = cycle
            elif cycle - last_event > watchdog:
                protocol_error(f"cycle {cycle}: no handshake on any stream for {watchdog} cycles (deadlock?); "
                               f"sent {w_drv.index}/{len(w_words)} w and {x_drv.index}/{len(x_words)} x beats, "
                               f"received {len(mon.words)}/{n_y} y beats")
                break
            await edge
            cycle += 1
        last_out = mon.cycles[-1] if mon.cycles else None
        if not (w_drv.done and x_drv.done) and not errors:
            protocol_error(f"all {n_y} y beats arrived but only {w_drv.index}/{len(w_words)} w and "
                           f"{x_drv.index}/{len(x_words)} x beats were accepted")
        # nothing more may come out
        for _ in range(self.latency + 8):
            await edge
            cycle += 1
            w_drv.drive(cycle)          # all beats sent: drops valid
            x_drv.drive(cycle)
            mon.drive(cycle, force_ready=True)
            await ro
            if mon.read_valid():
                protocol_error(f"cycle {cycle}: extra y beat after all {n_y} expected beats")
                break
        await edge
        wall = time.perf_counter() - t0
        self.write_progress(index, len(mon.words))
        for e in mon.errors:
            protocol_error(e)
        count[0] += max(0, mon.error_count - len(mon.errors))
        if len(mon.words) < n_y and not errors:
            protocol_error(f"received {len(mon.words)} of {n_y} y beats")
        board = GemmScoreboard(self.y_fields, job["y_expected"], job["y_rows"], job["y_cols"])
        got = board.check(mon.words)
        measured = (last_out - first_in + 1) if (first_in is not None and last_out is not None) else None
        passed = board.mismatches == 0 and count[0] == 0 and len(mon.words) == n_y
        result = {
            "M": int(job["M"]), "K": int(job["K"]), "N": int(job["N"]),
            "seed": seed, "gap": gap, "stall": stall,
            "w_beats": len(w_words), "x_beats": len(x_words), "y_beats": n_y, "received": len(mon.words),
            "mismatches": board.mismatches, "first_mismatches": board.first,
            "protocol_errors": count[0], "first_protocol_errors": errors,
            "cycles": measured, "first_input_cycle": first_in, "last_output_cycle": last_out,
            "input_wait_cycles": w_drv.wait_cycles + x_drv.wait_cycles, "output_stall_cycles": mon.stall_cycles,
            "sim_cycles": cycle, "wall_seconds": round(wall, 3),
            "cycles_per_second": round(cycle / wall, 1) if wall else 0.0,
            "passed": passed,
        }
        return result, got


@cocotb.test()
async def systolic_bench(dut):
    """Run every GEMM job of ``TF_SYSTOLIC_JOBS`` through the array and score it."""
    env = os.environ
    with open(env[ENV["manifest"]]) as f:
        manifest = json.load(f)
    jobs = load_jobs(env[ENV["jobs"]])
    tb = SystolicTestbench(dut, manifest, progress_path=env.get(ENV["progress"]))
    results, received = [], {}
    for j, job in enumerate(jobs):
        res, got = await tb.run_job(j, job)
        results.append(res)
        received[f"y_{j}"] = got
        dut._log.info(f"job {j}: GEMM {res['M']}x{res['K']}x{res['N']}: {res['received']}/{res['y_beats']} y beats, "
                      f"{res['mismatches']} mismatches, {res['protocol_errors']} protocol errors, "
                      f"{res['cycles']} cycles, seed {res['seed']}")
        for m in res["first_mismatches"]:
            dut._log.error(f"mismatch: {m}")
        for e in res["first_protocol_errors"]:
            dut._log.error(f"protocol: {e}")
    out = {"top": manifest["top"], "jobs": results, "passed": all(r["passed"] for r in results)}
    path = env.get(ENV["received"])
    if path:
        tmp = path + ".tmp.npz"
        np.savez(tmp, **received)
        os.replace(tmp, path)
    path = env.get(ENV["results"])
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=2)
        os.replace(tmp, path)
    assert out["passed"], f"{sum(not r['passed'] for r in results)} of {len(results)} GEMM jobs failed"
