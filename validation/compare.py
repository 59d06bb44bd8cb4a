"""Model vs real guest: run autoballoon on every validation scenario and set its summary beside
the harness's measured one (validation/results/NAME/summary.csv).

    python -m validation.compare [--only NAME[,NAME...]] [--csv OUT.csv]

``compare_all()`` returns a long DataFrame, one row per (scenario, metric), with columns
``scenario, metric, model, real`` (floats; booleans as 0.0/1.0; NaN where a ratio is 0/0 or
a scenario has no real results yet). Metrics:

- ``kswapd_share``        pgscan_kswapd / (pgscan_kswapd + pgscan_direct): the kswapd:direct
                          split of scanning (1 = kswapd did it all)
- ``pgscan_kswapd``, ``pgscan_direct``   the raw counts behind it
- ``steal_per_scan``      (pgsteal_kswapd + pgsteal_direct) / (pgscan_kswapd + pgscan_direct)
- ``pswpin_per_majfault`` pswpin / pgmajfault
- ``allocstall``          direct reclaim entries (sum of allocstall_* in 6.1)
- ``pswpout``, ``pswpin``, ``pgmajfault``, ``workingset_refault``
- ``oom_deflate_pages``   pages the balloon gave back beyond the host's target (deflate-on-OOM),
                          computed the same way on both sides from the host's target and
                          QEMU's actual over time (validation.run.oom_deflate_pages)
- ``deflate_on_oom_fired`` oom_deflate_pages > 0
- ``oom_killed``          the workload was OOM-killed (real: it died of SIGKILL; model: oom_kill > 0)
- ``mean_balloon_mib``    time-weighted mean balloon size over the workload
- ``adaptive_vs_static_pswpout`` (scenario ``adaptive/static-phased``): pswpout of the adaptive
                          run divided by that of its static counterpart

The model's counters cover its whole run (``run.duration``; its workload starts at t = 0 with
the initial balloon already in place within a few ms), the real ones the workload only (from the
sample before it starts to the one after it ends), both after the initial target was reached.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = HERE / "scenarios"
RESULTS = HERE / "results"
PAGE = 4096

METRICS = ("kswapd_share", "pgscan_kswapd", "pgscan_direct", "steal_per_scan",
           "pswpin_per_majfault", "allocstall", "pswpout", "pswpin", "pgmajfault",
           "workingset_refault", "oom_deflate_pages", "deflate_on_oom_fired", "oom_killed",
           "mean_balloon_mib")
STATIC_ADAPTIVE = ("adaptive", "static-phased")


def _ratio(a, b) -> float:
    a, b = float(a), float(b)
    return a / b if b else (math.nan if not a else math.inf)


def metrics(row: dict) -> dict[str, float]:
    """The compared metrics from one summary row (model or real: the same column names)."""
    scan = row["pgscan_kswapd"] + row["pgscan_direct"]
    return {
        "kswapd_share": _ratio(row["pgscan_kswapd"], scan),
        "pgscan_kswapd": float(row["pgscan_kswapd"]),
        "pgscan_direct": float(row["pgscan_direct"]),
        "steal_per_scan": _ratio(row["pgsteal_kswapd"] + row["pgsteal_direct"], scan),
        "pswpin_per_majfault": _ratio(row["pswpin"], row["pgmajfault"]),
        "allocstall": float(row["allocstall"]),
        "pswpout": float(row["pswpout"]),
        "pswpin": float(row["pswpin"]),
        "pgmajfault": float(row["pgmajfault"]),
        "workingset_refault": float(row["workingset_refault"]),
        "oom_deflate_pages": float(row["oom_deflate_pages"]),
        "deflate_on_oom_fired": float(bool(row["oom_deflate_pages"] > 0)),
        "oom_killed": float(bool(row["oom_killed"])),
        "mean_balloon_mib": float(row["mean_balloon_mib"]),
    }


def model_row(path: Path) -> dict:
    """Simulate one scenario and reduce it to the real summary's columns."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))           # for policy = "validation.policies:..."
    from autoballoon import load_scenario, simulate
    from validation.run import oom_deflate_pages
    res = simulate(load_scenario(path), progress=False)
    s = res.summary
    g = s[s["guest"] != "host"].iloc[0]
    ts = res.timeseries
    ts = ts[ts["guest"] == g["guest"]].sort_values("t_ns")
    row = {k: (0 if pd.isna(g[k]) else g[k]) for k in g.index}
    row["oom_deflate_pages"] = oom_deflate_pages(ts["target"].to_numpy(np.int64),
                                                 ts["actual"].to_numpy(np.int64))
    row["oom_killed"] = bool(int(g["oom_kill"]) > 0)
    return row


def real_row(name: str, results: Path = RESULTS) -> dict | None:
    d = results / name
    if not (d / "manifest.json").is_file():
        return None                             # not run yet, or an interrupted write
    return pd.read_csv(d / "summary.csv").iloc[0].to_dict()


def compare_all(names=None, results: Path = RESULTS, scenarios: Path = SCENARIOS,
                progress=None) -> pd.DataFrame:
    """Model vs real for each scenario in ``scenarios`` (or only ``names``): a long DataFrame
    with columns scenario, metric, model, real."""
    paths = sorted(scenarios.glob("*.toml"))
    if names:
        paths = [p for p in paths if p.stem in set(names)]
    rows = []
    pswpout: dict[str, tuple[float, float]] = {}
    for p in paths:
        if progress:
            progress(p.stem)
        m = metrics(model_row(p))
        r_row = real_row(p.stem, results)
        r = metrics(r_row) if r_row is not None else {k: math.nan for k in METRICS}
        for k in METRICS:
            rows.append({"scenario": p.stem, "metric": k, "model": m[k], "real": r[k]})
        pswpout[p.stem] = (m["pswpout"], r["pswpout"])
    if all(n in pswpout for n in STATIC_ADAPTIVE):
        (ma, ra), (ms, rs) = pswpout[STATIC_ADAPTIVE[0]], pswpout[STATIC_ADAPTIVE[1]]
        rows.append({"scenario": "/".join(STATIC_ADAPTIVE), "metric":
                     "adaptive_vs_static_pswpout", "model": _ratio(ma, ms),
                     "real": _ratio(ra, rs)})
    return pd.DataFrame(rows, columns=["scenario", "metric", "model", "real"])


def side_by_side(df: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario, 'model | real' per metric (for printing)."""
    def fmt(x):
        if pd.isna(x):
            return "-"
        if math.isinf(x):
            return "inf"
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    cell = df.assign(v=[f"{fmt(a)} | {fmt(b)}" for a, b in zip(df["model"], df["real"])])
    wide = cell.pivot(index="scenario", columns="metric", values="v")
    order = [m for m in (*METRICS, "adaptive_vs_static_pswpout") if m in wide.columns]
    return wide[order].fillna("")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.compare",
                                 description="model vs real guest, side by side")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--csv", help="also write the long table here")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.only.split(",")] if a.only else None
    df = compare_all(names, progress=lambda n: print(f"simulating {n} ...", file=sys.stderr,
                                                     flush=True))
    if a.csv:
        df.to_csv(a.csv, index=False)
    wide = side_by_side(df)
    with pd.option_context("display.width", 250, "display.max_columns", None,
                           "display.max_colwidth", 40):
        print("each cell: model | real")
        # print in groups of columns so it fits a terminal
        cols = list(wide.columns)
        for i in range(0, len(cols), 5):
            print(wide[cols[i:i + 5]].to_string())
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
