"""Command-line errors: one line naming what is allowed, exit status 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tensorforge.gen.cli import main

CASES = [
    # (argv, exact message or prefix ending in "...")
    (["generate", "nosuch"], "unknown generator 'nosuch'; allowed: ..."),
    (["generate", "fma", "--bogus", "3"],
     "unknown argument '--bogus' for generator 'fma'; parameters: --in-format, --acc-format, --rounding, "
     "--stages (see `tensorforge list fma`)"),
    (["generate", "fma", "--stages", "99"], "--stages must be an integer between 0 and 9, not 99"),
    (["generate", "fma", "--stages", "-1"], "--stages must be an integer between 0 and 9, not -1"),
    (["generate", "fma", "--stages", "two"], "--stages must be an integer between 0 and 9, not 'two'"),
    (["generate", "fma", "--in-format", "e99m3"],
     "--in-format must be a float format (eXmY, fp32, fp16, bf16, tf32, fp8e4m3, fp8e5m2), not 'e99m3'"),
    (["generate", "fma", "--rounding", "up"], "--rounding must be one of rne, rtz, rdn, rup, rmm, not 'up'"),
    (["generate", "fma", "--in-format", "fp32", "--acc-format", "fp16"],
     "acc_format e5m10 must have at least the exponent and fraction bits of in_format e8m23 "
     "(exp_bits >= 8, man_bits >= 23)"),
    (["generate", "fma", "--in-format", "fp16", "--acc-format", "bf16"],
     "acc_format e8m7 must have at least the exponent and fraction bits of in_format e5m10 "
     "(exp_bits >= 5, man_bits >= 10)"),
    (["generate", "mul", "--fmt", "i8"],
     "--fmt must be a float format (eXmY, fp32, fp16, bf16, tf32, fp8e4m3, fp8e5m2), not 'i8'"),
    (["generate", "add", "--stages", "7"], "--stages must be an integer between 0 and 6, not 7"),
    (["sim", "nosuch"], "`sim` does not support generator 'nosuch'; allowed: ..."),
    (["sim", "fma", "--stages", "10"], "--stages must be an integer between 0 and 9, not 10"),
    (["sim", "fma", "--vectors", "0"], "argument --vectors: must be a positive integer, not '0'"),
    (["sim", "fma", "--gap", "1.5"], "argument --gap: must be a number >= 0 and < 1, not '1.5'"),
    (["sim", "fma", "--stall", "1"], "argument --stall: must be a number >= 0 and < 1, not '1'"),
    (["sim", "fma", "--seed", "-3"], "argument --seed: must be a non-negative integer, not '-3'"),
    (["demo", "--vectors", "many"], "argument --vectors: must be a positive integer, not 'many'"),
    (["demo", "--stages", "3"], "unrecognized arguments: --stages 3"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_command_line_exits_2_with_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    extra = ["-o", str(out_dir)] if argv[0] == "generate" else []
    status = main(argv + extra)
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    prefix = "tensorforge: error: "
    assert lines[0].startswith(prefix)
    text = lines[0][len(prefix):]
    if message.endswith("..."):
        assert text.startswith(message[:-3])
    else:
        assert text == message
    assert list(tmp_path.iterdir()) == [], "nothing may be written on a command-line error"


@pytest.mark.parametrize("command", ["generate", "sim"])
def test_unknown_generator_lists_the_allowed_ones(command, tmp_path, monkeypatch, capsys):
    from tensorforge.gen import registry
    from tensorforge.sim import models

    monkeypatch.chdir(tmp_path)
    assert main([command, "nosuch"]) == 2
    allowed = capsys.readouterr().err.strip().rsplit("allowed: ", 1)[1].split(", ")
    assert allowed == sorted(allowed)
    if command == "generate":
        assert allowed == sorted(registry.generators())
    else:       # every generator with a stream model is simulable (others may have their own bench)
        assert set(allowed) <= set(registry.generators())
        assert {g for g in registry.generators() if g in models.models()} <= set(allowed)
    assert {"fma", "mul", "add"} <= set(allowed)


def test_console_script_exit_status(tmp_path):
    exe = Path(sys.executable).with_name("tensorforge")
    proc = subprocess.run([str(exe), "generate", "fma", "--stages", "99", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "tensorforge: error: --stages must be an integer between 0 and 9, not 99\n"
    assert list(tmp_path.iterdir()) == []
