"""Generic cocotb stream bench, driven by a core's manifest (runs inside the simulator).

Any core with an input stream ``i`` and an output stream ``o``
(``amaranth.lib.stream``; Verilog ports ``i__payload/i__valid/i__ready``,
``o__payload/o__valid/o__ready``, ``clk``, ``rst``) is verified by this one
module: it needs only the manifest (payload field names, offsets, widths,
latency) and a vectors file with the stimulus and the expected outputs.
``tensorforge.sim.runner`` writes both and starts the simulator; the expected
outputs come from the golden model, evaluated in bulk (vectorized) before the
run by ``tensorforge.sim.models``.

Structure (as in cocotb's own examples):

- :class:`StreamDriver` packs input fields into ``i__payload`` by offset and
  width (all vectors packed up front) and presents them with random gaps.
- :class:`StreamMonitor` drives random back-pressure on ``o__ready`` and
  collects ``o__payload`` on every handshake; it also checks the stream
  contract: a stalled output keeps ``o__valid`` and its payload, nothing
  comes out earlier than ``latency`` cycles or after the last vector, and
  (initiation interval 1) ``i__ready`` is high whenever ``o__ready`` is.
- :class:`ReferenceModel` holds the golden outputs (computed before the run).
- :class:`Scoreboard` compares in order, counts mismatching vectors and keeps
  the first few with their inputs, in hex.
- :class:`StreamTestbench` resets the core and runs the cycle loop.

Handshakes are sampled in the ``ReadOnly`` phase before each rising edge and
inputs are written right after the edge, so combinational ready paths
(``i__ready`` depends on ``o__ready``) are seen exactly. The per-cycle Python
work is two triggers and a few signal reads.

Gap/stall pattern: the cycle stream is cut into phases of 8..256 cycles; a
phase has no gaps (stalls), random gaps with probability ``gap`` (``stall``),
or heavy gaps at ``max(p, 0.75)``, chosen 25/50/25 %. So every run exercises
full throughput, random traffic, pipeline draining (input gaps) and a full,
stalled pipeline (output back-pressure). ``p = 0`` disables them.

Knobs (environment; the runner sets them): ``TF_BENCH_MANIFEST``,
``TF_BENCH_VECTORS`` (npz from ``runner.write_vectors``),
``TF_BENCH_RESULTS`` (results JSON written here), ``TF_BENCH_PROGRESS``
(optional file with the count of received vectors, updated every 2048),
``TF_BENCH_SEED``, ``TF_BENCH_GAP``, ``TF_BENCH_STALL`` (0 <= p < 1),
``TF_BENCH_IN`` / ``TF_BENCH_OUT`` (stream names, default ``i`` / ``o``).

Results JSON: ``top``, ``generator``, ``vectors``, ``received``,
``mismatches``, ``first_mismatches`` (index, inputs, expected, got; hex),
``protocol_errors``, ``first_protocol_errors``, ``cycles``,
``wall_seconds``, ``sim_vectors_per_second``, ``input_wait_cycles``,
``output_stall_cycles``, ``latency_observed`` (min/max cycles from input to
output handshake), ``coverage`` (``sim.coverage`` report for FP cores, else None), ``seed``, ``gap``,
``stall``, ``passed``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

ENV = {
    "manifest": "TF_BENCH_MANIFEST",
    "vectors": "TF_BENCH_VECTORS",
    "results": "TF_BENCH_RESULTS",
    "progress": "TF_BENCH_PROGRESS",
    "seed": "TF_BENCH_SEED",
    "gap": "TF_BENCH_GAP",
    "stall": "TF_BENCH_STALL",
    "in": "TF_BENCH_IN",
    "out": "TF_BENCH_OUT",
}

MAX_REPORTED = 8
PROGRESS_EVERY = 2048


# ---------------------------------------------------------------------------------------------
# packing (vectorized, outside the cycle loop)


def pack(fields: list[dict], arrays: list) -> list[int]:
    """Pack per-field arrays into payload words (Python ints) by each field's offset and width."""
    total = max((f["offset"] + f["width"] for f in fields), default=0)
    n = len(arrays[0]) if arrays else 0
    if total <= 64:
        word = np.zeros(n, dtype=np.uint64)
        for f, arr in zip(fields, arrays):
            mask = np.uint64((1 << f["width"]) - 1)
            word |= (np.asarray(arr, dtype=np.uint64) & mask) << np.uint64(f["offset"])
        return [int(w) for w in word.tolist()]
    word = np.zeros(n, dtype=object)
    word[:] = 0
    for f, arr in zip(fields, arrays):
        mask = (1 << f["width"]) - 1
        word = word | ((np.asarray(arr).astype(object) & mask) << f["offset"])
    return [int(w) for w in word]


