"""`tensorforge numerics dot`: runs the golden comparison, prints a table, writes a PNG; bad input -> exit 2."""

import json

from tensorforge.gen.cli import main


def test_numerics_dot_json_and_png(tmp_path, capsys):
    status = main(["numerics", "dot", "--k", "4", "--semantics", "volta", "--samples", "2000",
                   "--seed", "3", "-o", str(tmp_path), "--json"])
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    stats = result["stats"]
    assert stats["n"] == 2000
    # volta truncates at alignment and at the output: some results must differ from exact,
    # and the differing ones lean toward zero (truncation), never away from it on average.
    assert 0 < stats["n_differ"] < 2000
    assert stats["frac_toward_zero"] > 0.5
    png = tmp_path / result["png"].split("/")[-1]
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numerics_exact_vs_exact_differs_nowhere(tmp_path, capsys):
    assert main(["numerics", "dot", "--semantics", "exact", "--vs", "exact", "--samples", "500",
                 "-o", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["n_differ"] == 0


def test_numerics_bad_semantics_is_one_line_exit_2(tmp_path, capsys):
    assert main(["numerics", "dot", "--semantics", "bogus", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "volta" in err and "'bogus'" in err
    assert not any(tmp_path.iterdir())
