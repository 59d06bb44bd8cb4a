"""Results: summary/timeseries content, save/load round trip, atomic writes, the manifest."""
import datetime as dt
import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from fakes import FakeMachine
from pandas.testing import assert_frame_equal

import autoballoon
from autoballoon.control.recorder import time_mean
from autoballoon.results import run as results_mod
from autoballoon.results.run import load, save, simulate
from autoballoon.scenario.parse import parse_scenario

MIB = 2**20

TEXT = textwrap.dedent("""\
    [run]
    duration = "1s"
    tick = "100ms"
    seed = 5
    [host]
    memory = "300MiB"
    policy = "qemu-auto"
    policy_params = { inflate = "8MiB" }
    [[guest]]
    name = "vm"
    count = 2
    memory = "256MiB"
    target = "200MiB"
    features = ["stats_vq", "auto_balloon"]
    workload = { kind = "phases", phases = [ { length = "150MiB", duration = "1s" } ] }
    """)

SUMMARY_COLUMNS = ["guest", "policy", "pswpin", "pswpout", "pgmajfault", "pgfault", "allocstall",
                   "oom_kill", "pgscan_kswapd", "pgscan_direct", "balloon_inflate",
                   "balloon_deflate", "stall_seconds", "progress", "final_actual_mib"]
TIMESERIES_COLUMNS = ["t_ns", "time_s", "guest", "target", "actual", "balloon", "free",
                      "available", "used", "anon", "file", "swap_used", "pressure", "pswpin",
                      "pswpout", "pgmajfault", "stall_ns", "progress"]


@pytest.fixture(scope="module")
def res():
    return simulate(parse_scenario(TEXT), progress=False, machine_factory=FakeMachine)


def test_summary_rows_and_columns(res):
    s = res.summary
    assert list(s["guest"]) == ["vm-0", "vm-1", "host"]
    assert set(SUMMARY_COLUMNS) <= set(s.columns)
    assert (s["policy"] == "qemu-auto").all() and res.policy == "qemu-auto"
    vm = s.set_index("guest").loc["vm-0"]
    assert vm["final_actual_mib"] == res.timeseries.query("guest == 'vm-0'")["actual"].iloc[-1] / MIB
    assert vm["final_actual_mib"] < 256                    # the initial target took effect
    assert pd.isna(s.set_index("guest").loc["host", "stall_seconds"])
    assert s["pswpin"].dtype == "Int64" and s["stall_seconds"].dtype == "float64"


def test_timeseries_columns(res):
    ts = res.timeseries
    assert set(TIMESERIES_COLUMNS) <= set(ts.columns)
    vm = ts[ts["guest"] == "vm-0"]
    assert (vm["actual"] + vm["balloon"] == 256 * MIB).all()
    assert vm["target"].iloc[0] == 200 * MIB
    host = ts[ts["guest"] == "host"]
    assert (host["balloon"].to_numpy() ==
            ts[ts["guest"] != "host"].groupby("t_ns")["balloon"].sum().to_numpy()).all()


def test_time_mean_weights_by_tick_length():
    rows = pd.DataFrame({"t_ns": [0, 100, 200, 250], "v": [9.0, 1.0, 2.0, 4.0]})
    # samples stand for the tick ending at them: (1*100 + 2*100 + 4*50) / 250
    assert time_mean(rows, "v") == pytest.approx(500 / 250)


def test_save_load_round_trip(res, tmp_path):
    out = save(res, tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "scenario.toml",
                                                     "summary.parquet", "timeseries.parquet"]
    back = load(out)
    assert_frame_equal(back.summary, res.summary)
    assert_frame_equal(back.timeseries, res.timeseries)
    assert back.manifest == json.loads(json.dumps(res.manifest))


def test_manifest_content(res, tmp_path):
    m = json.loads((save(res, tmp_path / "run") / "manifest.json").read_text())
    assert m["scenario"]["host"]["policy_params"] == {"inflate": "8MiB"}
    assert m["scenario"]["guest"][0]["count"] == 2
    assert m["seed"] == 5
    assert m["package_version"] == autoballoon.__version__
    assert "git_revision" in m                      # None outside a git checkout with commits
    assert m["policy"] == {"name": "qemu-auto", "ref": "qemu-auto", "params": {"inflate": "8MiB"}}
    assert m["guests"] == ["vm-0", "vm-1"]
    assert m["initial_targets"] == {"vm-0": 200 * MIB, "vm-1": 200 * MIB}
    created = dt.datetime.fromisoformat(m["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 600


def test_git_revision_reported_in_a_checkout(monkeypatch):
    calls = []

    class Done:
        def __init__(self, out, rc=0):
            self.stdout, self.returncode = out, rc

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return Done("abc123\n") if "rev-parse" in cmd else Done(" M x.py\n")

    monkeypatch.setattr(results_mod.subprocess, "run", fake_run)
    results_mod.git_revision.cache_clear()
    try:
        assert results_mod.git_revision() == "abc123-dirty"
    finally:
        results_mod.git_revision.cache_clear()
    # both questions go to the package's own checkout; untracked files do not make it dirty
    repo = str(Path(autoballoon.__file__).resolve().parent.parent)
    assert calls == [["git", "-C", repo, "rev-parse", "HEAD"],
                     ["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"]]


def test_interrupted_save_leaves_no_partial_files(res, tmp_path, monkeypatch):
    out = save(res, tmp_path / "run")
    before = (out / "summary.parquet").read_bytes()

    def boom(table, path, **kw):
        with open(path, "wb") as f:          # a half-written file ...
            f.write(b"PAR1 partial")
        raise OSError("disk full")

    import pyarrow.parquet as pq
    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        save(res, out)
    # ... never replaces the good one, is cleaned up, and the directory no longer claims to be
    # complete (the manifest goes first and is written last)
    assert (out / "summary.parquet").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["scenario.toml", "summary.parquet",
                                                     "timeseries.parquet"]
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        load(out)


def test_atomic_write_uses_replace(tmp_path, monkeypatch):
    replaced = []
    real = results_mod.os.replace
    monkeypatch.setattr(results_mod.os, "replace",
                        lambda a, b: (replaced.append((str(a), str(b))), real(a, b)))
    results_mod._atomic(tmp_path / "x.txt", lambda p: p.write_text("hello"))
    assert (tmp_path / "x.txt").read_text() == "hello"
    assert replaced == [(str(tmp_path / f".x.txt.tmp-{results_mod.os.getpid()}"),
                         str(tmp_path / "x.txt"))]
