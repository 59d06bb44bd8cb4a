"""The auto-ballooning RFC v2's one experiment (Luiz Capitulino, qemu-devel, May 2013) beside a
sweep of the bundled ``rfc-v2`` scenario: the numbers the RFC reported and the table that puts
ours next to them (notebooks/rfc-v2.ipynb).

The RFC: 35 VMs x 1 GiB, each running a parallel kernel build, on a host with 32 GiB of RAM and
16 GiB of swap; 5 runs; means. Without auto-ballooning the host swapped out 1.54 M pages and in
about 0.9 M; with it 20.7 k out (-98.7 %) and -99.9 % in; the builds took 616 s and 627 s (the
report lists them in that order, without, then with: no gain in time); the balloons left the
guests 200-300 MiB. It gives no confidence intervals, no per-VM figures, and no static-balloon
baseline.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from autoballoon.results.stats import summarize
from autoballoon.uapi import PAGE_SIZE

# (metric, what it is, the RFC without auto-ballooning, with it): None where it gave no figure
RFC_V2 = (
    ("host_pswpout", "host swap-outs (pages)", 1.54e6, 20.7e3),
    ("host_pswpin", "host swap-ins (pages)", 0.9e6, 0.9e6 * (1 - 0.999)),
    ("build_s", "build time, mean per guest (s)", 616.0, 627.0),
    ("final_actual_mib", "guest memory left by the balloon at the end (MiB)", None, (200, 300)),
)
# the RFC's testbed, for the prose
RFC_SETUP = {"guests": 35, "guest_gib": 1, "host_gib": 32, "host_swap_gib": 16, "runs": 5}
# The notebook's SMOKE mode: a scaled-down copy that runs in seconds, at the RFC's ratios of
# guest RAM to host RAM (35:32) and host swap to host RAM (1:2): 4 guests of 128 MiB, each
# building the small `make -j2` trace (traces/make-j2.parquet) three times with fresh files.
SMOKE_OVERRIDES = {"guest.vm.count": 4, "guest.vm.memory": "128MiB", "guest.vm.swap": "128MiB",
                   "guest.vm.workload.path": "traces/make-j2.parquet",
                   "guest.vm.workload.repeat": 3, "host.memory": "468MiB",
                   "host.swap.size": "234MiB", "run.duration": "20s"}


def boot_backed_mib(scenario) -> float:
    """Host RAM the guests take at boot (their kernels' memory, the pages reserved at boot, the
    slab: what ``Machine`` backs before any workload runs), MiB."""
    from autoballoon.machine.machine import boot_memory
    total = 0
    for g in scenario.guests:
        mem = boot_memory(g, g.memory, g.watermark_scale_factor, g.kernel == "3.7")
        total += (mem.reserved + mem.kernel) * PAGE_SIZE + g.slab
    return total / 2**20


def demand_matched_host(df: pd.DataFrame, scenario, policy: str = "none",
                        align: int = 64) -> int:
    """Host RAM (MiB, a multiple of ``align``) at which our guests overcommit the host as much
    as the RFC's did: the host's peak use for guest memory under ``policy`` (mean over seeds;
    ``max_used_mib`` of the host rows) divided by the RFC's ratio of guest RAM to host RAM
    (35 GiB : 32 GiB: a kernel build's page cache fills a guest, so the RFC's guests used all of
    theirs) — but never less than an eighth more than the guests take at boot, and never more
    than ``scenario``'s host. A host that was already full under ``policy`` makes the peak a
    lower bound of the demand."""
    host = df[(df["guest"] == "host") & (df["policy"] == policy)]
    peak = float(host["max_used_mib"].mean())
    ratio = RFC_SETUP["guests"] * RFC_SETUP["guest_gib"] / RFC_SETUP["host_gib"]
    floor = math.ceil(boot_backed_mib(scenario) * 9 / 8 / align) * align
    return min(scenario.host.memory // 2**20, max(floor, int(peak / ratio) // align * align))


def baseline_label(labels, auto: str = "qemu-auto") -> str:
    """The label of ``auto``'s equal-inflate static baseline among a sweep's policy labels
    (``static``, or ``static@AUTO`` when the sweep had several automatic policies)."""
    return next((x for x in labels if x == f"static@{auto}"), "static")


def describe_rfc() -> str:
    """The RFC's testbed and reported numbers, as one Markdown paragraph."""
    r = RFC_SETUP
    parts = [f"{label}: {_rfc_cell(without)} without, {_rfc_cell(with_)} with"
             for _, label, without, with_ in RFC_V2]
    return (f"**The RFC's testbed:** {r['guests']} VMs of {r['guest_gib']} GiB on a host with "
            f"{r['host_gib']} GiB of RAM and {r['host_swap_gib']} GiB of swap, a parallel kernel "
            f"build in each, {r['runs']} runs. It reported (means): " + "; ".join(parts) + ".")


