"""Parameter sweeps on Dask: many runs of one scenario with dotted-key overrides, written as one
Parquet dataset that a rerun resumes.

::

    df = sweep("scenario.toml",
               grid={"host.memory": ["512MiB", "640MiB"],
                     "host.policy_params.inflate": ["4MiB", "16MiB", "64MiB"]},
               policies=["static", "qemu-auto"], seeds=range(1, 6), out="results/sweep")

A *point* is one set of overrides (dotted TOML keys, scenario/document.py): the product of
``grid``'s lists, times the rows of ``zip`` (parallel lists, varied together), times ``sample``
(seeded random or Latin-hypercube points in ranges). Each point runs once per seed and policy,
as ``compare`` would run it (``static`` is each automatic policy's equal-inflate baseline at the
same point and seed). Every point is parsed and checked before any run starts.

Storage (``out/``): one ``run-<run id>.parquet`` per finished run — its summary rows (one per
guest and one ``guest == "host"``) with the point's id, every swept key as a column, the seed,
the policy, the run id — written atomically after its manifest (``_manifests/<run id>.json``).
The run id is the content hash of the resolved scenario, policy, trace files and code
(results/run.py), so a rerun skips every run whose file exists and runs only the rest.
``pandas.read_parquet(out)`` reads the dataset (files starting with ``_`` or ``.`` are not part
of it). A run that fails is recorded in ``_errors/<run id>.json`` and in the returned frame's
``error`` column, and does not stop the sweep; a rerun tries it again.

Execution: Dask distributed. With no ``client``/``scheduler``, a ``LocalCluster`` of single-threaded
worker processes, one per core; each worker process imports the model and loads the numba cache
once and then runs many points (the first worker compiles, if the cache is cold, before the
others start). A worker that dies has its runs rescheduled by Dask; the driver writes every result,
so nothing is written twice or half.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import sys
import time
import tomllib
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

import autoballoon
from autoballoon.control.policies import check_policy
from autoballoon.errors import SpecError
from autoballoon.results.compare import (
    Entry, equal_inflate_targets, plan, planned_run_id, policy_entries, run_entry)
from autoballoon.results.run import _atomic, clean_temporaries, code_hash, load_run_input
from autoballoon.scenario import settings as st
from autoballoon.scenario.document import parse_document, resolve, to_document
from autoballoon.scenario.parse import default_scenario_path, load_scenario
from autoballoon.scenario.spec import Scenario
from autoballoon.units import parse_duration, parse_size

__all__ = ["sweep", "Sample", "points", "load_sweep_file"]

PAGE = 4096


# --- points --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sample:
    """``n`` points in ``ranges`` ({key: (low, high)}): ``method`` "lhs" (Latin hypercube: each
    range cut in ``n`` strata, one point per stratum) or "random" (uniform), seeded. Ends that
    are sizes or durations give page-aligned bytes or whole nanoseconds, integers integers."""
    ranges: dict
    n: int
    method: str = "lhs"
    seed: int = 0

    def points(self) -> list[dict]:
        if self.method not in ("lhs", "random"):
            raise SpecError(f"sample.method: expected 'lhs' or 'random', got {self.method!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise SpecError(f"sample.n: expected an integer >= 1, got {self.n!r}")
        rng = np.random.default_rng(self.seed)
        columns = {}
        for key, bounds in self.ranges.items():
            low, high, make = _range(key, bounds)
            if self.method == "lhs":
                u = (rng.permutation(self.n) + rng.random(self.n)) / self.n
            else:
                u = rng.random(self.n)
            columns[key] = [make(low + x * (high - low)) for x in u]
        return [{k: columns[k][i] for k in columns} for i in range(self.n)]


def _range(key: str, bounds):
    """(low, high, value from a float) of a sample range, its kind told by its ends."""
    where = f"sample.ranges.{key}"
    if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2):
        raise SpecError(f"{where}: expected [low, high], got {bounds!r}")
    a, b = bounds
    if all(isinstance(v, str) for v in bounds):
        try:
            lo, hi = parse_size(a, where), parse_size(b, where)
            make = lambda x: int(x) // PAGE * PAGE            # noqa: E731
        except SpecError:
            lo, hi = parse_duration(a, where), parse_duration(b, where)
            make = lambda x: f"{int(x)}ns"                    # noqa: E731
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in bounds):
        lo, hi, make = a, b, lambda x: int(round(x))
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds):
        lo, hi, make = float(a), float(b), float
    else:
        raise SpecError(f"{where}: expected two numbers, two sizes or two durations, "
                        f"got {bounds!r}")
    if not lo <= hi:
        raise SpecError(f"{where}: expected low <= high, got {bounds!r}")
    return lo, hi, make


def _lists(table: dict | None, name: str) -> dict[str, list]:
    out = {}
    for key, values in (table or {}).items():
        if isinstance(values, (range, tuple)):
            values = list(values)
        if not isinstance(values, list) or not values:
            raise SpecError(f"{name}.{key}: expected a non-empty list of values, got {values!r}")
        out[key] = values
    return out


def points(grid=None, zip=None, sample=None) -> list[dict]:
    """The overrides of every point: product(grid) × rows of zip × sample points."""
    grid, zipped = _lists(grid, "grid"), _lists(zip, "zip")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise SpecError("zip: expected lists of one length, got "
                        + ", ".join(f"{k} ({len(v)})" for k, v in zipped.items()))
    seen = set(grid)
    for key in zipped:
        if key in seen:
            raise SpecError(f"zip.{key}: also in grid")
    sets = [[dict(_pairs(grid, combo)) for combo in itertools.product(*grid.values())]]
    if zipped:
        n = lengths.pop()
        sets.append([{k: v[i] for k, v in zipped.items()} for i in range(n)])
    if sample is not None:
        if isinstance(sample, dict):
            sample = Sample(**sample)
        sets.append(sample.points())
    return [{k: v for part in combo for k, v in part.items()}
            for combo in itertools.product(*sets)]


def _pairs(keys, values):
    return zip(keys, values)          # (points() has a parameter called zip)


def point_id(overrides: dict) -> str:
    return hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode()
                          ).hexdigest()[:12]


def _column(values: list):
    """A swept key's values as one Parquet-friendly type: as given if they share one scalar
    type, else text (so the dataset has one schema)."""
    types = {type(v) for v in values}
    if len(types) == 1 and types <= {int, float, str, bool}:
        return lambda v: v
    if types <= {int, float}:
        return float
    return lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True)


# --- the plan ------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """One run of a sweep: a point, a seed, a policy. ``key`` (the run id) is known once the
    run's scenario is (a baseline's, once its automatic run has finished). Runs of two points
    can be the same run (``none`` at two ``inflate`` values): it runs once, and each point gets
    its own file (``file_id``) of its rows."""
    index: int
    point: str
    values: dict
    seed: int
    entry: Entry
    scenario: Scenario
    key: str | None = None
    variant: Scenario | None = None
    params: dict | None = None
    parent: "Run | None" = None

    def plan(self, targets=None) -> None:
        self.variant, self.params, _ = plan(self.scenario, self.entry, targets)
        self.key = planned_run_id(self.variant, self.entry, self.params)

    @property
    def file_id(self) -> str:
        tag = hashlib.sha256(f"{self.point}|{self.entry.label}".encode()).hexdigest()[:8]
        return f"{self.key}-{tag}"

    def front(self) -> dict:
        """The columns that say which run a row is of."""
        return {"point": self.point, **self.values, "seed": self.seed,
                "policy": self.entry.label, "baseline_of": self.entry.baseline_of,
                "run_id": self.key}


def _plan_runs(base: Scenario, pts: list[dict], policies, seeds) -> list[Run]:
    doc = to_document(base)
    seeds = list(seeds) if seeds is not None else [base.run.seed]
    keys = list(dict.fromkeys(k for p in pts for k in p))
    columns = {k: _column([p[k] for p in pts if k in p]) for k in keys}
    runs: list[Run] = []
    for overrides in pts:
        pid = point_id(overrides)
        values = {k: columns[k](v) for k, v in overrides.items()}
        for seed in seeds:
            sc = resolve(doc, {**overrides, "run.seed": seed}, check=check_policy)
            entries = policy_entries(sc, policies if policies is not None else [sc.host.policy])
            for e in entries:
                if not isinstance(e.policy, (str, type)):
                    raise SpecError(f"policies.{e.label}: a sweep needs a policy name or class "
                                    f"(an instance is bound to one scenario and keeps state)")
            mine = [Run(len(runs) + i, pid, values, seed, e, sc) for i, e in enumerate(entries)]
            by_label = {r.entry.label: r for r in mine}
            for r in mine:
                r.parent = by_label.get(r.entry.baseline_of)
                if r.parent is None:
                    r.plan()
            runs.extend(mine)
    return runs


# --- storage -------------------------------------------------------------------------------

class Store:
    """The dataset directory: run files, manifests (one per run id), errors, the definition."""

    def __init__(self, out: Path):
        self.out = out
        self.manifests, self.errors = out / "_manifests", out / "_errors"

    def path(self, run: Run) -> Path:
        return self.out / f"run-{run.file_id}.parquet"

    def done(self, run: Run) -> bool:
        return run.key is not None and self.path(run).is_file()

    def manifest(self, key: str) -> dict:
        return json.loads((self.manifests / f"{key}.json").read_text())

    def rows_of(self, key: str) -> Path | None:
        """A stored file of run ``key`` (of any point), if there is one."""
        return next(iter(sorted(self.out.glob(f"run-{key}-*.parquet"))), None)

    def existing(self) -> set[str]:
        return {p.name[4:-8] for p in self.out.glob("run-*.parquet")}

    def claim(self, definition: dict, file_ids: set[str], force: bool) -> None:
        """Refuse a directory holding runs of another sweep (not among ``file_ids``) unless
        ``force``, which removes them."""
        from autoballoon.results.run import OutputError
        self.out.mkdir(parents=True, exist_ok=True)
        clean_temporaries(self.out)
        foreign = sorted(self.existing() - file_ids)
        if foreign and not force:
            raise OutputError(f"{self.out}: holds {len(foreign)} runs that are not part of this "
                              f"sweep (another sweep, or older code): choose another --out, or "
                              f"--force to remove them")
        for file_id in foreign:
            (self.out / f"run-{file_id}.parquet").unlink()
        for d in (self.manifests, self.errors):
            d.mkdir(exist_ok=True)
            clean_temporaries(d)
        text = json.dumps(definition, indent=2, sort_keys=True, default=str) + "\n"
        _atomic(self.out / "_sweep.json", lambda p: p.write_text(text))

    def write_manifest(self, key: str, manifest: dict) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
        _atomic(self.manifests / f"{key}.json", lambda p: p.write_text(text))

    def write_rows(self, run: Run, body: pd.DataFrame) -> None:
        """After the run's manifest: a run file in the dataset always has its manifest."""
        from autoballoon.results.run import write_parquet
        write_parquet(_rows(run, body), self.path(run), run.key)
        self.error_path(run).unlink(missing_ok=True)

    def error_path(self, run: Run) -> Path:
        return self.errors / f"{run.point}-{run.seed}-{run.entry.label}.json".replace(":", "_")

    def fail(self, run: Run, error: str) -> None:
        text = json.dumps({**run.front(), "error": error}, indent=2, default=str) + "\n"
        _atomic(self.error_path(run), lambda p: p.write_text(text))


