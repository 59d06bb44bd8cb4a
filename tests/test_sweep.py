"""Sweeps on a real Dask cluster (worker processes, the real numba machine): the rows equal the
same runs done serially; a worker killed mid-run loses and duplicates nothing; a driver killed
mid-sweep is resumed by a rerun that runs only what is missing; bad grids fail before any run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from autoballoon.errors import SpecError
from autoballoon.results.compare import compare
from autoballoon.results.stats import paired_difference, per_run, summarize
from autoballoon.results.sweep import Sample, load_sweep_file, points, sweep
from autoballoon.scenario.document import resolve, to_document
from autoballoon.scenario.parse import parse_scenario

TESTS = Path(__file__).parent

# Tiny machines for speed: their kernels keep no memory of their own (tests/machines.BARE).
TINY = """\
[run]
duration = "600ms"
tick = "100ms"
[host]
memory = "40MiB"
reserved = 0
kernel_memory = 0
thp = "never"
swap = "64MiB"
policy = "qemu-auto"
policy_params = { inflate = "2MiB" }
[[guest]]
name = "vm"
count = 2
memory = "24MiB"
reserved = 0
kernel_memory = 0
thp = "never"
swap = "16MiB"
features = ["stats_vq", "auto_balloon"]
workload = { kind = "phases", loop = true, phases = [
  { length = "20MiB", passes = 1, pattern = "seq", think = "2us" },
  { length = "20MiB", passes = 3, pattern = "rand", think = "2us" } ] }
"""
GRID = {"host.memory": ["36MiB", "48MiB"]}
SUMMARY_FROM = "guest"          # the run's own summary columns start here


def _never(*a, **kw):
    raise AssertionError("a run started")


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=env) as cluster, Client(cluster) as c:
        yield c


def _no_duplicates(df: pd.DataFrame) -> None:
    assert not df.duplicated(["point", "seed", "policy", "guest"]).any()


def test_rows_equal_the_same_runs_done_serially(client, tmp_path):
    df = sweep(TINY, GRID, policies=["static", "qemu-auto"], seeds=[1, 2], out=tmp_path / "s",
               client=client, progress=False)
    assert df.attrs == {"runs": 8, "reused": 0, "failed": 0}
    assert df["error"].isna().all() and len(df) == 8 * 3
    _no_duplicates(df)
    stored = pd.read_parquet(tmp_path / "s")
    assert len(stored) == len(df)
    doc = to_document(parse_scenario(TINY))
    for memory in GRID["host.memory"]:
        for seed in (1, 2):
            sc = resolve(doc, {"host.memory": memory, "run.seed": seed})
            _, serial = compare(sc, ["static", "qemu-auto"], progress=False)
            for label, r in serial.items():
                rows = df[(df["host.memory"] == memory) & (df["seed"] == seed)
                          & (df["policy"] == label)]
                assert (rows["run_id"] == r.run_id).all()
                got = rows.loc[:, SUMMARY_FROM:].drop(columns="error").reset_index(drop=True)
                want = r.summary.drop(columns="policy")
                assert_frame_equal(got, want, check_exact=True)
    # runs went to the cluster's two worker processes, many per process (no process per run)
    pids = {json.loads(p.read_text())["sweep"]["worker_pid"]
            for p in (tmp_path / "s" / "_manifests").glob("*.json")}
    assert pids <= set(client.run(os.getpid).values()) and len(pids) <= 2
    # the sweep made the baseline the model can tell apart: qemu-auto moved balloons
    auto = df[(df["policy"] == "qemu-auto") & (df["guest"] != "host")]
    assert auto["balloon_inflate"].sum() > 0
    # a rerun finds everything done
    again = sweep(TINY, GRID, policies=["static", "qemu-auto"], seeds=[1, 2],
                  out=tmp_path / "s", client=client, progress=False, machine_factory=_never)
    assert again.attrs["reused"] == 8
    assert_frame_equal(again, df)


def test_killed_worker_loses_and_duplicates_nothing(client, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    policies = {"blocking:HoldOnce": {"gate": str(gate)}}
    import threading
    box = {}
    t = threading.Thread(target=lambda: box.update(df=sweep(
        TINY, GRID, policies=policies, seeds=[1, 2, 3], out=tmp_path / "s", client=client,
        progress=False)))
    t.start()
    deadline = time.monotonic() + 120
    while not list(gate.glob("pid-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = int(next(gate.glob("pid-*")).name[4:])
    assert victim in client.run(os.getpid).values()          # a worker, in the middle of a run
    os.kill(victim, signal.SIGKILL)
    (gate / "released").write_text("")
    t.join(timeout=300)
    df = box["df"]
    assert df.attrs == {"runs": 6, "reused": 0, "failed": 0}
    assert df["error"].isna().all() and len(df) == 6 * 3
    _no_duplicates(df)
    stored = pd.read_parquet(tmp_path / "s")
    assert len(stored) == len(df)
    assert_frame_equal(stored.sort_values(["point", "seed", "guest"]).reset_index(drop=True),
                       df.drop(columns="error").sort_values(["point", "seed", "guest"])
                       .reset_index(drop=True))


def test_killed_driver_is_resumed_running_only_what_is_missing(client, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    spec = tmp_path / "sweep.toml"
    (tmp_path / "tiny.toml").write_text(TINY)
    spec.write_text(f"""\
