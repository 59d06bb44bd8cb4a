"""Run one scenario under several host policies and tabulate what each one costs and saves.

An honest comparison needs a static baseline that inflates by the same amount as the automatic
run: otherwise the gain of inflating at all is credited to auto-deflating. So the automatic
policies (a policy class says whether it is one: ``automatic = False`` marks a baseline) run first,
and ``static`` then holds each guest's balloon fixed, from t = 0, at that guest's time-averaged
balloon in the automatic run (the *equal-inflate* baseline). With several automatic policies each
gets its own, labelled ``static@<policy>``. ``none`` runs with the scenario's initial targets
removed: no ballooning at all. Both baselines run without the guest AUTO_BALLOON feature (a static
balloon must not deflate itself). Any other policy runs the scenario as written, except that its
guests get the features the policy's real deployment has (``Policy.guest_features``: e.g.
deflate_on_oom for ``libvirt-autodeflate``, no 2012 ``auto_balloon`` shrinker for the shipped
daemons). The table's ``note`` column says which is which.

Policies are names, Policy classes or instances; ``{policy: params}`` gives each its parameters
(the scenario's ``policy_params`` go to the scenario's own policy unless given). With ``out``,
each policy's results are saved as soon as it finishes and a rerun of the same comparison resumes:
the runs already saved are loaded, not run again (see :func:`prepare_output`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from autoballoon.control.policies import MIN_TARGET, POLICIES, fit_guest_features, make_policy
from autoballoon.control.policies.base import check_params
from autoballoon.control.recorder import MIB, time_mean
from autoballoon.errors import SpecError
from autoballoon.results.run import (
    OutputError, Results, _atomic, clean_temporaries, code_hash, load, manifest_run_id,
    policy_ref, run_document, run_id, save, simulate, trace_files)
from autoballoon.scenario.document import to_document
from autoballoon.results.stalls import UNSPLIT, stall_by_cause
from autoballoon.scenario.parse import load_scenario
from autoballoon.scenario.spec import PAGE_SIZE, Scenario

DEFAULT_POLICIES = ("none", "static", "qemu-auto")
RUN_FILES = ("manifest.json", "summary.parquet", "timeseries.parquet", "scenario.toml")


# --- which policies, with what ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of a comparison: ``policy`` is a registered name, a Policy class or an instance;
    ``params`` None for an instance (it has its own); ``baseline_of`` names the automatic policy
    whose equal-inflate baseline this static run is."""
    label: str
    policy: Any
    params: dict | None
    automatic: bool
    baseline_of: str | None = None

    @property
    def cls(self) -> type:
        return _class_of(self.policy)


def _class_of(policy) -> type:
    if isinstance(policy, str):
        from autoballoon.control.policies import policy_class
        return policy_class(policy, where="policies")
    return policy if isinstance(policy, type) else type(policy)


def _is(entry_or_cls, name: str) -> bool:
    cls = entry_or_cls.cls if isinstance(entry_or_cls, Entry) else entry_or_cls
    return cls is POLICIES.get(name)


def policy_entries(scenario: Scenario, policies) -> list[Entry]:
    """Normalise ``policies`` (names, classes, instances, or ``{policy: params}``), check every
    parameter against its policy before anything runs, and add one equal-inflate ``static`` per
    automatic policy."""
    items = list(policies.items()) if isinstance(policies, dict) else [(p, None) for p in policies]
    base: list[Entry] = []
    for policy, params in items:
        cls = _class_of(policy)
        label = policy if isinstance(policy, str) else policy_ref(policy)
        if not isinstance(policy, (str, type)):
            label = getattr(policy, "name", None) or label
            if params:
                raise SpecError(f"policies.{label}: an instance takes no parameters (pass its "
                                f"class with the parameters instead)")
        elif params is None:
            params = dict(scenario.host.policy_params) if label == scenario.host.policy else {}
        else:
            check_params(cls, params, where=f"policies.{label}")
        if any(e.label == label for e in base):
            continue
        base.append(Entry(label, policy, None if params is None else dict(params),
                          bool(getattr(cls, "automatic", True))))
    for e in base:              # parameter values: build each policy once, before any run
        if e.params is not None:  # (on the guests it will run with: see plan)
            try:
                build_policy(fit_guest_features(scenario, e.cls)[0], e.policy, e.params,
                             e.label)
            except SpecError as err:
                raise SpecError(f"policies.{e.label}: {err}") from None
    autos = [e for e in base if e.automatic]
    out = []
    for e in base:
        if _is(e, "static") and not e.params and autos:
            out.extend(dataclasses.replace(e, label="static" if len(autos) == 1 else
                                           f"static@{a.label}", baseline_of=a.label)
                       for a in autos)
        else:
            out.append(e)
    return out


