"""Where the guests' time went: stall time by cause, from a run's counters.

The machine counts the time a guest's workload waits, per guest: ``stall_ns`` in all and, where
the model splits it, one ``stall_<cause>_ns`` counter per cause (minor fault, guest swap-in, host
swap-in, allocation stall, balloon lock, OOM, ...). They reach the summary (over the run) and the
time series (per tick) under the same names, except that the summary has the total as
``stall_seconds``. These functions read whichever ``stall_<cause>_ns`` columns a frame has, so
they work with any split (or none: then the total is one cause, ``all causes``).
"""
from __future__ import annotations

import re

import pandas as pd

_CAUSE = re.compile(r"^stall_(?P<cause>.+)_ns$")
UNSPLIT = "all_causes"         # the only "cause" when the model does not split stall time
OTHER = "other"                # the total minus the causes, when they do not add up to it


def stall_columns(frame: pd.DataFrame) -> dict[str, str]:
    """{cause: column} for every ``stall_<cause>_ns`` column of ``frame``, in column order."""
    return {m["cause"]: c for c in frame.columns if (m := _CAUSE.match(c))}


def _total_seconds(rows: pd.DataFrame) -> float:
    if "stall_seconds" in rows:
        return float(rows["stall_seconds"].sum())
    return float(rows["stall_ns"].sum()) / 1e9


def stall_by_cause(guest_rows: pd.DataFrame) -> dict[str, float]:
    """Stall seconds by cause, summed over the rows (a summary's guest rows, or time-series
    rows). Time in no cause counter (the total minus the causes, if any) is ``other``."""
    total = _total_seconds(guest_rows)
    columns = stall_columns(guest_rows)
    if not columns:
        return {UNSPLIT: total}
    causes = {cause: float(guest_rows[c].sum()) / 1e9 for cause, c in columns.items()}
    rest = total - sum(causes.values())
    if rest > 1e-6 * max(total, 1.0):
        causes[OTHER] = rest
    return causes


def stall_table(results: dict) -> pd.DataFrame:
    """One row per policy: guest time (s, summed over guests) by stall cause (``stall_<cause>_s``),
    the time not stalled (``not_stalled_s``: running, or idle after the workload ended) and the
    guest time in all (``guest_time_s``: guests x simulated duration)."""
    rows = {}
    for name, r in results.items():
        g = r.guest_summary()
        guest_seconds = len(g) * r.manifest["duration_ns"] / 1e9
        causes = stall_by_cause(g)
        rows[name] = {**{f"stall_{c}_s": round(v, 3) for c, v in causes.items()},
                      "not_stalled_s": round(guest_seconds - sum(causes.values()), 3),
                      "guest_time_s": round(guest_seconds, 3)}
    table = pd.DataFrame.from_dict(rows, orient="index").fillna(0.0)
    table.index.name = "policy"
    return table
