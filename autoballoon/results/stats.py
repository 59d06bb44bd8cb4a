"""Statistics over a sweep's seeds: the mean of each metric and its 95 % confidence interval, per
point and policy, and the paired difference between an automatic policy and its equal-inflate
baseline at the same point and seed.

The interval is a percentile bootstrap of the mean over seeds (``n_boot`` resamples, seeded, so
the same frame always gives the same interval). With few seeds it is narrower than a t interval
would be (with 5 seeds, by about a fifth): read it as a guide, and add seeds where a conclusion
hangs on it. Pairing removes the variation the two runs share (same point, same seed: the same
workload streams), which is why the paired difference is the number to look at.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["summarize", "summarize_runs", "swept_keys", "per_run", "paired_difference"]

RUN_COLUMNS = ("point", "seed", "policy", "baseline_of", "run_id")
DEFAULT_METRICS = ("pswpin", "pswpout", "stall_seconds", "progress")


def swept_keys(df: pd.DataFrame) -> list[str]:
    """The swept keys' columns of a sweep frame (between ``point`` and ``seed``)."""
    cols = list(df.columns)
    return cols[cols.index("point") + 1:cols.index("seed")]


def per_run(df: pd.DataFrame, rows: str = "host", metrics=DEFAULT_METRICS,
            keep=()) -> pd.DataFrame:
    """One row per run: the host's row (``rows="host"``), the guests' sum (``"guests"``), or
    one guest's row (its name), with the columns that say which run it is (and ``keep``:
    columns added to the frame that are constant per run). Failed runs are left out."""
    ok = df[df["error"].isna()] if "error" in df.columns else df
    ident = [c for c in ("point", *swept_keys(df), "seed", "policy", "baseline_of", "run_id")
             if c in ok.columns]
    ident += [c for c in keep if c not in ident and c in ok.columns]
    metrics = list(metrics)
    if rows == "guests":
        guests = ok[ok["guest"] != "host"]
        out = guests.groupby(ident, dropna=False, sort=False)[metrics].sum(min_count=1)
        return out.reset_index()
    picked = ok[ok["guest"] == rows]
    if picked.empty:
        raise ValueError(f"rows={rows!r}: no such rows (the guests: "
                         f"{', '.join(sorted(set(ok['guest'])))}; or 'guests' for their sum)")
    return picked[ident + metrics].reset_index(drop=True)


def paired_difference(runs: pd.DataFrame, metrics, auto: str | None = None,
                      baseline: str | None = None) -> pd.DataFrame:
    """Per point and seed, ``auto − baseline`` of each metric (from :func:`per_run`). By default
    every automatic policy against the baseline that names it in ``baseline_of``; ``policy``
    says which pair (``"qemu-auto − static"``)."""
    metrics = list(metrics)
    on = ["point", "seed"]
    if auto is not None and baseline is not None:
        pairs = [(auto, baseline)]
    else:
        b = runs[runs["baseline_of"].notna()]
        pairs = sorted(set(zip(b["baseline_of"], b["policy"])))
        if auto is not None:
            pairs = [p for p in pairs if p[0] == auto]
    if not pairs:
        raise ValueError("no pair to compare: run a sweep with an automatic policy and 'static' "
                         "(its equal-inflate baseline), or name auto= and baseline=")
    frames = []
    for a, s in pairs:
        left = runs[runs["policy"] == a].set_index(on)
        right = runs[runs["policy"] == s].set_index(on)[metrics]
        both = left.merge(right, left_index=True, right_index=True, suffixes=("", "__base"))
        out = both.drop(columns=[c for c in both.columns if c.endswith("__base")])
        for m in metrics:
            out[m] = both[m].astype("float64") - both[m + "__base"].astype("float64")
        out["policy"] = f"{a} − {s}"
        frames.append(out.reset_index())
    return pd.concat(frames, ignore_index=True)


def _bootstrap(values: np.ndarray, ci: float, n_boot: int, rng) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    tail = (1 - ci) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def summarize(df: pd.DataFrame, by=None, metrics=DEFAULT_METRICS, rows: str = "host",
              paired=None, ci: float = 0.95, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean and ``ci`` confidence interval over seeds, one row per group and metric (tidy):
    ``by`` columns, ``metric``, ``n`` (seeds), ``mean``, ``ci_low``, ``ci_high``.

    ``by``: default the swept keys and the policy. ``rows``: "host", "guests" (summed) or a
    guest's name. ``paired``: True for each automatic policy minus its equal-inflate baseline
    at the same point and seed, or ``(auto, baseline)`` labels; then ``policy`` names the pair.
    """
    metrics = list(metrics)
    by = list(by) if by is not None else [*swept_keys(df), "policy"]
    runs = per_run(df, rows, metrics, keep=by)
    if paired is not None and paired is not False:
        auto, base = (None, None) if paired is True else paired
        runs = paired_difference(runs, metrics, auto, base)
    return summarize_runs(runs, by, metrics, ci, n_boot, seed)


def summarize_runs(runs: pd.DataFrame, by, metrics, ci: float = 0.95, n_boot: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """:func:`summarize` of a frame with one row per run (e.g. from :func:`per_run`, with
    columns derived from it): mean and ``ci`` bootstrap interval over the rows of each group."""
    by, metrics = list(by), list(metrics)
    rng = np.random.default_rng(seed)
    out = []
    for group, g in runs.groupby(by, dropna=False, sort=True):
        group = group if isinstance(group, tuple) else (group,)
        for m in metrics:
            x = g[m].dropna().to_numpy(dtype="float64")
            lo, hi = _bootstrap(x, ci, n_boot, rng)
            out.append({**dict(zip(by, group)), "metric": m, "n": len(x),
                        "mean": float(x.mean()) if len(x) else float("nan"),
                        "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(out)
