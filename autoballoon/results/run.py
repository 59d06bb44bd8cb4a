"""One run: ``simulate`` a scenario under a policy, and its :class:`Results` — the per-run
summary and the per-tick time series (pandas, see control/recorder.py) and a manifest.

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
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import autoballoon
from autoballoon.control.loop import control_loop, load_scenario, resolve_policy
from autoballoon.control.policies.base import policy_name
from autoballoon.control.recorder import MIB, Recorder  # noqa: F401  (MIB: for callers)
from autoballoon.scenario.spec import Scenario

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


def _default_machine(scenario: Scenario, debug: bool = False):
    from autoballoon.machine import Machine      # numba: imported only when a run starts
    return Machine(scenario, debug=debug)


def simulate(scenario, policy=None, progress: bool = True, debug: bool = False, *,
             machine_factory=None) -> Results:
    """Run ``scenario`` (a Scenario, a path or TOML text) under ``policy`` and return Results.

    ``policy``: None (the scenario's ``[host] policy``), a name, or a Policy instance.
    ``debug`` checks the model's invariants after every tick (slow).
    ``machine_factory(scenario, debug=...)`` builds the machine (tests pass a fake).
    """
    scenario = load_scenario(scenario)
    policy = resolve_policy(scenario, policy)
    machine = (machine_factory or _default_machine)(scenario, debug=debug)
    recorder = Recorder(machine, scenario)
    wall0 = time.perf_counter()
    control_loop(scenario, machine, policy, recorder, progress)
    wall = time.perf_counter() - wall0
    timeseries, summary = recorder.frames(policy_name(policy))
    return Results(summary=summary, timeseries=timeseries,
                   manifest=make_manifest(scenario, policy, list(machine.names), wall))


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