def _rows(run: Run, body: pd.DataFrame) -> pd.DataFrame:
    """The dataset rows of one run: the point's columns in front of its summary ``body``."""
    front = run.front()
    n = len(body)
    data = {}
    for k, v in front.items():
        if v is None or isinstance(v, str):
            data[k] = pd.Series([v] * n, dtype="str")
        else:
            data[k] = pd.Series([v] * n)
    body = body.drop(columns=[c for c in front if c in body.columns]).reset_index(drop=True)
    return pd.concat([pd.DataFrame(data), body], axis=1)


# --- on the workers ------------------------------------------------------------------------

def execute(variant: Scenario, entry: Entry, params, machine_factory=None) -> dict:
    """Run one sweep run (on a worker): its summary, manifest, and, for an automatic policy,
    the equal-inflate targets its baselines need (the time series stays on the worker)."""
    cpu0 = time.process_time()
    results = run_entry(variant, entry, params, False, machine_factory)
    targets = equal_inflate_targets(results, variant) if entry.automatic else None
    return {"summary": results.summary, "manifest": results.manifest, "targets": targets,
            "pid": os.getpid(), "cpu_seconds": time.process_time() - cpu0}


def warm_up() -> int:
    """Import the model and load (or compile) the numba kernels in this worker process."""
    from autoballoon.results.run import simulate
    from autoballoon.scenario.parse import parse_scenario
    simulate(parse_scenario(WARM_UP), "none", progress=False)
    return os.getpid()


