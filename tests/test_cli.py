"""The command line, with the FakeMachine in place of the numba machine."""
import re

import pandas as pd
import pytest
from fakes import FakeMachine

from autoballoon import cli
from autoballoon.results import run as results_run
from autoballoon.results.run import load

SCENARIO = """\
[run]
duration = "500ms"
[host]
memory = "300MiB"
policy = "qemu-auto"
[[guest]]
name = "vm"
count = 2
memory = "256MiB"
features = ["stats_vq", "auto_balloon"]
workload = { kind = "phases", phases = [ { length = "150MiB", duration = "1s" } ] }
"""


@pytest.fixture(autouse=True)
def fake_machine(monkeypatch):
    monkeypatch.setattr(results_run, "_default_machine", FakeMachine)


def test_run_writes_results(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    r = load(tmp_path / "out")
    assert r.policy == "qemu-auto" and r.guests == ["vm-0", "vm-1"]
    assert capsys.readouterr().out == ""
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o2"), "--policy", "none"]) == 0
    assert load(tmp_path / "o2").policy == "none"
    assert "vm-0" in capsys.readouterr().out


def test_compare_default_scenario(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "default.toml" in printed and "equal-inflate" in printed
    table = pd.read_csv(out / "compare.csv", index_col="policy")
    assert list(table.index) == ["none", "static", "qemu-auto"]
    assert (out / "compare.png").stat().st_size > 10_000
    for name in ("none", "static", "qemu-auto"):
        assert load(out / name).policy == name


@pytest.mark.parametrize("text, message", [
    (SCENARIO.replace('memory = "256MiB"', 'memory = "0"'), r"s\.toml:9: guest\[0\]\.memory"),
    (SCENARIO.replace("count = 2", "cuont = 2"), r"s\.toml:8: guest\[0\]\.cuont: unknown key"),
])
def test_bad_scenario_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_unknown_policy_on_command_line(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    assert cli.main(["compare", str(path), "--policies", "none,magic", "--out",
                     str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--policies: expected one of" in err and "magic" in err


def test_missing_scenario_file(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]) == 2
    assert "cannot read scenario file" in capsys.readouterr().err


def test_bench_arguments_are_passed_through(monkeypatch):
    import sys
    import types
    seen = []
    monkeypatch.setitem(sys.modules, "autoballoon.bench",
                        types.SimpleNamespace(main=lambda argv: seen.append(argv) or 0))
    assert cli.main(["bench", "--json"]) == 0
    assert seen == [["--json"]]


def test_bad_trace_file_is_one_line_and_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not a parquet file\n")
    assert cli.main(["trace", "info", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(r"autoballoon: error: .*junk\.parquet: not a readable Parquet trace file",
                     err), err