def unpack(fields: list[dict], words: list[int]) -> list:
    """Payload words -> per-field arrays (uint64 for fields <= 64 bits, else Python-int object arrays)."""
    total = max((f["offset"] + f["width"] for f in fields), default=0)
    out = []
    if total <= 64:
        w = np.array(words, dtype=np.uint64)
        for f in fields:
            out.append((w >> np.uint64(f["offset"])) & np.uint64((1 << f["width"]) - 1))
        return out
    w = np.array(words, dtype=object)
    for f in fields:
        vals = (w >> f["offset"]) & ((1 << f["width"]) - 1)
        out.append(vals.astype(np.uint64) if f["width"] <= 64 else vals)
    return out


def fast_reader(handle):
    """A zero-argument function returning ``handle``'s value as an unsigned int, fast.

    The public ``handle.value`` builds a Logic/LogicArray per read (measured:
    the cycle rate drops from ~19k to ~12k cycles/s); this reads the simulator object directly (Verilator is
    2-state, so there are no X/Z bits to resolve) and falls back to the public
    API when the simulator object lacks the raw accessors.
    """
    raw = getattr(handle, "_handle", None)
    width = len(handle)
    if raw is not None and width <= 32 and hasattr(raw, "get_signal_val_long"):
        get_long, mask = raw.get_signal_val_long, (1 << width) - 1
        return lambda: get_long() & mask
    if raw is not None and hasattr(raw, "get_signal_val_binstr"):
        get_str = raw.get_signal_val_binstr
        return lambda: int(get_str(), 2)
    return lambda: handle.value.to_unsigned()


def hexw(value, width: int) -> str:
    return f"0x{int(value):0{max(1, (width + 3) // 4)}x}"


# ---------------------------------------------------------------------------------------------
# traffic patterns


class TrafficPattern:
    """Per-cycle booleans ("gap"/"stall" this cycle), phase-structured (see module docstring)."""

    def __init__(self, rng: np.random.Generator, p: float, name: str):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} probability must be >= 0 and < 1, not {p!r}")
        self.rng, self.p = rng, p
        self.bits: list[bool] = []

    def extend(self, cycles: int):
        if self.p == 0.0:
            self.bits.extend([False] * cycles)
            return
        out, made = [], 0
        heavy = max(self.p, 0.75)
        while made < cycles:
            length = int(self.rng.integers(8, 257))
            mode = self.rng.random()
            if mode < 0.25:
                seg = np.zeros(length, dtype=bool)
            elif mode < 0.75:
                seg = self.rng.random(length) < self.p
            else:
                seg = self.rng.random(length) < heavy
            out.append(seg)
            made += length
        self.bits.extend(np.concatenate(out).tolist())


# ---------------------------------------------------------------------------------------------
# bench components


class StreamDriver:
    """Presents packed payloads on stream ``name`` with random gaps (valid held until accepted)."""

    def __init__(self, dut, name: str, words: list[int], gaps: TrafficPattern):
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.words = words
        self.gaps = gaps
        self.read_ready = fast_reader(self.ready)
        self.index = 0              # next vector to present
        self.presenting = False     # a vector is on the bus, not yet accepted
        self.valid_level = 0
        self.accept_cycles: list[int] = []
        self.wait_cycles = 0        # valid and not ready

    def reset(self):
        self.valid.value = 0
        self.valid_level = 0

    def drive(self, cycle: int):
        """Called right after a rising edge: put the next vector (or a gap) on the bus."""
        if self.presenting:
            return
        if self.index < len(self.words) and not self.gaps.bits[cycle]:
            self.payload.value = self.words[self.index]
            self.presenting = True
            if not self.valid_level:
                self.valid.value = 1
                self.valid_level = 1
        elif self.valid_level:
            self.valid.value = 0
            self.valid_level = 0

    def sample(self, cycle: int, ready: bool):
        """Called in ReadOnly with the settled ``ready``: did the core take the vector at this edge?"""
        if self.presenting:
            if ready:
                self.presenting = False
                self.index += 1
                self.accept_cycles.append(cycle)
            else:
                self.wait_cycles += 1

    @property
    def done(self) -> bool:
        return self.index >= len(self.words)


