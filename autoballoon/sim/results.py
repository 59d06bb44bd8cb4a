"""Results of one run: a per-run summary and a per-tick time series (pandas), and a manifest.

``summary``: one row per guest plus one row with ``guest == "host"``; counters named after the
kernel's (``pswpin``, ``pswpout``, ``pgmajfault``, ...), counted over the run, plus
``stall_seconds``, ``progress`` (accesses completed), ``final_actual_mib`` (QEMU's ``actual``:
guest memory after ballooning), time-weighted ``mean_balloon_mib`` / ``mean_used_mib``, the balloon
driver's counters, and ``policy``. Values that do not apply to a row (a guest's stall on the host
row) are missing (``<NA>``).

``timeseries``: one row per tick and guest (and host): ``t_ns``, ``time_s``, ``guest``, gauges in
bytes (``target`` and ``actual`` in QEMU's meaning, ``balloon`` = pages in the balloon × 4 KiB,
``free``, ``available``, ``used``, ``anon``, ``file``, ``swap_used``), ``pressure`` (guest: last
vmpressure level; host: highest level reported in the tick; -1 = none) and per-tick deltas of the
counters, ``stall_ns`` and ``progress``. The row at ``t`` shows the state at ``t`` and the target
the host set at ``t``.

``save(results, dir)`` writes ``summary.parquet``, ``timeseries.parquet`` and ``manifest.json``,
each atomically (temporary file + ``os.replace``), the manifest last: a directory with a manifest
is complete. ``load(dir)`` reads them back.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import autoballoon
from autoballoon.host.policies.base import policy_name

MIB = 2**20

# Guest counters recorded per tick (deltas) and per run (totals); names as in /proc/vmstat.
GUEST_COUNTERS = ("pswpin", "pswpout", "pgmajfault", "pgfault", "allocstall", "oom_kill",
                  "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
                  "workingset_refault", "balloon_inflate", "balloon_deflate")
# virtio_balloon driver counters (Machine.balloon_counters) besides the pages it moved, which
# are balloon_inflate/balloon_deflate above; summary only
DRIVER_COUNTERS = ("shrinker_calls", "shrinker_busy", "reversals", "out_of_puff")
FLOAT_COLUMNS = ("time_s", "stall_seconds", "final_actual_mib", "mean_balloon_mib",
                 "mean_used_mib", "max_used_mib")
TEXT_COLUMNS = ("guest", "policy")


@dataclass
class Results:
    summary: pd.DataFrame
    timeseries: pd.DataFrame
    manifest: dict

    @property
    def policy(self) -> str:
        return self.manifest["policy"]["name"]

    @property
    def guests(self) -> list[str]:
        return list(self.manifest["guests"])

    def guest_summary(self) -> pd.DataFrame:
        return self.summary[self.summary["guest"] != "host"]

    def host_summary(self) -> pd.Series:
        return self.summary[self.summary["guest"] == "host"].iloc[0]


class Recorder:
    """Collects one row per guest and one for the host at each tick; builds Results."""

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
            mi, vm = m.meminfo(g), m.vmstat(g)
            balloon += mi["balloon_actual"]
            counters = {k: int(vm[k]) for k in GUEST_COUNTERS}
            counters["stall_ns"] = int(mi["stall_ns"])
            counters["progress"] = int(mi["progress"])
            counters.update({k: int(v) for k, v in m.balloon_counters(g).items()
                             if k in DRIVER_COUNTERS})
            deltas = self._deltas(name, counters)
            self.rows.append({
                "t_ns": now, "time_s": now / 1e9, "guest": name,
                "target": target[g], "actual": self.ram[g] - mi["balloon_actual"],
                "balloon": mi["balloon_actual"], "free": mi["MemFree"],
                "available": mi["MemAvailable"], "used": mi["MemTotal"] - mi["MemFree"],
                "anon": mi["AnonPages"], "file": mi["Active(file)"] + mi["Inactive(file)"],
                "swap_used": mi["SwapTotal"] - mi["SwapFree"], "pressure": mi["pressure"],
                **{k: deltas[k] for k in GUEST_COUNTERS}, "stall_ns": deltas["stall_ns"],
                "progress": deltas["progress"]})
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
    def results(self, policy, wall_seconds: float = float("nan")) -> Results:
        ts = _frame(self.rows)
        summary = self._summary(ts, policy_name(policy))
        return Results(summary=summary, timeseries=ts,
                       manifest=make_manifest(self.scenario, policy, self.names,
                                              wall_seconds))

    def _summary(self, ts: pd.DataFrame, name_of_policy: str) -> pd.DataFrame:
        rows = []
        for name in self.names + ["host"]:
            first, last = self.first[name], self.prev[name]
            row = {"guest": name, **{k: last[k] - first[k] for k in last}}
            mine = ts[ts["guest"] == name]
            if name != "host":
                row["stall_seconds"] = row.pop("stall_ns") / 1e9
                row["final_actual_mib"] = float(mine["actual"].iloc[-1]) / MIB
                row["mean_balloon_mib"] = time_mean(mine, "balloon") / MIB
            row["mean_used_mib"] = time_mean(mine, "used") / MIB
            row["max_used_mib"] = float(mine["used"].max()) / MIB
            row["policy"] = name_of_policy
            rows.append(row)
        first_cols = ["guest", "policy", *GUEST_COUNTERS, "stall_seconds", "progress",
                      "final_actual_mib", "mean_balloon_mib", "mean_used_mib", "max_used_mib"]
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


# --- manifest ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """``git rev-parse HEAD`` of the package's checkout (with ``-dirty`` if it has changes)."""
    repo = Path(autoballoon.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def make_manifest(scenario, policy, names, wall_seconds: float) -> dict:
    return {
        "format": 1,
        "scenario": scenario.raw,
        "source": scenario.source,
        "seed": scenario.run.seed,
        "duration_ns": scenario.run.duration_ns,
        "tick_ns": scenario.run.tick_ns,
        "guests": list(names),
        # the initial targets this run used (compare changes them for none/static)
        "initial_targets": {g.name: g.target for g in scenario.guests},
        "policy": {"name": policy_name(policy), "params": getattr(policy, "params", {})},
        "package_version": autoballoon.__version__,
        "git_revision": git_revision(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 3),
    }


# --- save / load ---------------------------------------------------------------------------------

def _atomic(path: Path, write) -> None:
    """Write via ``write(tmp)`` then rename over ``path``: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save(results: Results, directory) -> Path:
    """Write ``summary.parquet``, ``timeseries.parquet`` and (last) ``manifest.json``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    # Overwriting: drop the old manifest first, so that a save interrupted half-way leaves a
    # directory that load() refuses rather than one mixing old and new files.
    (d / "manifest.json").unlink(missing_ok=True)
    _atomic(d / "summary.parquet", lambda p: results.summary.to_parquet(p, index=False))
    _atomic(d / "timeseries.parquet", lambda p: results.timeseries.to_parquet(p, index=False))
    text = json.dumps(results.manifest, indent=2, sort_keys=True, default=str) + "\n"
    _atomic(d / "manifest.json", lambda p: p.write_text(text))
    return d


def load(directory) -> Results:
    d = Path(directory)
    manifest_path = d / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{d}: no manifest.json (not a results directory, or an "
                                f"interrupted save)")
    return Results(summary=pd.read_parquet(d / "summary.parquet"),
                   timeseries=pd.read_parquet(d / "timeseries.parquet"),
                   manifest=json.loads(manifest_path.read_text()))
