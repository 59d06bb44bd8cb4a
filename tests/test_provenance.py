"""Provenance that never lies: a saved run's manifest (or its scenario.toml) reproduces its
numbers bit for bit, whatever was changed in code; every file of a run carries its id; outputs
of another run are not overwritten unless asked; interrupted compares resume."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pandas as pd
import pytest
from fakes import FakeMachine, RecordingPolicy, Spy
from pandas.testing import assert_frame_equal
from test_sweep import TINY

from autoballoon import cli
from autoballoon.control.policies import POLICIES
from autoballoon.errors import SpecError
from autoballoon.results import compare as compare_mod
from autoballoon.results import run as results_run
from autoballoon.results.compare import compare
from autoballoon.results.run import (
    OutputError, clean_temporaries, load, parquet_run_id, save, simulate, with_overrides)
from autoballoon.scenario.parse import parse_scenario
from autoballoon.units import parse_size

MIB = 2**20


def _same(a, b):
    assert_frame_equal(a.summary, b.summary, check_exact=True)
    assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)


def test_manifest_reproduces_a_run_changed_in_code(tmp_path):
    """The real machine: a run whose scenario was changed in code (overrides, a replica
    replaced) is recorded as it ran, and `autoballoon run` of its manifest.json or of its
    scenario.toml gives the same numbers."""
    s = with_overrides(parse_scenario(TINY), {"run.duration": "400ms", "host.memory": "36MiB",
                                              "run.seed": 4})
    guests = list(s.guests)
    guests[1] = dataclasses.replace(guests[1], target=20 * MIB, swappiness=10)
    s = dataclasses.replace(s, guests=tuple(guests))
    first = simulate(s, "qemu-auto", progress=False)
    save(first, tmp_path / "a")
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["scenario"]["run"]["duration"] == "400ms" and m["scenario"]["host"]["memory"] == \
        "36MiB" and m["seed"] == 4 and m["scenario"]["run"]["seed"] == 4
    assert [g["name"] for g in m["scenario"]["guest"]] == ["vm-0", "vm-1"]
    assert m["scenario"]["guest"][1]["swappiness"] == 10
    assert m["scenario"]["host"]["policy_params"] == {"inflate": "2MiB"}
    for source in ("manifest.json", "scenario.toml"):
        out = tmp_path / source.replace(".", "-")
        assert cli.main(["run", str(tmp_path / "a" / source), "--out", str(out), "--quiet"]) == 0
        again = load(out)
        _same(again, first)
        assert again.run_id == first.run_id
    # and a different seed is a different run, with different numbers
    assert cli.main(["run", str(tmp_path / "a" / "manifest.json"), "--seed", "5", "--out",
                     str(tmp_path / "s5"), "--quiet"]) == 0
    other = load(tmp_path / "s5")
    assert other.run_id != first.run_id and other.manifest["seed"] == 5
    assert not other.timeseries["pgfault"].equals(first.timeseries["pgfault"])


def test_every_file_of_a_run_carries_its_id(tmp_path):
    r = simulate(parse_scenario(TINY), progress=False, machine_factory=FakeMachine)
    d = save(r, tmp_path / "r")
    assert parquet_run_id(d / "summary.parquet") == r.run_id
    assert parquet_run_id(d / "timeseries.parquet") == r.run_id
    assert r.run_id in (d / "scenario.toml").read_text().splitlines()[0]
    # a file of another run put beside is found out
    other = simulate(with_overrides(parse_scenario(TINY), {"run.seed": 9}), progress=False,
                     machine_factory=FakeMachine)
    save(other, tmp_path / "o")
    (tmp_path / "o" / "timeseries.parquet").replace(d / "timeseries.parquet")
    with pytest.raises(OutputError, match=f"belongs to run {other.run_id}"):
        load(d)


def test_run_refuses_a_directory_holding_another_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results_run, "_default_machine", FakeMachine)
    path = tmp_path / "s.toml"
    path.write_text(TINY)
    out = str(tmp_path / "out")
    assert cli.main(["run", str(path), "--out", out, "--quiet"]) == 0
    first = load(out).run_id
    assert cli.main(["run", str(path), "--out", out, "--quiet"]) == 0        # the same run
    assert cli.main(["run", str(path), "--out", out, "--seed", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"holds another run ({first}" in err and "--force" in err
    assert load(out).run_id == first
    assert cli.main(["run", str(path), "--out", out, "--seed", "2", "--force", "--quiet"]) == 0
    assert load(out).manifest["seed"] == 2


def test_run_set_options(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results_run, "_default_machine", FakeMachine)
    path = tmp_path / "s.toml"
    path.write_text(TINY)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet", "--set",
                     "host.memory=44MiB", "--set", "guest.vm.swappiness=0"]) == 0
    m = load(tmp_path / "o").manifest
    assert m["scenario"]["host"]["memory"] == "44MiB"
    assert m["scenario"]["guest"][0]["swappiness"] == 0 and m["scenario"]["guest"][0]["count"] == 2
    assert cli.main(["run", str(path), "--out", str(tmp_path / "p"), "--set",
                     "guest.vm.swapiness=0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autoballoon: error: {path}: guest.vm.swapiness = 0: guest[0]."
                          f"swapiness: unknown key (did you mean 'swappiness'?")
    assert err.count("\n") == 1


def test_a_manifest_whose_trace_changed_is_refused(tmp_path, monkeypatch):
    from test_document import trace_scenario
    monkeypatch.setattr(results_run, "_default_machine", FakeMachine)
    s = trace_scenario(tmp_path)
    r = simulate(s, progress=False, machine_factory=FakeMachine)
    save(r, tmp_path / "r")
    trace = tmp_path / "t.parquet"
    assert r.manifest["traces"][str(trace)]["bytes"] == trace.stat().st_size
    trace.write_bytes(trace.read_bytes() + b"x")
    with pytest.raises(SpecError, match=r"t\.parquet changed since the run \(sha256"):
        results_run.load_run_input(tmp_path / "r" / "manifest.json")
    trace.unlink()
    with pytest.raises(SpecError, match=r"moved since the run"):
        results_run.load_run_input(tmp_path / "r")


def test_an_instance_built_in_code_is_not_passed_off_as_reproducible(tmp_path):
    s = parse_scenario(TINY)
    r = simulate(s, POLICIES["qemu-auto"](s, inflate="8MiB"), progress=False,
                 machine_factory=FakeMachine)
    assert r.manifest["policy"]["params"] is None
    save(r, tmp_path / "r")
    with pytest.raises(SpecError, match=r"built in code, so its parameters are unknown"):
        results_run.load_run_input(tmp_path / "r")


def test_killed_saves_leave_temporaries_that_the_next_save_removes(tmp_path):
    r = simulate(parse_scenario(TINY), progress=False, machine_factory=FakeMachine)
    d = save(r, tmp_path / "r")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = d / f".summary.parquet.tmp-{dead}"
    live = d / ".summary.parquet.tmp-1"                 # pid 1 runs as long as the machine
    stale.write_bytes(b"PAR1 half")
    live.write_bytes(b"PAR1 half")
    save(r, d)
    assert not stale.exists() and live.exists()
    assert clean_temporaries(d) == []


# --- compare -------------------------------------------------------------------------------

def _scenario(seed=1):
    return with_overrides(parse_scenario(TINY.replace('"600ms"', '"1s"').replace(
        '"40MiB"', '"300MiB"').replace('"24MiB"', '"256MiB"').replace('"20MiB"', '"150MiB"')),
        {"run.seed": seed})


def test_per_policy_parameters_classes_and_instances():
    s = _scenario()
    table, res = compare(s, {"none": {}, "static": {}, "qemu-auto": {"inflate": "32MiB"}},
                         progress=False, machine_factory=FakeMachine)
    assert res["qemu-auto"].manifest["policy"]["params"] == {"inflate": "32MiB"}
    assert res["qemu-auto"].manifest["scenario"]["host"]["policy_params"] == {"inflate": "32MiB"}
    assert "policy_params" not in res["none"].manifest["scenario"]["host"]
    assert res["static"].manifest["policy"]["params"]["targets"]   # the equal-inflate targets
    with pytest.raises(SpecError, match=r"^policies\.none\.inflate: unknown parameter for "
                                        r"policy 'none'"):
        compare(s, {"none": {"inflate": "4MiB"}}, machine_factory=FakeMachine)
    with pytest.raises(SpecError, match=r"policies\.qemu-auto: .*inflate: expected a size > 0"):
        compare(s, {"qemu-auto": {"inflate": 0}}, machine_factory=FakeMachine)
    # classes and an instance; the scenario's params go to the scenario's own policy only
    spy = Spy()
    table, res = compare(s, [POLICIES["none"], "fakes:RecordingPolicy",
                             POLICIES["qemu-auto"](s, inflate="4MiB")], progress=False,
                         machine_factory=spy)
    assert list(res) == ["none", "fakes:RecordingPolicy", "qemu-auto"]
    assert res["fakes:RecordingPolicy"].manifest["policy"]["params"] == {}


def test_each_automatic_policy_gets_its_own_baseline():
    s = _scenario()
    table, res = compare(s, ["static", "qemu-auto", RecordingPolicy], progress=False,
                         machine_factory=FakeMachine)
    assert list(table.index) == ["static@qemu-auto", "static@fakes:RecordingPolicy",
                                 "qemu-auto", "fakes:RecordingPolicy"]
    assert "under qemu-auto" in table.loc["static@qemu-auto", "note"]
    # RecordingPolicy never inflates: its baseline has no balloon; qemu-auto's has one
    assert table.loc["static@fakes:RecordingPolicy", "mean_balloon_mib"] == 0
    assert table.loc["static@qemu-auto", "mean_balloon_mib"] > 0
    # a policy says it is a baseline; the name does not
    assert not POLICIES["static"].automatic and not POLICIES["none"].automatic
    assert POLICIES["qemu-auto"].automatic


class Interrupt(BaseException):
    pass


def _interrupt_save_of(monkeypatch, label):
    real = compare_mod.save

    def save_or_die(results, directory, force=False):
        if directory.name == label:
            real(results, directory, force)                 # written, then ...
            (directory / "manifest.json").unlink()          # ... killed before the manifest
            raise Interrupt
        return real(results, directory, force)
    monkeypatch.setattr(compare_mod, "save", save_or_die)


def test_interrupted_compare_resumes_with_the_finished_runs(tmp_path, monkeypatch):
    s = _scenario()
    _interrupt_save_of(monkeypatch, "static")
    spy = Spy()
    with pytest.raises(Interrupt):
        compare(s, progress=False, out=tmp_path, machine_factory=spy)
    assert (tmp_path / "qemu-auto" / "manifest.json").is_file()
    assert not (tmp_path / "compare.csv").exists()
    monkeypatch.undo()
    built = []
    table, res = compare(s, progress=False, out=tmp_path,
                         machine_factory=lambda sc, debug=False: built.append(sc) or
                         FakeMachine(sc))
    assert len(built) == 1                       # only static ran again (none ran before it)
    csv = pd.read_csv(tmp_path / "compare.csv", index_col="policy")
    meta = json.loads((tmp_path / "compare.json").read_text())
    assert (csv["compare_id"] == meta["compare_id"]).all()
    for label, r in res.items():
        assert csv.loc[label, "run_id"] == load(tmp_path / label).run_id == r.run_id
    fresh, _ = compare(s, progress=False, machine_factory=FakeMachine)
    assert_frame_equal(table, fresh)


def test_two_compares_in_one_directory(tmp_path, monkeypatch, capsys):
    """Seed 1, then seed 5 killed while saving: no table ever stands beside runs it does not
    describe, and no directory mixes the two."""
    monkeypatch.setattr(results_run, "_default_machine", FakeMachine)
    path = tmp_path / "s.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    assert cli.main(["compare", str(path), "--out", str(out), "--quiet"]) == 0
    assert cli.main(["compare", str(path), "--out", str(out), "--seed", "5", "--quiet"]) == 2
    assert "holds another comparison" in capsys.readouterr().err
    _interrupt_save_of(monkeypatch, "static")
    with pytest.raises(Interrupt):
        cli.main(["compare", str(path), "--out", str(out), "--seed", "5", "--force", "--quiet"])
    assert not (out / "compare.csv").exists() and not (out / "compare.png").exists()
    assert json.loads((out / "compare.json").read_text())["seed"] == 5
    for d in out.iterdir():
        if (d / "manifest.json").is_file():
            assert load(d).manifest["seed"] == 5
    monkeypatch.setattr(compare_mod, "save", results_run.save)
    assert cli.main(["compare", str(path), "--out", str(out), "--seed", "5", "--quiet"]) == 0
    csv = pd.read_csv(out / "compare.csv", index_col="policy")
    for label in csv.index:
        r = load(out / label)
        assert r.manifest["seed"] == 5 and csv.loc[label, "run_id"] == r.run_id


def test_a_directory_of_unknown_results_is_not_overwritten(tmp_path):
    s = _scenario()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.parquet").write_bytes(b"x")
    with pytest.raises(OutputError, match="results of another run"):
        compare(s, ["none"], out=tmp_path, machine_factory=FakeMachine)
    compare(s, ["none"], out=tmp_path, force=True, progress=False, machine_factory=FakeMachine)
    assert not (tmp_path / "old").exists() and load(tmp_path / "none").policy == "none"


def test_every_run_of_a_comparison_is_reproducible_from_its_manifest(tmp_path):
    """The baselines' scenarios are changed in code (targets, no auto_balloon): their manifests
    say so, and running them again gives the same numbers."""
    s = _scenario()
    _, res = compare(s, progress=False, out=tmp_path, machine_factory=FakeMachine)
    static = res["static"].manifest["scenario"]
    assert all("auto_balloon" not in g["features"] for g in static["guest"])
    assert static["host"]["policy"] == "static"
    targets = static["host"]["policy_params"]["targets"]
    assert sorted(targets) == ["vm-0", "vm-1"] and min(targets.values()) < 256 * MIB
    for g in static["guest"]:            # one table with count while the replicas are alike
        names = [f"{g['name']}-{i}" for i in range(g["count"])] if "count" in g else [g["name"]]
        assert all(parse_size(g["target"]) == targets[n] for n in names)
    for label, r in res.items():
        again = simulate(results_run.load_run_input(tmp_path / label), progress=False,
                         machine_factory=FakeMachine)
        _same(again, r)
        assert again.run_id == r.run_id
