"""The policy zoo: every policy on several scenarios and seeds, as one table and as the points of
a Pareto figure (memory reclaimed against harm).

Input: one sweep frame per scenario (``sweep(..., policies=..., seeds=...)``: one row per run and
guest, plus the host's row), each run as ``compare`` runs it, so every automatic policy has its
own equal-inflate static baseline (``static@<policy>`` with several automatic policies). Per run
(:func:`zoo_runs`) the metrics are:

- ``balloon_mib``: the balloons' time-averaged total size, MiB (memory the balloon reclaimed;
  memory returned otherwise, as by free page reporting, shows in ``host_used_mib`` instead);
- ``host_used_mib``: the host's time-averaged memory in use, MiB;
- ``host_pswpin``/``host_pswpout``: the host swapping guest memory (double paging), pages;
- ``guest_pswpin``/``guest_pswpout``: the guests' own swap traffic, pages, summed over guests;
- ``stall_s`` and ``stall_<cause>_s``: guest time stalled, in all and by cause, seconds summed
  over guests (see results/stalls.py);
- ``progress``: page accesses the guests completed; ``work_lost_pct``: the progress missing
  against ``none`` (no balloon) at the same scenario and seed, percent (negative: more work);
- ``balloon_reversals`` and ``balloon_moved_mib``: churn, the drivers' inflate/deflate
  reversals and the memory they moved in and out.

:func:`zoo_table` averages them over seeds with bootstrap confidence intervals (results/stats.py);
:func:`pareto_points` pairs each policy's reclaimed memory with a harm metric, and names each
automatic policy's baseline so a figure can draw the two side by side (plots.plot_pareto).
"""
from __future__ import annotations

import pandas as pd

from autoballoon.results.stalls import stall_columns
from autoballoon.results.stats import per_run, summarize_runs
from autoballoon.uapi import PAGE_SIZE

MIB = 2**20
GUEST_SUMS = ("mean_balloon_mib", "pswpin", "pswpout", "stall_seconds", "progress",
              "balloon_reversals", "balloon_inflate", "balloon_deflate")
HOST_COLUMNS = ("mean_used_mib", "pswpin", "pswpout")
NO_BALLOON = "none"
ZOO_METRICS = ("balloon_mib", "host_used_mib", "host_pswpin", "host_pswpout", "guest_pswpin",
               "guest_pswpout", "stall_s", "progress", "work_lost_pct", "balloon_reversals",
               "balloon_moved_mib")


# presets whose balloon size the user sets: with no targets in the scenario they run as
# ``none`` with an idle guest feature, so the zoo leaves them out unless asked for
FIXED_SIZE_PRESETS = ("libvirt-autodeflate", "firecracker")
FIRST = ("none", "static", "qemu-auto")


def zoo_policies(registered) -> list[str]:
    """The zoo's default policies: ``none``, ``static`` (the equal-inflate baselines),
    ``qemu-auto``, then every other registered policy but :data:`FIXED_SIZE_PRESETS`."""
    return [*FIRST, *(p for p in registered if p not in FIRST and p not in FIXED_SIZE_PRESETS)]


def policy_timers(scenario, policies) -> pd.DataFrame:
    """Each policy's daemon timers as built for ``scenario``: one row per timer (``policy``,
    ``timer``, ``first_s``: when it is first due, ``period_s``), read from the policy object's
    :class:`~autoballoon.control.policies.base.Every` attributes (a policy may still skip a
    round: proxmox skips its first)."""
    from autoballoon.control.policies import fit_guest_features, make_policy, policy_class
    from autoballoon.control.policies.base import Every
    rows = []
    for name in policies:
        fitted, _ = fit_guest_features(scenario, policy_class(name))
        obj = make_policy(fitted, name, {})
        rows += [{"policy": name, "timer": k, "first_s": v.next / 1e9, "period_s": v.period / 1e9}
                 for k, v in vars(obj).items() if isinstance(v, Every)]
    return pd.DataFrame(rows, columns=["policy", "timer", "first_s", "period_s"])


