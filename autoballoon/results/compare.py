"""Run one scenario under several host policies and tabulate what each one costs and saves.

An honest comparison needs a static baseline that inflates by the same amount as the automatic
run: otherwise the gain of inflating at all is credited to auto-deflating. So the
automatic policies run first, and ``static`` then holds each guest's balloon fixed, from t = 0, at
that guest's time-averaged balloon in the first automatic run (the *equal-inflate* baseline).
``none`` runs with the scenario's initial targets removed: no ballooning at all. Both baselines
run without the guest AUTO_BALLOON feature (a static balloon must not deflate itself). Any other
policy runs the scenario as written. The table's ``note`` column says which is which.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from autoballoon.control.policies import MIN_TARGET, make_policy
from autoballoon.results.run import simulate
from autoballoon.control.recorder import MIB, time_mean
from autoballoon.results.run import Results
from autoballoon.results.stalls import UNSPLIT, stall_by_cause
from autoballoon.scenario.parse import load_scenario
from autoballoon.scenario.spec import PAGE_SIZE, Scenario

BASELINES = ("none", "static")
DEFAULT_POLICIES = ("none", "static", "qemu-auto")


def is_automatic(name: str) -> bool:
    return name not in BASELINES


def equal_inflate_targets(auto: Results, scenario: Scenario) -> dict[str, int]:
    """Per guest, QEMU target = RAM - the guest's time-averaged balloon in ``auto`` (page-aligned)."""
    ts = auto.timeseries
    targets = {}
    for g in scenario.guests:
        balloon = int(time_mean(ts[ts["guest"] == g.name], "balloon")) // PAGE_SIZE * PAGE_SIZE
        targets[g.name] = max(MIN_TARGET, g.memory - balloon)
    return targets


def _baseline(scenario: Scenario, targets: dict[str, int | None]) -> Scenario:
    """The scenario with these initial targets and without the guest AUTO_BALLOON feature: a
    baseline's balloon must stay where the host put it (no deflating from the shrinker)."""
    guests = tuple(dataclasses.replace(g, target=targets[g.name],
                                       features=g.features - {"auto_balloon"})
                   for g in scenario.guests)
    return dataclasses.replace(scenario, guests=guests)


def _plan(scenario: Scenario, name: str, reference: Results | None):
    """(scenario variant, policy params, note) for running ``name`` in a comparison."""
    if name == "none":
        return (_baseline(scenario, {g.name: None for g in scenario.guests}), {},
                "no ballooning (initial targets removed)")
    if name == "static" and reference is not None:
        targets = equal_inflate_targets(reference, scenario)
        total = sum(g.memory - targets[g.name] for g in scenario.guests) / MIB
        return (_baseline(scenario, targets), {"targets": targets},
                f"equal-inflate baseline: each balloon fixed at its time-average under "
                f"{reference.policy} ({total:.0f} MiB in all; guest auto_balloon off)")
    params = scenario.host.policy_params if name == scenario.host.policy else {}
    note = "fixed targets from the scenario" if name == "static" else "automatic"
    return scenario, params, note


def _run(scenario: Scenario, name: str, params: dict, progress: bool, machine_factory):
    policy = make_policy(scenario, name, params)
    return simulate(scenario, policy, progress=progress, machine_factory=machine_factory)


def _run_all(jobs: list, progress: bool, workers: int, machine_factory) -> list[Results]:
    if workers <= 1 or len(jobs) <= 1:
        return [_run(s, n, p, progress, machine_factory) for s, n, p in jobs]
    # Separate processes give the same results as one (each run builds its own machine from
    # the scenario and seed); "spawn" avoids forking a process that has numba state.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run, s, n, p, False, machine_factory) for s, n, p in jobs]
        return [f.result() for f in futures]


def compare(scenario, policies=DEFAULT_POLICIES, progress: bool = True, workers: int = 1, *,
            machine_factory=None) -> tuple[pd.DataFrame, dict[str, Results]]:
    """Run ``scenario`` under each policy; return (table, {policy: Results}) in ``policies`` order.

    ``workers`` > 1 runs independent policies in parallel processes (results are identical).
    """
    scenario = load_scenario(scenario)
    policies = list(dict.fromkeys(policies))
    autos = [p for p in policies if is_automatic(p)]
    done: dict[str, Results] = {}
    notes: dict[str, str] = {}
    for group in (autos, [p for p in policies if not is_automatic(p)]):
        reference = done[autos[0]] if autos and autos[0] in done else None
        jobs = []
        for name in group:
            variant, params, notes[name] = _plan(scenario, name, reference)
            jobs.append((variant, name, params))
        done.update(zip(group, _run_all(jobs, progress, workers, machine_factory)))
    results = {p: done[p] for p in policies}
    return summary_table(results, notes), results


def summary_table(results: dict[str, Results], notes: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per policy: guest and host swap, major faults, guest and host OOM kills, stalls
    (in all, and by cause where the model splits them), progress, mean host memory used, mean
    total balloon, balloon churn. Guest figures are sums over guests."""
    rows = []
    for name, r in results.items():
        g, h = r.guest_summary(), r.host_summary()
        rows.append({
            "policy": name,
            "guest_pswpin": int(g["pswpin"].sum()), "guest_pswpout": int(g["pswpout"].sum()),
            "guest_pgmajfault": int(g["pgmajfault"].sum()),
            "guest_oom_kill": int(g["oom_kill"].sum()),
            "host_pswpin": _int(h.get("pswpin")), "host_pswpout": _int(h.get("pswpout")),
            "host_oom_kill": _int(h.get("oom_kill")),            # VMs the host killed
            "stall_s": round(float(g["stall_seconds"].sum()), 3),
            **{f"stall_{cause}_s": round(v, 3) for cause, v in stall_by_cause(g).items()
               if cause != UNSPLIT},
            "progress": int(g["progress"].sum()),
            "mean_host_used_mib": round(float(h["mean_used_mib"]), 1),
            "mean_balloon_mib": round(float(g["mean_balloon_mib"].sum()), 1),
            # churn: the driver's inflate<->deflate direction changes, and the pages it moved
            "balloon_reversals": int(g["balloon_reversals"].sum()),
            "balloon_moved_mib": round(float((g["balloon_inflate"].sum()
                                              + g["balloon_deflate"].sum()) * PAGE_SIZE / MIB), 1),
            "note": (notes or {}).get(name, ""),
        })
    table = pd.DataFrame(rows).set_index("policy")
    table.attrs["caption"] = (
        "Swap in pages, summed over guests (guest_*) or the host's own (host_*); stall_s and "
        "progress summed over guests; 'static' with an automatic policy in the comparison is the "
        "equal-inflate baseline (same average balloon per guest as the first automatic policy); "
        "balloon_reversals counts the drivers' changes between inflating and deflating.")
    return table


def _int(value):
    return None if value is None or pd.isna(value) else int(value)