class StreamMonitor:
    """Drives back-pressure on stream ``name``'s ready and records every payload handshake."""

    def __init__(self, dut, name: str, stalls: TrafficPattern, progress_path: str | None):
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.read_valid = fast_reader(self.valid)
        self.read_payload = fast_reader(self.payload)
        self.stalls = stalls
        self.ready_level = 0
        self.words: list[int] = []
        self.cycles: list[int] = []
        self.held = None            # payload seen valid-but-stalled last cycle
        self.stall_cycles = 0
        self.errors: list[str] = []
        self.error_count = 0
        self.progress_path = progress_path

    def error(self, text: str):
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(text)

    def reset(self):
        self.ready.value = 0
        self.ready_level = 0

    def drive(self, cycle: int, force_ready: bool = False):
        level = 1 if force_ready or not self.stalls.bits[cycle] else 0
        if level != self.ready_level:
            self.ready.value = level
            self.ready_level = level

    def sample(self, cycle: int):
        """Called in ReadOnly: record a handshake, check a stalled output stays put."""
        valid = self.read_valid()
        held = self.held
        self.held = None
        if not valid:
            if held is not None:
                self.error(f"cycle {cycle}: o__valid dropped while the output was stalled")
            return
        word = self.read_payload()
        if held is not None and word != held:
            self.error(f"cycle {cycle}: o__payload changed from {held:#x} to {word:#x} while stalled")
        if self.ready_level:
            self.words.append(word)
            self.cycles.append(cycle)
            if self.progress_path and len(self.words) % PROGRESS_EVERY == 0:
                self.write_progress()
        else:
            self.held = word
            self.stall_cycles += 1

    def write_progress(self):
        if self.progress_path:
            with open(self.progress_path, "w") as f:
                f.write(str(len(self.words)))


class ReferenceModel:
    """Expected output fields, computed by the golden model before the run (``tensorforge.sim.models``)."""

    def __init__(self, out_fields: list[dict], expected: list):
        self.fields = out_fields
        self.expected = expected

    def __len__(self):
        return len(self.expected[0]) if self.expected else 0


class Scoreboard:
    """In-order comparison of received against expected outputs, bit for bit."""

    def __init__(self, in_fields, inputs, model: ReferenceModel):
        self.in_fields, self.inputs, self.model = in_fields, inputs, model
        self.mismatches = 0
        self.first: list[dict] = []

    def check(self, received_words: list[int]):
        n = len(received_words)
        got = unpack(self.model.fields, received_words)
        bad = np.zeros(n, dtype=bool)
        for exp, g in zip(self.model.expected, got):
            e = np.asarray(exp[:n])
            bad |= (e != g) if e.dtype != object else np.array([int(x) != int(y) for x, y in zip(e, g)], bool)
        idx = np.flatnonzero(bad)
        self.mismatches = int(len(idx))
        for i in idx[:MAX_REPORTED].tolist():
            self.first.append({
                "index": int(i),
                "inputs": {f["name"]: hexw(a[i], f["width"]) for f, a in zip(self.in_fields, self.inputs)},
                "expected": {f["name"]: hexw(a[i], f["width"]) for f, a in zip(self.model.fields, self.model.expected)},
                "got": {f["name"]: hexw(a[i], f["width"]) for f, a in zip(self.model.fields, got)},
            })


def _port_fields(manifest, port):
    for p in manifest["ports"]:
        if p["name"] == port:
            return p["fields"]
    raise KeyError(f"manifest of {manifest['top']} has no port {port}")


def load_vectors(path: str):
    data = np.load(path, allow_pickle=True)
    meta = json.loads(str(data["meta"]))
    inputs = [data[f"inputs_{k}"] for k in range(len(meta["inputs"]))]
    outputs = [data[f"outputs_{k}"] for k in range(len(meta["outputs"]))]
    return meta, inputs, outputs


