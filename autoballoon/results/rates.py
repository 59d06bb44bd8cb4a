"""Per-second rates from a run's time series: what the guests' kernels did, second by second.

A run records one row per tick and guest with the per-tick deltas of every counter (see
control/recorder.py). :func:`per_second` sums a counter over the guests and over the ticks of
each second (or ``bin_s``) and divides by the bin's length, so a column reads "per second of
simulated time"; a gauge (bytes, such as ``balloon``) is instead the bin's mean of the guests'
total. :data:`SPIN_RATES` names the series that show a guest spinning in reclaim while its
balloon inflates (notebooks/rfc-fixme-spin.ipynb): how long balloon_lock was held, how often the
auto-balloon shrinker was called and refused (-1), the reclaim passes and the time tasks spent
in direct reclaim, the balloon's churn, and the work done.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from autoballoon.uapi import PAGE_SIZE

MIB = 2**20
GAUGES = ("balloon", "actual", "target", "free", "available", "used", "anon", "file",
          "swap_used")


@dataclass(frozen=True)
class Rate:
    """A series: the sum of ``columns`` (over guests, per second) × ``scale``, in ``unit``."""
    label: str
    columns: tuple[str, ...]
    scale: float = 1.0
    unit: str = "per s"


SPIN_RATES = (
    Rate("balloon size", ("balloon",), 1 / MIB, "MiB"),
    Rate("balloon_lock held", ("balloon_lock_ns",), 1e-6, "ms per s"),
    Rate("shrinker calls", ("balloon_shrinker_calls",)),
    Rate("shrinker calls returning -1", ("balloon_shrinker_busy",)),
    Rate("direct reclaim passes (allocstall)", ("allocstall",)),
    Rate("kswapd reclaim passes (pageoutrun)", ("pageoutrun",)),
    Rate("time in direct reclaim", ("stall_reclaim_ns",), 1e-6, "ms per s"),
    Rate("time waiting on the balloon", ("stall_balloon_ns",), 1e-6, "ms per s"),
    Rate("balloon inflate + deflate", ("balloon_inflate", "balloon_deflate"), PAGE_SIZE / MIB,
         "MiB per s"),
    Rate("balloon reversals (inflate \u21c4 deflate)", ("balloon_reversals",)),
    Rate("work done", ("progress",), 1e-3, "thousand page accesses per s"),
)


def per_second(timeseries: pd.DataFrame, columns, bin_s: float = 1.0,
               guests=None) -> pd.DataFrame:
    """One row per bin (index ``time_s``: the bin's start): each counter in ``columns`` summed
    over ``guests`` (default: all guests) and the bin's ticks, per second; each gauge the
    bin's mean of the guests' total. A tick's row at ``t`` covers the tick that ends at ``t``,
    so it falls in the bin of ``t - tick``."""
    rows = timeseries[timeseries["guest"] != "host"]
    if guests is not None:
        rows = rows[rows["guest"].isin(list(guests))]
    t = rows["t_ns"].drop_duplicates().sort_values().to_numpy()
    tick = int(np.diff(t).min()) if len(t) > 1 else 0
    total = rows.groupby("t_ns", sort=True)[list(columns)].sum().astype("float64")
    total = total.iloc[1:] if len(total) > 1 else total      # the first row covers no tick
    bins = ((total.index.to_numpy() - tick) // int(bin_s * 1e9)) * bin_s
    out = {}
    for c in columns:
        grouped = total[c].groupby(bins)
        out[c] = grouped.mean() if c in GAUGES else grouped.sum() / bin_s
    frame = pd.DataFrame(out)
    frame.index.name = "time_s"
    return frame


def rate_series(timeseries: pd.DataFrame, rate: Rate, bin_s: float = 1.0) -> pd.Series:
    """The series ``rate`` describes, per bin."""
    frame = per_second(timeseries, rate.columns, bin_s)
    return frame.sum(axis=1) * rate.scale


def rate_table(results: dict, rates, bin_s: float = 1.0) -> pd.DataFrame:
    """One row per run in ``results`` ({name: Results}), two columns per rate: its mean over
    the run's bins and its busiest bin (``<label> (<unit>)``, ``... peak``)."""
    rows = {}
    for name, r in results.items():
        row = {}
        for rate in rates:
            s = rate_series(r.timeseries, rate, bin_s)
            row[f"{rate.label} ({rate.unit})"] = float(s.mean())
            row[f"{rate.label}, peak"] = float(s.max())
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "run"
    return table