def _one_scenario(name: str, df: pd.DataFrame) -> pd.DataFrame:
    causes = stall_columns(df)
    guests = per_run(df, "guests", [*GUEST_SUMS, *causes.values()])
    # a run is its point, seed and label: runs with one run id (the equal-inflate statics of
    # policies that inflated alike) are stored once per label, so the run id alone is not a key
    key = [c for c in ("point", "seed", "policy") if c in guests.columns]
    host = per_run(df, "host", HOST_COLUMNS)[[*key, *HOST_COLUMNS]]
    runs = guests.merge(host.rename(columns={c: f"{c}_host" for c in HOST_COLUMNS}),
                        on=key, validate="one_to_one")
    out = pd.DataFrame({
        "scenario": name, "seed": runs["seed"], "policy": runs["policy"],
        "baseline_of": runs["baseline_of"],
        "balloon_mib": runs["mean_balloon_mib"].astype("float64"),
        "host_used_mib": runs["mean_used_mib_host"].astype("float64"),
        "host_pswpin": runs["pswpin_host"].astype("float64"),
        "host_pswpout": runs["pswpout_host"].astype("float64"),
        "guest_pswpin": runs["pswpin"].astype("float64"),
        "guest_pswpout": runs["pswpout"].astype("float64"),
        "stall_s": runs["stall_seconds"].astype("float64"),
        **{f"stall_{c}_s": runs[col].astype("float64") / 1e9 for c, col in causes.items()},
        "progress": runs["progress"].astype("float64"),
        "balloon_reversals": runs["balloon_reversals"].astype("float64"),
        "balloon_moved_mib": (runs["balloon_inflate"] + runs["balloon_deflate"]
                              ).astype("float64") * PAGE_SIZE / MIB,
    })
    base = out[out["policy"] == NO_BALLOON].set_index("seed")["progress"]
    if base.empty:
        raise ValueError(f"{name}: the zoo needs the '{NO_BALLOON}' policy (work_lost_pct is "
                         f"measured against it)")
    out["work_lost_pct"] = 100.0 * (1.0 - out["progress"] / out["seed"].map(base))
    return out


def zoo_runs(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per scenario, seed and policy with the zoo's metrics, from ``{scenario name:
    sweep frame}`` (failed runs left out)."""
    return pd.concat([_one_scenario(n, df) for n, df in frames.items()], ignore_index=True)


def metric_names(runs: pd.DataFrame) -> list[str]:
    """The zoo's metrics in table order, with the stall causes these runs have after
    ``stall_s``."""
    causes = [c for c in runs.columns if c.startswith("stall_") and c != "stall_s"]
    at = ZOO_METRICS.index("stall_s") + 1
    return [*ZOO_METRICS[:at], *causes, *ZOO_METRICS[at:]]


def zoo_table(runs: pd.DataFrame, ci: float = 0.95, n_boot: int = 2000) -> pd.DataFrame:
    """Mean and ``ci`` bootstrap interval over seeds of every metric, per scenario and policy
    (tidy: ``scenario``, ``policy``, ``baseline_of``, ``metric``, ``n``, ``mean``, ``ci_low``,
    ``ci_high``), in the runs' order of scenarios and policies."""
    keyed = runs.assign(baseline_of=runs["baseline_of"].fillna(""))
    table = summarize_runs(keyed, ["scenario", "policy", "baseline_of"], metric_names(runs),
                           ci=ci, n_boot=n_boot)
    order = {k: i for i, k in enumerate(_row_order(runs))}
    rank = [order[k] for k in zip(table["scenario"], table["policy"])]
    return table.assign(_rank=rank).sort_values("_rank", kind="stable").drop(
        columns="_rank").reset_index(drop=True)