class StreamTestbench:
    """Resets the core, runs the cycle loop, scores and writes the results JSON."""

    def __init__(self, dut, manifest: dict, inputs: list, expected: list, *, seed: int, gap: float,
                 stall: float, in_stream: str = "i", out_stream: str = "o", progress_path: str | None = None):
        self.dut, self.manifest = dut, manifest
        self.in_fields = _port_fields(manifest, f"{in_stream}__payload")
        self.out_fields = _port_fields(manifest, f"{out_stream}__payload")
        self.inputs = inputs
        self.seed, self.gap, self.stall = seed, gap, stall
        rng = np.random.default_rng([seed, 0x5EED])
        self.gaps = TrafficPattern(rng, gap, "gap")
        self.stalls = TrafficPattern(rng, stall, "stall")
        self.driver = StreamDriver(dut, in_stream, pack(self.in_fields, inputs), self.gaps)
        self.monitor = StreamMonitor(dut, out_stream, self.stalls, progress_path)
        self.model = ReferenceModel(self.out_fields, expected)
        self.scoreboard = Scoreboard(self.in_fields, inputs, self.model)
        self.latency = manifest.get("latency")
        ii = manifest.get("initiation_interval")
        self.check_ii = ii == 1
        self.protocol: list[str] = []
        self.protocol_count = 0
        self.cycles = 0
        self.wall = 0.0

    def protocol_error(self, text):
        self.protocol_count += 1
        if len(self.protocol) < MAX_REPORTED:
            self.protocol.append(text)

    async def reset(self, tick):
        self.driver.reset()
        self.monitor.reset()
        reset = self.manifest.get("reset")
        if reset:
            rst = getattr(self.dut, reset["name"])
            rst.value = 1 if reset.get("polarity", "high") == "high" else 0
            for _ in range(3):
                await tick
            rst.value = 0 if reset.get("polarity", "high") == "high" else 1
        await tick

    async def run(self):
        dut = self.dut
        clock = self.manifest.get("clock")
        if clock:
            clk = getattr(dut, clock["name"])
            Clock(clk, 10, unit="ns").start()
            edge = RisingEdge(clk) if clock.get("edge", "posedge") == "posedge" else FallingEdge(clk)
        else:                     # purely combinational core (stages=0): a "cycle" is 10 ns of time
            edge = Timer(10, unit="ns")
        await self.reset(edge)
        n = len(self.driver.words)
        driver, monitor = self.driver, self.monitor
        estimate = int(n / max(0.05, (1 - self.gap) * (1 - self.stall)) * 1.6) + 4096
        self.gaps.extend(estimate)
        self.stalls.extend(estimate)
        lat = self.latency if isinstance(self.latency, int) else 0
        watchdog = 2000 + 20 * lat
        read_i_ready = driver.read_ready
        ro = ReadOnly()
        cycle, last_out = 0, 0
        t0 = time.perf_counter()
        while len(monitor.words) < n:
            if cycle >= len(self.gaps.bits):
                self.gaps.extend(estimate)
                self.stalls.extend(estimate)
            driver.drive(cycle)
            monitor.drive(cycle)
            await ro
            if driver.presenting or monitor.ready_level:
                ready = read_i_ready()
                if self.check_ii and monitor.ready_level and not ready:
                    self.protocol_error(f"cycle {cycle}: o__ready high but i__ready low "
                                        f"(initiation interval 1 violated)")
                driver.sample(cycle, ready)
            before = len(monitor.words)
            monitor.sample(cycle)
            if len(monitor.words) != before:
                last_out = cycle
            elif cycle - last_out > watchdog and not (driver.done and len(monitor.words) >= n):
                self.protocol_error(f"cycle {cycle}: no output for {watchdog} cycles with "
                                    f"{driver.index - len(monitor.words)} vectors inside (deadlock?); "
                                    f"received {len(monitor.words)} of {n}")
                break
            if len(monitor.words) > driver.index:
                self.protocol_error(f"cycle {cycle}: output handshake {len(monitor.words)} but only "
                                    f"{driver.index} inputs accepted")
                break
            await edge
            cycle += 1
        # drain: nothing more may come out
        self.gaps.extend(lat + 8)
        for _ in range(lat + 4):
            await edge
            cycle += 1
            driver.drive(cycle)          # all vectors sent: this drops i__valid
            monitor.drive(cycle, force_ready=True)
            await ro
            if monitor.read_valid():
                self.protocol_error(f"cycle {cycle}: extra output after all {n} vectors")
                break
        self.wall = time.perf_counter() - t0
        self.cycles = cycle
        monitor.write_progress()

    def coverage(self):
        """Functional coverage of FP cores (``tensorforge.sim.coverage``); None for other cores."""
        from .coverage import bench_coverage
        return bench_coverage(self.manifest, self.in_fields, self.inputs, self.model.fields,
                              unpack(self.model.fields, self.monitor.words))

    def results(self) -> dict:
        mon, drv = self.monitor, self.driver
        self.scoreboard.check(mon.words)
        n = len(drv.words)
        received = len(mon.words)
        for e in mon.errors:
            self.protocol_error(e)
        self.protocol_count += max(0, mon.error_count - len(mon.errors))
        if received < n and not self.protocol:
            self.protocol_error(f"received {received} of {n} outputs")
        lat = None
        if received:
            k = min(received, len(drv.accept_cycles))
            d = np.array(mon.cycles[:k]) - np.array(drv.accept_cycles[:k])
            lat = {"min": int(d.min()), "max": int(d.max())}
            if isinstance(self.latency, int) and lat["min"] < self.latency:
                self.protocol_error(f"an output came {lat['min']} cycles after its input; "
                                    f"manifest latency is {self.latency}")
        passed = self.scoreboard.mismatches == 0 and self.protocol_count == 0 and received == n
        return {
            "top": self.manifest["top"], "generator": self.manifest.get("generator"),
            "vectors": n, "received": received,
            "mismatches": self.scoreboard.mismatches, "first_mismatches": self.scoreboard.first,
            "protocol_errors": self.protocol_count, "first_protocol_errors": self.protocol,
            "cycles": self.cycles, "wall_seconds": round(self.wall, 4),
            "sim_vectors_per_second": round(received / self.wall, 1) if self.wall else 0.0,
            "cycles_per_second": round(self.cycles / self.wall, 1) if self.wall else 0.0,
            "input_wait_cycles": drv.wait_cycles, "output_stall_cycles": mon.stall_cycles,
            "latency_observed": lat, "coverage": self.coverage(),
            "seed": self.seed, "gap": self.gap, "stall": self.stall,
            "max_reported": MAX_REPORTED, "passed": passed,
        }