def build_policy(scenario: Scenario, policy, params: dict | None, label: str | None = None):
    """A policy object for ``scenario``: from a name (``make_policy``), a class with ``params``,
    or an instance (used as it is)."""
    if isinstance(policy, str):
        return make_policy(scenario, policy, params or {})
    if not isinstance(policy, type):
        return policy
    params = dict(params or {})
    check_params(policy, params, where=f"policies.{label or policy_ref(policy)}")
    obj = policy(scenario, **params)
    obj.params = params                       # for the manifest
    if not getattr(obj, "name", None) or obj.name == "base":
        obj.name = label or policy_ref(policy)
    return obj


# --- the baselines ---------------------------------------------------------------------------

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


def plan(scenario: Scenario, entry: Entry, targets: dict[str, int] | None = None):
    """(scenario variant, policy params, note) for running ``entry``; ``targets``: the
    equal-inflate targets of the automatic policy a ``static@`` entry is the baseline of."""
    if _is(entry, "none"):
        return (_baseline(scenario, {g.name: None for g in scenario.guests}), {},
                "no ballooning (initial targets removed)")
    if entry.baseline_of is not None:
        total = sum(g.memory - targets[g.name] for g in scenario.guests) / MIB
        return (_baseline(scenario, targets), {"targets": targets},
                f"equal-inflate baseline: each balloon fixed at its time-average under "
                f"{entry.baseline_of} ({total:.0f} MiB in all; guest auto_balloon off)")
    if _is(entry, "static"):
        return scenario, entry.params, "fixed targets from the scenario"
    variant, fitted = fit_guest_features(scenario, entry.cls)
    note = "automatic" if entry.automatic else "baseline"
    return variant, entry.params, "; ".join(filter(None, (note, fitted)))


def planned_run_id(variant: Scenario, entry: Entry, params) -> str:
    """The id the run of ``entry`` on ``variant`` will have (see results/run.py)."""
    policy = build_policy(variant, entry.policy, params, entry.label)
    return run_id(run_document(variant, policy), trace_files(variant))


# --- running ---------------------------------------------------------------------------------

def run_entry(variant: Scenario, entry: Entry, params, progress: bool = False,
              machine_factory=None) -> Results:
    policy = build_policy(variant, entry.policy, params, entry.label)
    return simulate(variant, policy, progress=progress, machine_factory=machine_factory)


def _run_all(jobs: list, progress: bool, workers: int, machine_factory, on_done) -> None:
    """Run ``jobs`` [(entry, variant, params)], calling ``on_done(entry, results)`` as each
    finishes (so it can be saved at once)."""
    if workers <= 1 or len(jobs) <= 1:
        for e, v, p in jobs:
            on_done(e, run_entry(v, e, p, progress, machine_factory))
        return
    # Separate processes give the same results as one (each run builds its own machine from
    # the scenario and seed); "spawn" avoids forking a process that has numba state.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_entry, v, e, p, False, machine_factory): e for e, v, p in jobs}
        for f in as_completed(futures):
            on_done(futures[f], f.result())


def _dir_name(label: str) -> str:
    return label.replace(":", "_").replace("/", "_")