def _row_order(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(scenario, policy) in the runs' order, each equal-inflate baseline right after its
    automatic policy."""
    keys = runs[["scenario", "policy", "baseline_of"]].drop_duplicates(["scenario", "policy"])
    out = []
    for s, p, b in keys.itertuples(index=False):
        if pd.isna(b) or not b:
            out.append((s, p))
            out.extend((s, q) for s2, q, b2 in keys.itertuples(index=False)
                       if s2 == s and b2 == p)
    return out


def wide(table: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """The tidy table as one row per scenario and policy, one column per metric, each cell
    "mean [low, high]" (the mean alone with a single seed)."""
    def cell(r) -> str:
        if pd.isna(r["ci_low"]):
            return f"{r['mean']:.{digits}f}"
        return f"{r['mean']:.{digits}f} [{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"
    cells = table.assign(cell=table.apply(cell, axis=1))
    out = cells.pivot(index=["scenario", "policy"], columns="metric", values="cell")
    rows = list(dict.fromkeys(zip(table["scenario"], table["policy"])))
    return out.loc[rows, list(dict.fromkeys(table["metric"]))]


def pareto_points(table: pd.DataFrame, harm: str = "work_lost_pct",
                  reclaimed: str = "balloon_mib") -> pd.DataFrame:
    """Per scenario and policy: ``x`` (memory reclaimed) and ``y`` (harm) with their intervals
    (``x_low`` ... ``y_high``), ``kind`` ("automatic": has a baseline; "baseline": an
    equal-inflate static, ``baseline_of`` names its policy; "other": none and the presets)."""
    def metric(name: str, axis: str) -> pd.DataFrame:
        m = table[table["metric"] == name].set_index(["scenario", "policy"])
        return m[["mean", "ci_low", "ci_high"]].set_axis([axis, f"{axis}_low", f"{axis}_high"],
                                                        axis=1)
    keys = table[["scenario", "policy", "baseline_of"]].drop_duplicates()
    out = keys.set_index(["scenario", "policy"]).join(metric(reclaimed, "x")).join(
        metric(harm, "y")).reset_index()
    automatic = set(zip(out["scenario"], out["baseline_of"]))
    out["kind"] = [
        "baseline" if b else "automatic" if (s, p) in automatic else "other"
        for s, p, b in zip(out["scenario"], out["policy"], out["baseline_of"])]
    out.attrs.update(harm=harm, reclaimed=reclaimed)
    return out


def run_zoo(scenarios: dict, policies, seeds, out, set=None, workers=None,
            progress: bool = True) -> dict[str, pd.DataFrame]:
    """Sweep each of ``scenarios`` ({name: path or Scenario}) under ``policies`` (each
    automatic one with its equal-inflate static baseline when ``static`` is among them) and
    ``seeds``, into ``out/<name>/`` (a rerun resumes), on one local Dask cluster of ``workers``
    processes; returns {name: sweep frame} for :func:`zoo_runs`. ``set``: overrides for every
    scenario (e.g. ``{"run.duration": "5s"}``)."""
    from pathlib import Path

    from autoballoon.results.sweep import _client, sweep
    client, cluster = _client(None, None, workers)
    try:
        return {name: sweep(path, set=set, policies=list(policies), seeds=list(seeds),
                            out=Path(out) / name, client=client, progress=progress)
                for name, path in scenarios.items()}
    finally:
        client.close()
        cluster.close()


def verdicts(points: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and automatic policy: its harm against its equal-inflate baseline's
    (``y``, ``y_base``), and ``verdict``: "less harm" or "more harm" when the two confidence
    intervals do not overlap, else "indistinguishable"; "seeds do not vary it" when the two
    differ but neither moved at all over the seeds (a replayed trace is the same run under every seed: its
    zero-width intervals would call any difference certain)."""
    base = points[points["kind"] == "baseline"].set_index(["scenario", "baseline_of"])
    rows = []
    for _, a in points[points["kind"] == "automatic"].iterrows():
        b = base.loc[(a["scenario"], a["policy"])]
        if a["y"] == b["y"] and a["y_low"] == b["y_low"] and a["y_high"] == b["y_high"]:
            verdict = "indistinguishable"         # e.g. neither inflated: both ran as none
        elif a["y_low"] == a["y_high"] and b["y_low"] == b["y_high"]:
            verdict = "seeds do not vary it"
        elif a["y_high"] < b["y_low"]:
            verdict = "less harm"
        elif a["y_low"] > b["y_high"]:
            verdict = "more harm"
        else:
            verdict = "indistinguishable"
        rows.append({"scenario": a["scenario"], "policy": a["policy"], "x": a["x"],
                     "y": a["y"], "y_base": b["y"], "verdict": verdict})
    return pd.DataFrame(rows)


def describe_zoo(points: pd.DataFrame, unit: str = "%") -> str:
    """Markdown: per scenario, who reclaimed most, who harmed least, and each automatic
    policy's verdict against its equal-inflate baseline; every number read from ``points``."""
    v = verdicts(points)
    lines = []
    for name, pts in points.groupby("scenario", sort=False):
        most = pts.loc[pts["x"].idxmax()]
        least = pts[pts["x"] > 0]
        least = least.loc[least["y"].idxmin()] if len(least) else None
        text = (f"- **`{name}`**: the balloons reclaimed most under `{most['policy']}` "
                f"({most['x']:.0f} MiB on average, harm {most['y']:.1f} {unit})")
        if least is not None:
            text += (f"; of the policies that reclaimed anything, `{least['policy']}` harmed "
                     f"least ({least['y']:.1f} {unit} at {least['x']:.0f} MiB)")
        idle = sorted(pts.loc[(pts["kind"] == "automatic") & (pts["x"] <= 0), "policy"])
        if idle:
            text += (f"; no balloon at all under {', '.join(f'`{p}`' for p in idle)} (nor "
                     f"under their equal-inflate statics)")
        mine = v[v["scenario"] == name]
        groups = {k: sorted(mine.loc[mine["verdict"] == k, "policy"])
                  for k in ("less harm", "more harm", "indistinguishable",
                            "seeds do not vary it")}
        text += ". Against its equal-inflate static: " + "; ".join(
            f"{k}: {', '.join(f'`{p}`' for p in ps)}" for k, ps in groups.items() if ps) + "."
        lines.append(text)
    return "\n".join(lines)