@cocotb.test()
async def stream_bench(dut):
    """Drive every vector of ``TF_BENCH_VECTORS`` through the core and score it against the golden outputs."""
    env = os.environ
    with open(env[ENV["manifest"]]) as f:
        manifest = json.load(f)
    meta, inputs, expected = load_vectors(env[ENV["vectors"]])
    tb = StreamTestbench(
        dut, manifest, inputs, expected,
        seed=int(env.get(ENV["seed"], "1")),
        gap=float(env.get(ENV["gap"], "0.2")), stall=float(env.get(ENV["stall"], "0.2")),
        in_stream=env.get(ENV["in"], "i"), out_stream=env.get(ENV["out"], "o"),
        progress_path=env.get(ENV["progress"]),
    )
    names_in = [f["name"] for f in tb.in_fields]
    names_out = [f["name"] for f in tb.out_fields]
    if meta["inputs"] != names_in or meta["outputs"] != names_out:
        raise ValueError(f"vectors file fields {meta['inputs']} -> {meta['outputs']} do not match the manifest "
                         f"{names_in} -> {names_out}")
    await tb.run()
    res = tb.results()
    path = env.get(ENV["results"])
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=2)
        os.replace(tmp, path)
    summary = (f"{res['top']}: {res['received']}/{res['vectors']} vectors, {res['mismatches']} mismatches, "
               f"{res['protocol_errors']} protocol errors, seed {res['seed']}")
    dut._log.info(summary)
    for m in res["first_mismatches"]:
        dut._log.error(f"mismatch #{m['index']}: inputs {m['inputs']} expected {m['expected']} got {m['got']}")
    for e in res["first_protocol_errors"]:
        dut._log.error(f"protocol: {e}")
    assert res["passed"], summary
