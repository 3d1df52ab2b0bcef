"""cocotb bench for the EIE array (runs inside the simulator).

The array (:class:`tensorforge.rtl.eie.EIEArray`; Verilog ``load__payload/valid/ready``,
``start__...``, ``o__...``, ``busy``, ``done``, ``error``, ``cycles``, ``broadcast``, ``clk``,
``rst``) is driven job by job from a jobs file written by
:func:`tensorforge.sim.eie_driver.write_jobs`. Per job:

1. the load commands (target, pe, addr, data) go through ``load`` with random valid gaps
   (probability ``gap``); a job with ``chain`` set additionally loads the *received* results
   of the previous job as its input activations (``TARGET_ACT``, after a ``TARGET_CLEAR``
   that is the job's first command), which is the host-driven source/destination swap;
2. ``start`` (``n_out``, ``shift``, ``relu``, ``check``, ``n_cols``) is raised; the cycle in which it is accepted is
   cycle 0 and the bench counts cycles until ``done`` is sampled high (``cycles``), counts
   ``broadcast`` cycles, and reads the ``cycles`` and ``error`` outputs;
3. ``n_out`` results are read from ``o`` with random back-pressure (probability ``stall``);
   a stalled ``o`` must keep ``valid`` and its payload (protocol check); afterwards 8 cycles
   with ``o.ready`` high must show no further result and ``busy`` low.

Scoring (values against ``golden.eie.spmv``, cycles against ``golden.eie.cycles``) is done
by the host. Handshakes are sampled in ``ReadOnly`` before each rising edge; inputs are
written right after the edge.

Environment: ``TF_EIE_MANIFEST``, ``TF_EIE_JOBS`` (npz: ``meta`` JSON and ``cmds_<j>``
uint64 arrays of shape (n, 4)), ``TF_EIE_RESULTS`` (results JSON: ``jobs``, one dict per job
with ``values``, ``cycles``, ``cycles_port``, ``error``, ``broadcasts``, ``protocol_errors``,
``load_wait_cycles``, ``output_stall_cycles``, ``sim_cycles``, ``wall_seconds``).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

ENV = {"manifest": "TF_EIE_MANIFEST", "jobs": "TF_EIE_JOBS", "results": "TF_EIE_RESULTS"}
TARGET_ACT, TARGET_CLEAR = 4, 5


def _fields(manifest, port):
    for p in manifest["ports"]:
        if p["name"] == port:
            return {f["name"]: (f["offset"], f["width"]) for f in p["fields"]}
    raise KeyError(f"manifest of {manifest['top']} has no port {port}")


def _pack(fields, **values):
    word = 0
    for name, v in values.items():
        off, w = fields[name]
        word |= (int(v) & ((1 << w) - 1)) << off
    return word


@cocotb.test()
async def eie_jobs(dut):
    manifest = json.loads(open(os.environ[ENV["manifest"]]).read())
    data = np.load(os.environ[ENV["jobs"]])
    jobs = json.loads(str(data["meta"]))
    lf, sf, of = _fields(manifest, "load__payload"), _fields(manifest, "start__payload"), _fields(manifest, "o__payload")
    ow = of["value"][1]
    clk = dut.clk
    Clock(clk, 10, unit="ns").start()
    edge, ro = RisingEdge(clk), ReadOnly()
    dut.rst.value = 1
    dut.load__valid.value = 0
    dut.start__valid.value = 0
    dut.o__ready.value = 0
    for _ in range(3):
        await edge
    dut.rst.value = 0
    await edge
    results = []
    sim_cycles = 0
    prev_values = None
    for j, job in enumerate(jobs):
        t0 = time.perf_counter()
        rng = np.random.default_rng(job["traffic_seed"])
        cmds = [tuple(int(x) for x in row) for row in data[f"cmds_{j}"]]
        if job.get("chain"):
            act_mask = (1 << ow) - 1
            cmds += [(TARGET_ACT, 0, k, v & act_mask) for k, v in enumerate(prev_values) if v]
        res = {"protocol_errors": 0, "first_protocol_errors": [], "load_wait_cycles": 0, "output_stall_cycles": 0}
        # ---- load with random gaps
        i = 0
        while i < len(cmds):
            offer = rng.random() >= job["gap"]
            dut.load__valid.value = int(offer)
            if offer:
                t, pe, addr, word = cmds[i]
                dut.load__payload.value = _pack(lf, target=t, pe=pe, addr=addr, data=word)
            await ro
            fired = offer and int(dut.load__ready.value)
            if offer and not fired:
                res["load_wait_cycles"] += 1
            await edge
            sim_cycles += 1
            if fired:
                i += 1
        dut.load__valid.value = 0
        # ---- start
        dut.start__valid.value = 1
        dut.start__payload.value = _pack(sf, n_out=job["n_out"], shift=job["shift"], relu=int(job["relu"]),
                                         check=int(job["check"]), n_cols=job["n_cols"])
        while True:
            await ro
            ok = int(dut.start__ready.value)
            await edge
            sim_cycles += 1
            if ok:
                break
        dut.start__valid.value = 0
        t = 1
        broadcasts = 0
        while True:
            await ro
            if int(dut.done.value):
                break
            broadcasts += int(dut.broadcast.value)
            await edge
            sim_cycles += 1
            t += 1
            if t > 10_000_000:
                raise RuntimeError("EIE array never raised done")
        res.update(cycles=t, cycles_port=int(dut.cycles.value), error=int(dut.error.value), broadcasts=broadcasts)
        await edge
        sim_cycles += 1
        # ---- read-out with random back-pressure
        values = []
        held = None
        while len(values) < job["n_out"]:
            take = rng.random() >= job["stall"]
            dut.o__ready.value = int(take)
            await ro
            valid = int(dut.o__valid.value)
            payload = int(dut.o__payload.value) if valid else None
            if held is not None and (not valid or payload != held) and res["protocol_errors"] < 10:
                res["protocol_errors"] += 1
                res["first_protocol_errors"].append(f"o changed while stalled before result {len(values)}")
            if valid and take:
                v = payload & ((1 << ow) - 1)
                values.append(v - (1 << ow) if v >> (ow - 1) else v)
                held = None
            else:
                held = payload if valid else None
                res["output_stall_cycles"] += int(valid)
            await edge
            sim_cycles += 1
        dut.o__ready.value = 1
        extra = 0
        for _ in range(8):
            await ro
            extra += int(dut.o__valid.value)
            busy = int(dut.busy.value)
            await edge
            sim_cycles += 1
        dut.o__ready.value = 0
        if extra or busy:
            res["protocol_errors"] += 1
            res["first_protocol_errors"].append(f"{extra} extra results, busy={busy} after the read-out")
        res["values"] = values
        res["wall_seconds"] = round(time.perf_counter() - t0, 3)
        results.append(res)
        prev_values = values
    with open(os.environ[ENV["results"]], "w") as fh:
        json.dump({"top": manifest["top"], "jobs": results, "sim_cycles": sim_cycles}, fh)