WARM_UP = """
[run]
duration = "20ms"
tick = "10ms"
[host]
memory = "32MiB"
reserved = 0
kernel_memory = 0
[[guest]]
name = "w"
memory = "16MiB"
reserved = 0
kernel_memory = 0
swap = "16MiB"
workload = { kind = "phases", phases = [ { length = "8MiB", passes = 1 } ] }
"""


# --- the driver ----------------------------------------------------------------------------

def _client(client, scheduler, workers):
    """(client, cluster to close or None)."""
    from dask.distributed import Client, LocalCluster
    if client is not None:
        return client, None
    if scheduler is not None:
        return Client(scheduler), "client"
    dashboard = ":0" if _has_bokeh() else None
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=dashboard)
    return Client(cluster), cluster


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _warm_workers(client) -> None:
    """One worker first (it compiles the kernels if the cache is cold, once), then the rest
    load the cache in parallel."""
    client.wait_for_workers(1)
    addresses = sorted(client.run(os.getpid))          # {address: pid} of every worker
    if addresses:
        client.submit(warm_up, workers=addresses[:1], pure=False).result()
        client.run(warm_up)


def sweep(scenario=None, grid=None, *, zip=None, sample=None, set=None, policies=None,
          seeds=None, out="results/sweep", client=None, scheduler=None, workers=None,
          progress: bool = True, force: bool = False, machine_factory=None) -> pd.DataFrame:
    """Run every point × seed × policy on Dask; return the tidy frame (one row per run and
    guest, and the host row), as stored in ``out`` (see the module docstring).

    ``scenario``: a path, TOML text or a Scenario (default: the bundled one); ``set``: overrides
    for every point; ``policies``: names, classes or ``{policy: params}`` as in ``compare``
    (default: the scenario's own); ``seeds``: run seeds (default: the scenario's seed);
    ``client``: a ``dask.distributed.Client``, or ``scheduler="tcp://HOST:PORT"``; else a local
    cluster of ``workers`` processes (default: one per core). ``machine_factory``: tests only.
    The frame's ``attrs``: runs, reused (already stored), failed.
    """
    base = load_run_input(scenario or default_scenario_path(), set)
    pts = points(grid, zip, sample) or [{}]
    runs = _plan_runs(base, pts, policies, seeds)          # every point checked before any run
    store = Store(Path(out))
    definition = {"scenario": to_document(base), "points": pts,
                  "seeds": sorted({r.seed for r in runs}),
                  "policies": list(dict.fromkeys(r.entry.label for r in runs)),
                  "code_hash": code_hash(), "package_version": autoballoon.__version__}
    store.claim(definition, _known_file_ids(runs, store), force)
    todo = [r for r in runs if not store.done(r)]
    failed: dict[int, str] = {}
    if todo:
        _execute(todo, store, failed, client, scheduler, workers, progress, machine_factory,
                 total=len(runs))
    df = read_runs(store, runs, failed)
    df.attrs.update(runs=len(runs), reused=len(runs) - len(todo), failed=len(failed))
    return df


