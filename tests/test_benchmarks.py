"""The benchmark scripts run and report what they claim to measure (timings are not checked here:
speed is judged by running the benchmarks, never by timed unit tests)."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("autograd")


def test_perop_benchmark_reports_every_candidate(tmp_path, capsys):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import perop

    result = perop.main(["--ops", "20", "--repeats", "2", "--json", str(tmp_path / "perop.json")])
    names = {"raw", "record", "grad", "grad, kn.debug(nan=True)", "torch eager", "HIPS autograd"}
    assert set(result["us_per_op"]) == names
    assert all(us > 0 for us in result["us_per_op"].values())
    assert json.loads((tmp_path / "perop.json").read_text())["ops"] == 20
    printed = capsys.readouterr().out
    assert all(f"| {name}" in printed for name in names)
