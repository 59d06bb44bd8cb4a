"""The RFC v2 table: per-run metrics from a sweep frame, the side-by-side table, the
demand-matched host."""
import numpy as np
import pandas as pd
import pytest

from autoballoon import load_scenario
from autoballoon.results.rfc import (
    RFC_V2, baseline_label, boot_backed_mib, demand_matched_host, per_run_metrics, rfc_stats,
    side_by_side)
from autoballoon.scenario.bundled import bundled_path


def frame(runs):
    """A sweep-like frame: per run (policy, seed, host swap-outs, swap-ins, peak MiB, the
    guests' build times, their final actual MiB)."""
    rows = []
    for k, (policy, seed, out, inn, peak, builds, actual) in enumerate(runs):
        run = dict(point="p", seed=seed, policy=policy, baseline_of=None, run_id=f"r{k}",
                   error=None)
        rows.append({**run, "guest": "host", "pswpout": out, "pswpin": inn,
                     "max_used_mib": peak, "elapsed_s": np.nan, "final_actual_mib": np.nan})
        for g, (b, a) in enumerate(zip(builds, actual)):
            rows.append({**run, "guest": f"vm-{g}", "pswpout": 0, "pswpin": 0,
                         "max_used_mib": 1.0, "elapsed_s": b, "final_actual_mib": a})
    return pd.DataFrame(rows)


RUNS = [("none", 1, 1000, 500, 30000.0, [600.0, np.nan], [1024.0, 1024.0]),
        ("none", 2, 3000, 700, 32000.0, [610.0, 620.0], [1024.0, 1024.0]),
        ("qemu-auto", 1, 10, 1, 20000.0, [630.0, 650.0], [300.0, 200.0]),
        ("qemu-auto", 2, 30, 3, 21000.0, [640.0, 660.0], [250.0, 250.0])]


def test_per_run_metrics_average_the_builds_that_finished():
    m = per_run_metrics(frame(RUNS)).set_index("run_id")
    assert m.loc["r0", "build_s"] == 600.0 and m.loc["r0", "builds_finished"] == 1
    assert m.loc["r1", "build_s"] == 615.0 and m.loc["r1", "builds_finished"] == 2
    assert m.loc["r2", "final_actual_mib"] == 250.0
    assert m.loc["r3", "host_pswpout"] == 30 and m.loc["r3", "host_pswpin"] == 3


def test_side_by_side_puts_the_rfc_beside_our_means_and_change():
    t = side_by_side(rfc_stats(frame(RUNS)), ["none", "qemu-auto"])
    assert list(t.index) == [label for _, label, _, _ in RFC_V2]
    out = t.loc["host swap-outs (pages)"]
    assert out["RFC: no auto-balloon"] == "1.54 M" and out["RFC: auto-balloon"] == "20.7 k"
    assert out["RFC change"] == "-98.7%"
    assert out["ours: none"].startswith("2,000 [")               # mean of 1000 and 3000
    assert out["ours: qemu-auto"].startswith("20 [")
    assert out["ours change (qemu-auto vs none)"] == "-99.0%"
    assert t.loc["build time, mean per guest (s)", "ours: qemu-auto"].startswith("645 [")
    left = t.loc["guest memory left by the balloon at the end (MiB)"]
    assert left["RFC: auto-balloon"] == "200–300" and left["RFC: no auto-balloon"] == "–"


def test_demand_matched_host_keeps_the_rfcs_overcommit_of_used_memory():
    sc = load_scenario(bundled_path("rfc-v2"))
    # peak use 31000 MiB under none: 31000 / (35 / 32) = 28342.8 -> 28288 (64 MiB steps)
    assert demand_matched_host(frame(RUNS), sc) == 28288
    # never below what the guests take at boot (plus an eighth), never above the host
    tiny = frame([("none", 1, 0, 0, 10.0, [1.0], [1.0])])
    assert demand_matched_host(tiny, sc) >= boot_backed_mib(sc) * 9 / 8
    huge = frame([("none", 1, 0, 0, 10.0**6, [1.0], [1.0])])
    assert demand_matched_host(huge, sc) == 32 * 1024
    assert 35 * 30 < boot_backed_mib(sc) < 35 * 100      # tens of MiB per 1 GiB guest


@pytest.mark.parametrize("labels, want", [(["none", "static", "qemu-auto"], "static"),
                                          (["static@mom", "static@qemu-auto"], "static@qemu-auto")])
def test_baseline_label(labels, want):
    assert baseline_label(labels) == want