# the sweep columns each metric comes from: the host row, or the mean over a run's guests
HOST_COLUMNS = {"host_pswpout": "pswpout", "host_pswpin": "pswpin"}
GUEST_COLUMNS = {"build_s": "elapsed_s", "final_actual_mib": "final_actual_mib",
                 "builds_finished": "elapsed_s"}


def per_run_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """The sweep frame's host rows with the RFC's metrics as columns: the host's swap counters,
    and per run the guests' mean build time (``elapsed_s``, over the builds that finished), mean
    final ``actual`` and the number of builds that finished."""
    guests = df[df["guest"] != "host"]
    by_run = guests.groupby("run_id", sort=False)
    host = df[df["guest"] == "host"].copy()
    for metric, column in HOST_COLUMNS.items():
        host[metric] = host[column].astype("float64")
    host["build_s"] = host["run_id"].map(by_run["elapsed_s"].mean())
    host["final_actual_mib"] = host["run_id"].map(by_run["final_actual_mib"].mean())
    host["builds_finished"] = host["run_id"].map(by_run["elapsed_s"].count()).astype("float64")
    host["guests"] = host["run_id"].map(by_run.size()).astype("float64")
    return host


METRICS = ("host_pswpout", "host_pswpin", "build_s", "final_actual_mib", "builds_finished")


def rfc_stats(df: pd.DataFrame, by=("policy",)) -> pd.DataFrame:
    """Mean and 95 % bootstrap interval over seeds of each RFC metric, per ``by`` group (tidy,
    as :func:`autoballoon.summarize`)."""
    return summarize(per_run_metrics(df), by=list(by), metrics=list(METRICS), rows="host")


def _fmt(x: float, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f} M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f} k"
    return f"{x:,.{digits}f}"


def _rfc_cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, tuple):
        return f"{v[0]}–{v[1]}"
    return _fmt(v)


def side_by_side(stats: pd.DataFrame, policies, baseline: str = "none",
                 auto: str = "qemu-auto") -> pd.DataFrame:
    """The RFC's table and ours: one row per RFC metric; the RFC without and with
    auto-ballooning and its change, then ours per policy as "mean [95 % CI]", and the change
    of ``auto`` against ``baseline`` in our runs (of the means). ``stats`` from :func:`rfc_stats`
    grouped by policy only."""
    rows = []
    for metric, label, without, with_ in RFC_V2:
        row = {"metric": label, "RFC: no auto-balloon": _rfc_cell(without),
               "RFC: auto-balloon": _rfc_cell(with_),
               "RFC change": (f"{(with_ - without) / without:+.1%}"
                              if isinstance(without, float) and isinstance(with_, float)
                              else "–")}
        means = {}
        for p in policies:
            s = stats[(stats["policy"] == p) & (stats["metric"] == metric)]
            if s.empty:
                continue
            s = s.iloc[0]
            means[p] = s["mean"]
            ci = "" if np.isnan(s["ci_low"]) else f" [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]"
            row[f"ours: {p}"] = _fmt(s["mean"]) + ci
        b, a = means.get(baseline), means.get(auto)
        row[f"ours change ({auto} vs {baseline})"] = (
            f"{(a - b) / b:+.1%}" if a is not None and b else "–")
        rows.append(row)
    return pd.DataFrame(rows).set_index("metric")