scenario = "tiny.toml"
seeds = [1, 2, 3]
[policies]
"blocking:HoldOnce" = {{ gate = "{gate}", seed = 3 }}
[grid]
"host.memory" = ["48MiB"]
""")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS),
                                                        os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "autoballoon.cli", "sweep", str(spec),
                               "--out", str(out), "--workers", "1", "--quiet"],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        # seeds 1 and 2 finish; seed 3 holds in the worker
        while time.monotonic() < deadline and not (
                list(gate.glob("pid-*")) and len(list(out.glob("run-*.parquet"))) == 2):
            assert driver.poll() is None, driver.stderr.read().decode()
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGKILL)          # the driver and its local cluster
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("run-*.parquet")}
    assert len(before) == 2
    (gate / "released").write_text("")
    df = sweep(**load_sweep_file(spec), out=out, client=client, progress=False)
    assert df.attrs == {"runs": 3, "reused": 2, "failed": 0}
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("run-*.parquet")}
    assert len(after) == 3 and all(after[n] == t for n, t in before.items())   # not rewritten
    stored = pd.read_parquet(out)
    assert len(stored) == 3 * 3 and sorted(set(stored["seed"])) == [1, 2, 3]
    _no_duplicates(stored)


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(client, tmp_path):
    df = sweep(TINY, policies={"blocking:FailOnSeed": {"seed": 2}}, seeds=[1, 2, 3],
               out=tmp_path / "s", client=client, progress=False)
    assert df.attrs["failed"] == 1
    bad = df[df["error"].notna()]
    assert list(bad["seed"]) == [2] and "deliberate failure at seed 2" in bad["error"].iloc[0]
    assert sorted(set(pd.read_parquet(tmp_path / "s")["seed"])) == [1, 3]
    assert len(list((tmp_path / "s" / "_errors").glob("*.json"))) == 1


# --- before any run: the plan ------------------------------------------------------------

@pytest.mark.parametrize("grid, message", [
    ({"host.memroy": ["1GiB"]}, r"host\.memroy = '1GiB': host\.memroy: unknown key"),
    ({"guest.vm.swappiness": [0, 300]},
     r"guest\.vm\.swappiness = 300: guest\[0\]\.swappiness: expected an integer in \[0, 200\]"),
    ({"guest.nope.memory": ["32MiB"]}, r"guest\.nope\.memory.*no \[\[guest\]\] named 'nope'"),
    ({"host.memory": []}, r"grid\.host\.memory: expected a non-empty list"),
    ({"run.duration": ["1s", 5]}, r"run\.duration = 5: run\.duration: expected a duration"),
])
def test_bad_grid_fails_before_any_run(tmp_path, grid, message):
    with pytest.raises(SpecError, match=message):
        sweep(TINY, grid, out=tmp_path / "s", machine_factory=_never, progress=False)
    assert not (tmp_path / "s").exists()


def test_bad_policy_parameter_fails_before_any_run(tmp_path):
    with pytest.raises(SpecError, match=r"policies\.none\.inflate: unknown parameter"):
        sweep(TINY, policies={"none": {"inflate": "4MiB"}}, out=tmp_path / "s",
              machine_factory=_never)


def test_a_policy_instance_is_refused(tmp_path):
    from autoballoon.control.policies import POLICIES
    instance = POLICIES["none"](parse_scenario(TINY))
    with pytest.raises(SpecError, match=r"policies\.none: a sweep needs a policy name or class"):
        sweep(TINY, policies=[instance], out=tmp_path / "s", machine_factory=_never)


def test_points_grid_zip_and_sample():
    pts = points({"a": [1, 2], "b": ["x", "y"]}, zip={"c": [1, 2, 3], "d": [4, 5, 6]})
    assert len(pts) == 12 and pts[0] == {"a": 1, "b": "x", "c": 1, "d": 4}
    assert {(p["c"], p["d"]) for p in pts} == {(1, 4), (2, 5), (3, 6)}
    with pytest.raises(SpecError, match=r"zip: expected lists of one length"):
        points(zip={"c": [1, 2], "d": [1]})
    s = Sample({"host.memory": ["32MiB", "64MiB"], "guest.vm.swappiness": [0, 100],
                "run.duration": ["1s", "2s"]}, n=10, seed=3)
    pts = s.points()
    assert pts == s.points()                                   # seeded
    mem = np.array([p["host.memory"] for p in pts])
    assert ((mem >= 32 * 2**20) & (mem <= 64 * 2**20) & (mem % 4096 == 0)).all()
    # Latin hypercube: one point in each tenth of every range
    assert sorted((mem - 32 * 2**20) * 10 // (32 * 2**20)) == list(range(10))
    assert sorted(p["guest.vm.swappiness"] // 10 for p in pts) == list(range(10))
    assert all(p["run.duration"].endswith("ns") for p in pts)
    with pytest.raises(SpecError, match=r"sample\.ranges\.x: expected two numbers"):
        Sample({"x": [1, "2MiB"]}, n=2).points()


def test_sweep_file(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    f = tmp_path / "s.toml"
    f.write_text('scenario = "tiny.toml"\nseeds = 3\npolicies = ["static", "qemu-auto"]\n'
                 '[set]\n"run.duration" = "300ms"\n'
                 '[grid]\nhost.memory = ["36MiB", "48MiB"]\n'
                 '"guest.vm.workload.phases[0].length" = ["8MiB"]\n'
                 '[sample]\nn = 2\nranges = { "guest.vm.swappiness" = [0, 100] }\n')
    args = load_sweep_file(f)
    assert args["seeds"] == [1, 2, 3] and args["set"] == {"run.duration": "300ms"}
    assert args["grid"] == {"host.memory": ["36MiB", "48MiB"],
                            "guest.vm.workload.phases[0].length": ["8MiB"]}
    assert args["sample"].n == 2
    f.write_text('scenario = "tiny.toml"\ngird = {}\n')
    with pytest.raises(SpecError, match=r"s\.toml: sweep\.gird: unknown key"):
        load_sweep_file(f)
    f.write_text('scenario = "missing.toml"\n')
    with pytest.raises(SpecError, match=r"missing\.toml: cannot read scenario file"):
        load_sweep_file(f)


# --- statistics ------------------------------------------------------------------------------

def _frame():
    """A sweep frame by hand: two points, three seeds, qemu-auto and its baseline."""
    rows = []
    for mem, base in (("512MiB", 100), ("640MiB", 10)):
        for seed, noise in ((1, 0), (2, 4), (3, 8)):
            for policy, of, extra in (("qemu-auto", None, -20), ("static", "qemu-auto", 0)):
                for guest, v in (("vm-0", 1), ("host", base + noise + extra)):
                    rows.append({"point": mem, "host.memory": mem, "seed": seed,
                                 "policy": policy, "baseline_of": of, "run_id": "x",
                                 "guest": guest, "pswpout": v, "error": None})
    return pd.DataFrame(rows)


def test_summarize_mean_and_ci_over_seeds():
    s = summarize(_frame(), metrics=["pswpout"])
    row = s[(s["host.memory"] == "512MiB") & (s["policy"] == "static")].iloc[0]
    assert row["n"] == 3 and row["mean"] == 104
    assert 100 <= row["ci_low"] < 104 < row["ci_high"] <= 108
    assert_frame_equal(s, summarize(_frame(), metrics=["pswpout"]))      # seeded bootstrap


def test_summarize_paired_difference_removes_the_shared_seed_noise():
    s = summarize(_frame(), metrics=["pswpout"], paired=True)
    assert list(s["policy"]) == ["qemu-auto − static"] * 2
    assert (s["mean"] == -20).all() and (s["ci_low"] == -20).all() and (s["ci_high"] == -20).all()
    runs = per_run(_frame(), "guests", ["pswpout"])
    assert (runs["pswpout"] == 1).all()
    d = paired_difference(per_run(_frame(), "host", ["pswpout"]), ["pswpout"], "qemu-auto",
                          "static")
    assert len(d) == 6


def test_cli_sweep_on_a_running_scheduler(client, tmp_path, capsys):
    from autoballoon import cli
    (tmp_path / "tiny.toml").write_text(TINY)
    spec = tmp_path / "s.toml"
    spec.write_text('scenario = "tiny.toml"\nseeds = [1, 2]\n[grid]\n"run.duration" = ["300ms"]\n')
    out = tmp_path / "out"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--quiet", "--scheduler",
                     client.scheduler.address]) == 0
    assert "2 runs (0 already done, 0 failed)" in capsys.readouterr().out
    stored = pd.read_parquet(out)
    assert sorted(set(stored["seed"])) == [1, 2] and set(stored["run.duration"]) == {"300ms"}
    assert client.run(os.getpid)                    # the command closed its client, not ours
    assert cli.main(["sweep", str(spec), "--out", str(out), "--quiet", "--scheduler",
                     client.scheduler.address]) == 0
    assert "2 runs (2 already done, 0 failed)" in capsys.readouterr().out