def _known_file_ids(runs: list[Run], store: Store) -> set[str]:
    """The files of this sweep that can be named now: every run's whose id is known, and a
    baseline's whose automatic run is stored (its targets are in that run's manifest)."""
    for r in runs:
        if r.parent is not None and store.done(r.parent):
            r.plan(_targets(store.manifest(r.parent.key)))
    return {r.file_id for r in runs if r.key is not None}


def _targets(manifest: dict) -> dict[str, int] | None:
    targets = manifest["sweep"]["baseline_targets"]
    return None if targets is None else {k: int(v) for k, v in targets.items()}


def _execute(todo, store, failed, client, scheduler, workers, progress, machine_factory,
             total) -> None:
    """Submit each distinct run once; write every run's rows as its result comes in; plan and
    submit a baseline when its automatic run is done."""
    from dask.distributed import as_completed
    from tqdm import tqdm
    client, owned = _client(client, scheduler, workers)
    try:
        if progress and owned is not None and _has_bokeh():
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        if machine_factory is None:
            _warm_workers(client)
        bar = tqdm(total=total, initial=total - len(todo), desc="sweep", unit="run",
                   disable=not progress)
        children: dict[int, list[Run]] = {}
        waiting: dict[str, list[Run]] = {}          # run id -> the runs that wait for it
        pending = as_completed()

        def finish(run: Run, targets, error: str | None = None) -> None:
            if error is not None:
                failed[run.index] = error
                store.fail(run, error)
            bar.update(1)
            for child in children.pop(run.index, []):
                if error is not None:
                    finish(child, None, f"its automatic run ({run.entry.label}) failed")
                else:
                    child.plan(targets)
                    start(child)

        def start(run: Run) -> None:
            if store.done(run):
                return finish(run, _targets(store.manifest(run.key)))
            stored = store.rows_of(run.key)
            if stored is not None:                  # the same run, stored for another point
                store.write_rows(run, pd.read_parquet(stored).loc[:, "guest":])
                return finish(run, _targets(store.manifest(run.key)))
            if run.key in waiting:
                waiting[run.key].append(run)
                return
            waiting[run.key] = [run]
            pending.add(client.submit(execute, run.variant, run.entry, run.params,
                                      machine_factory, key=f"autoballoon-run-{run.key}",
                                      pure=False))

        for r in todo:
            if r.key is None:
                children.setdefault(r.parent.index, []).append(r)
        for r in todo:
            if r.key is not None:
                start(r)
        for f in pending:
            key = f.key.removeprefix("autoballoon-run-")
            group = waiting.pop(key)
            try:
                got = f.result()
                _store_result(store, group, got)
            except Exception as e:                  # a failed run: recorded, the sweep goes on
                for run in group:
                    finish(run, None, _describe(e))
                continue
            for run in group:
                finish(run, got["targets"])
        bar.close()
    finally:
        if owned is not None:                       # a client given to us stays open
            client.close()
            if owned != "client":
                owned.close()


