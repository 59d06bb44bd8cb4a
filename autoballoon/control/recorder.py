"""The per-tick record of a run and the per-run summary built from it (pandas).

``timeseries``: one row per tick and guest (and host): ``t_ns``, ``time_s``, ``guest``, gauges in
bytes (``target`` and ``actual`` in QEMU's meaning, ``balloon`` = pages in the balloon × 4 KiB,
``free``, ``available``, ``used``, ``anon``, ``file``, ``swap_used``), ``pressure`` (guest: last
vmpressure level; host: highest level reported in the tick; -1 = none) and the per-tick deltas of
every counter the machine reports (``Machine.vmstat``: /proc/vmstat's names, the balloon
driver's, ``stall_ns``, ``progress``; the host's ``Machine.host_vmstat``). The row at ``t`` shows
the state at ``t`` and the target the host set at ``t``.

``summary``: one row per guest plus one row with ``guest == "host"``: every counter over the run,
``stall_seconds``, ``final_actual_mib`` (QEMU's ``actual``: guest memory after ballooning),
time-weighted ``mean_balloon_mib`` / ``mean_used_mib``, ``max_used_mib``, ``policy``, and the
workload's completion: ``finish_s``, the simulated time at which its replay ended (a build's
last event and its stall; ``Machine.finished_ns``), and ``elapsed_s``, that less the time the
workload started (its ``start`` and ``start_jitter``: the build time) — missing (NaN) for a
workload still running at the end of the run, looping, or killed by an OOM killer. Values
that do not apply to a row (a guest's stall on the host row) are missing (``<NA>``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MIB = 2**20
# The summary's first columns, in this order; the other counters follow.
SUMMARY_FIRST = ("pswpin", "pswpout", "pgmajfault", "pgfault", "allocstall", "oom_kill",
                 "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
                 "workingset_refault", "balloon_inflate", "balloon_deflate")
FLOAT_COLUMNS = ("time_s", "stall_seconds", "final_actual_mib", "mean_balloon_mib",
                 "mean_used_mib", "max_used_mib", "finish_s", "elapsed_s")
TEXT_COLUMNS = ("guest", "policy")


class Recorder:
    """Collects one row per guest and one for the host at each tick; builds the frames."""

    def __init__(self, machine, scenario):
        self.machine, self.scenario = machine, scenario
        self.names = list(machine.names)
        self.ram = [machine.ram_size(g) for g in range(len(self.names))]
        self.rows: list[dict] = []
        self.prev: dict[str, dict[str, int]] = {}     # last cumulative counters, per row name
        self.first: dict[str, dict[str, int]] = {}

    def _deltas(self, name: str, counters: dict[str, int]) -> dict[str, int]:
        prev = self.prev.get(name)
        self.prev[name] = counters
        if prev is None:
            self.first[name] = counters
            return {k: 0 for k in counters}
        return {k: v - prev[k] for k, v in counters.items()}

    def record(self, now: int, target: list[int], events: tuple[int, ...]) -> None:
        m = self.machine
        balloon = 0
        for g, name in enumerate(self.names):
            mi = m.meminfo(g)
            balloon += mi["balloon_actual"]
            deltas = self._deltas(name, {k: int(v) for k, v in m.vmstat(g).items()})
            self.rows.append({
                "t_ns": now, "time_s": now / 1e9, "guest": name,
                "target": target[g], "actual": self.ram[g] - mi["balloon_actual"],
                "balloon": mi["balloon_actual"], "free": mi["MemFree"],
                "available": mi["MemAvailable"], "used": mi["MemTotal"] - mi["MemFree"],
                "anon": mi["AnonPages"], "file": mi["Active(file)"] + mi["Inactive(file)"],
                "swap_used": mi["SwapTotal"] - mi["SwapFree"], "pressure": mi["pressure"],
                **deltas})
        hm = m.host_meminfo()
        hv = {k: int(v) for k, v in m.host_vmstat().items()}
        deltas = self._deltas("host", hv)
        self.rows.append({
            "t_ns": now, "time_s": now / 1e9, "guest": "host",
            "balloon": balloon,
            "free": hm["MemFree"], "used": hm["Used"],
            "swap_used": hm["SwapTotal"] - hm["SwapFree"],
            "pressure": max(events) if events else -1, "pressure_events": len(events),
            **deltas})

    # --- building the frames ----------------------------------------------------------------
    def frames(self, name_of_policy: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(timeseries, summary)."""
        ts = _frame(self.rows)
        return ts, self._summary(ts, name_of_policy)

    def _summary(self, ts: pd.DataFrame, name_of_policy: str) -> pd.DataFrame:
        rows = []
        index = {name: g for g, name in enumerate(self.names)}
        for name in self.names + ["host"]:
            first, last = self.first[name], self.prev[name]
            row = {"guest": name, **{k: last[k] - first[k] for k in last}}
            mine = ts[ts["guest"] == name]
            if name != "host":
                row["stall_seconds"] = row.pop("stall_ns") / 1e9
                row["final_actual_mib"] = float(mine["actual"].iloc[-1]) / MIB
                row["mean_balloon_mib"] = time_mean(mine, "balloon") / MIB
                end = self.machine.finished_ns(index[name])
                start = self.machine.workload_start_ns(index[name])
                row["finish_s"] = np.nan if end is None else end / 1e9
                row["elapsed_s"] = np.nan if end is None else (end - start) / 1e9
            row["mean_used_mib"] = time_mean(mine, "used") / MIB
            row["max_used_mib"] = float(mine["used"].max()) / MIB
            row["policy"] = name_of_policy
            rows.append(row)
        first_cols = ["guest", "policy", *SUMMARY_FIRST, "stall_seconds", "progress",
                      "final_actual_mib", "mean_balloon_mib", "mean_used_mib", "max_used_mib",
                      "finish_s", "elapsed_s"]
        return _frame(rows, first_cols)


def time_mean(rows: pd.DataFrame, column: str) -> float:
    """Time-weighted mean of a gauge: each sample stands for the tick that ends at it."""
    t = rows["t_ns"].to_numpy(dtype=np.int64)
    v = rows[column].to_numpy(dtype=np.float64)
    if len(t) < 2:
        return float(v[0]) if len(v) else float("nan")
    w = np.diff(t).astype(np.float64)
    return float(np.sum(v[1:] * w) / np.sum(w))


def _frame(rows: list[dict], first_cols=()) -> pd.DataFrame:
    """Rows → DataFrame with stable dtypes: text, float64, or nullable Int64 (exact bytes)."""
    cols = [c for c in first_cols if any(c in r for r in rows)]
    for r in rows:
        cols.extend(c for c in r if c not in cols)
    data = {}
    for c in cols:
        values = [r.get(c) for r in rows]
        if c in TEXT_COLUMNS:
            data[c] = pd.Series(values, dtype="str")      # pandas 3: the string dtype
        elif c in FLOAT_COLUMNS:
            data[c] = pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        else:
            data[c] = pd.array([None if v is None else int(v) for v in values], dtype="Int64")
    return pd.DataFrame(data)