def compare(scenario, policies=DEFAULT_POLICIES, progress: bool = True, workers: int = 1, *,
            out=None, force: bool = False,
            machine_factory=None) -> tuple[pd.DataFrame, dict[str, Results]]:
    """Run ``scenario`` under each policy; return (table, {label: Results}) in ``policies`` order.

    ``workers`` > 1 runs independent policies in parallel processes (results are identical).
    ``out``: save each policy's results in ``out/<label>/`` as it finishes, and the table as
    ``out/compare.csv`` once all are there; a rerun of the same comparison loads the runs already
    saved. A directory holding another comparison is refused unless ``force``.
    """
    scenario = load_scenario(scenario)
    entries = policy_entries(scenario, policies)
    cid = compare_id(scenario, entries)
    if out is not None:
        out = prepare_output(Path(out), cid, scenario, entries, force)
    done: dict[str, Results] = {}
    notes: dict[str, str] = {}

    def finished(entry: Entry, results: Results) -> None:
        if out is not None:
            save(results, out / _dir_name(entry.label), force=True)   # the comparison owns it
        done[entry.label] = results

    for group in ([e for e in entries if e.baseline_of is None],
                  [e for e in entries if e.baseline_of is not None]):
        jobs = []
        for e in group:
            targets = (equal_inflate_targets(done[e.baseline_of], scenario)
                       if e.baseline_of else None)
            variant, params, notes[e.label] = plan(scenario, e, targets)
            saved = _saved(out, e, variant, params)
            if saved is not None:
                done[e.label] = saved
            else:
                jobs.append((e, variant, params))
        _run_all(jobs, progress, workers, machine_factory, finished)
    results = {e.label: done[e.label] for e in entries}
    table = summary_table(results, notes)
    table.attrs["compare_id"] = cid
    if out is not None:
        csv = table.assign(compare_id=cid, run_id=[r.run_id for r in results.values()])
        _atomic(out / "compare.csv", lambda p: csv.to_csv(p))
    return table, results


# --- the output directory ------------------------------------------------------------------

def compare_id(scenario: Scenario, entries: list[Entry]) -> str:
    """Content hash of a comparison: the resolved scenario, the policies with their parameters,
    and the code (as in a run id)."""
    blob = json.dumps({"scenario": to_document(scenario),
                       "policies": [(e.label, policy_ref(e.cls), e.params) for e in entries],
                       "code": code_hash()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _saved(out: Path | None, entry: Entry, variant: Scenario, params) -> Results | None:
    """The saved results of this exact run in ``out``, if a previous attempt finished it."""
    if out is None or not isinstance(entry.policy, (str, type)):
        return None
    d = out / _dir_name(entry.label)
    if manifest_run_id(d) != planned_run_id(variant, entry, params):
        return None
    try:
        return load(d)
    except (OSError, OutputError, ValueError):
        return None


def prepare_output(out: Path, cid: str, scenario: Scenario, entries: list[Entry],
                   force: bool) -> Path:
    """Claim ``out`` for comparison ``cid``: resume if it is this comparison's, refuse it if it
    holds another one (or runs of unknown origin) unless ``force``, which removes them. The old
    table goes first, so a table never stands beside runs it does not describe."""
    meta = out / "compare.json"
    old = json.loads(meta.read_text()) if meta.is_file() else None
    if old is not None and old.get("compare_id") == cid:
        (out / "compare.csv").unlink(missing_ok=True)
    else:
        stale = _foreign_files(out, old)
        if stale and not force:
            what = (f"another comparison ({old['compare_id']}, seed {old.get('seed')})"
                    if old else "results of another run")
            raise OutputError(f"{out}: holds {what}; this comparison is {cid}: choose another "
                              f"--out, or --force to replace it")
        for p in stale:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out)
    text = json.dumps({"compare_id": cid, "seed": scenario.run.seed, "code_hash": code_hash(),
                       "policies": [e.label for e in entries],
                       "scenario": to_document(scenario)}, indent=2, default=str) + "\n"
    _atomic(meta, lambda p: p.write_text(text))
    return out


def _foreign_files(out: Path, old: dict | None) -> list[Path]:
    """What belongs to a previous comparison (or looks like results) in ``out``: its table,
    figure and metadata, and every subdirectory holding a run's files."""
    if not out.is_dir():
        return []
    found = [out / n for n in ("compare.csv", "compare.png", "compare.json") if (out / n).exists()]
    names = {_dir_name(label) for label in (old or {}).get("policies", [])}
    for d in out.iterdir():
        if d.is_dir() and (d.name in names or any((d / f).exists() for f in RUN_FILES)):
            found.append(d)
    return found


# --- the table -------------------------------------------------------------------------------

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
        "equal-inflate baseline (same average balloon per guest as that automatic policy; "
        "static@NAME with several); balloon_reversals counts the drivers' changes between "
        "inflating and deflating.")
    return table


def _int(value):
    return None if value is None or pd.isna(value) else int(value)