def _store_result(store: Store, group: list[Run], got: dict) -> None:
    manifest = got["manifest"]
    key = group[0].key
    if manifest["run_id"] != key:
        raise RuntimeError(f"the worker's run id {manifest['run_id']} is not the planned {key}: "
                           f"does the worker run other autoballoon code (its code hash "
                           f"{manifest.get('code_hash')}, here {code_hash()})?")
    manifest["sweep"] = {"baseline_targets": got["targets"], "worker_pid": got["pid"],
                         "cpu_seconds": round(got["cpu_seconds"], 3)}
    store.write_manifest(key, manifest)
    for run in group:
        store.write_rows(run, got["summary"])


def _describe(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()


def read_runs(store: Store, runs: list[Run], failed: dict[int, str]) -> pd.DataFrame:
    """The stored rows of ``runs`` in plan order, and one row with ``error`` per failed run."""
    frames = []
    for r in runs:
        if store.done(r) and r.index not in failed:
            frames.append(pd.read_parquet(store.path(r)))
        else:
            frames.append(pd.DataFrame([{**r.front(), "error": failed.get(r.index, "not run")}]))
    df = pd.concat(frames, ignore_index=True)
    if "error" not in df.columns:
        df["error"] = pd.Series([None] * len(df), dtype="str")
    return df


# --- SWEEP.toml ----------------------------------------------------------------------------

SWEEP_KEYS = ("scenario", "policies", "seeds", "set", "grid", "zip", "sample")


def _flatten(table: dict, prefix: str = "") -> dict:
    """``{"host": {"memory": [...]}}`` (unquoted dotted TOML keys) → ``{"host.memory": ...}``."""
    out = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_sweep_file(path) -> dict:
    """The keyword arguments of :func:`sweep` from a sweep file::

        scenario = "default"          # bundled name, a path (relative to this file), or a
                                      # [scenario] table holding a whole scenario
        policies = ["static", "qemu-auto"]    # or [policies] qemu-auto = { inflate = "16MiB" }
        seeds = [1, 2, 3, 4, 5]       # or a count: seeds = 5 (1..5)
        [set]                         # overrides for every point
        "run.duration" = "10s"
        [grid]                        # every combination
        "host.memory" = ["512MiB", "640MiB"]
        "host.policy_params.inflate" = ["4MiB", "16MiB", "64MiB"]
        [zip]                         # lists varied together
        [sample]                      # n points: method = "lhs" or "random", seed
        n = 8
        ranges = { "guest.vm.swappiness" = [0, 100] }
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise SpecError(f"{path}: cannot read sweep file ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: expected a UTF-8 text file (TOML), got byte "
                        f"{e.object[e.start]:#04x} at offset {e.start}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise SpecError(f"{path}: not valid TOML: {e or 'nested too deeply'}") from None
    try:
        return _sweep_args(data, path)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


def _sweep_args(data: dict, path: Path) -> dict:
    st.check_keys(data, SWEEP_KEYS, "sweep")
    scenario = data.get("scenario", "default")
    if isinstance(scenario, dict):
        scenario = parse_document(scenario, name=f"{path}[scenario]", base_dir=path.parent,
                                  check=check_policy)
    elif isinstance(scenario, str):
        p = path.parent / scenario
        library = default_scenario_path().parent / f"{scenario}.toml"
        scenario = p if p.is_file() else library if library.is_file() else p
        load_scenario(scenario)                 # a missing file is an error naming it, now
    else:
        raise SpecError(f"sweep.scenario: expected a path, a bundled name or a table, "
                        f"got {scenario!r}")
    seeds = data.get("seeds")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(1, seeds + 1))
    elif seeds is not None and not (isinstance(seeds, list) and seeds and
                                    all(isinstance(s, int) for s in seeds)):
        raise SpecError(f"sweep.seeds: expected a list of integers or a count, got {seeds!r}")
    policies = data.get("policies")
    if policies is not None and not isinstance(policies, (list, dict)):
        raise SpecError(f"sweep.policies: expected a list of names or a table of "
                        f"{{name = {{params}}}}, got {policies!r}")
    sample = data.get("sample")
    if sample is not None:
        st.check_keys(sample, ("n", "method", "seed", "ranges"), "sample")
        sample = Sample(ranges=_flatten(sample.get("ranges", {})), n=sample.get("n", 0),
                        method=sample.get("method", "lhs"), seed=sample.get("seed", 0))
    return {"scenario": scenario, "policies": policies, "seeds": seeds,
            "set": _flatten(data.get("set", {})), "grid": _flatten(data.get("grid", {})),
            "zip": _flatten(data.get("zip", {})), "sample": sample}
