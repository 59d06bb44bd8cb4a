"""One run: ``simulate`` a scenario under a policy, and its :class:`Results` — the per-run
summary and the per-tick time series (pandas, see control/recorder.py) and a manifest.

The manifest describes the run that happened, not the file it started from: the resolved scenario
(``to_document``: every default written out, the seed, the policy that ran and its parameters),
the trace files' sha256, the package version and a hash of the model's sources. Its ``run_id`` is
a content hash of all of that, so two runs with the same id give the same numbers; every file of a
saved run carries it.

``save(results, dir)`` writes ``summary.parquet``, ``timeseries.parquet``, ``scenario.toml`` (the
resolved scenario: ``autoballoon run DIR/scenario.toml`` or ``autoballoon run DIR/manifest.json``
reproduces the run) and ``manifest.json``, each atomically (temporary file + ``os.replace``), the
manifest last: a directory with a manifest is complete. It refuses a directory that holds another
run unless ``force=True``. ``load(dir)`` reads a run back and checks that its files belong together.
"""
from __future__ import annotations

import copy
import datetime as _dt
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import autoballoon
from autoballoon.control.loop import control_loop, load_scenario, resolve_policy
from autoballoon.control.policies import POLICIES, check_policy
from autoballoon.control.policies.base import policy_name
from autoballoon.control.recorder import MIB, Recorder  # noqa: F401  (MIB: for callers)
from autoballoon.errors import SpecError
from autoballoon.scenario.document import dumps, parse_document, resolve, to_document
from autoballoon.scenario.spec import Scenario

MANIFEST_FORMAT = 2
# The sources whose code decides a run's numbers: a change to any of them changes every run id.
MODEL_SOURCES = ("machine", "control", "scenario", "trace", "uapi.py", "units.py", "enums.py",
                 "errors.py", "results/run.py")
RUN_ID_KEY = b"autoballoon.run_id"          # Parquet schema metadata of every saved table


class OutputError(Exception):
    """An output directory that holds something else (another run), or files that disagree."""

@dataclass
class Results:
    summary: pd.DataFrame
    timeseries: pd.DataFrame
    manifest: dict

    @property
    def policy(self) -> str:
        return self.manifest["policy"]["name"]

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

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


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """sha256 (16 hex digits) of the model's sources (``MODEL_SOURCES``), as installed."""
    pkg = Path(autoballoon.__file__).resolve().parent
    h = hashlib.sha256()
    for name in MODEL_SOURCES:
        p = pkg / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def trace_files(scenario: Scenario) -> dict[str, dict]:
    """{absolute path: {sha256, bytes}} of the scenario's trace files."""
    out = {}
    for g in scenario.guests:
        if g.workload.kind == "trace" and g.workload.path not in out:
            st = os.stat(g.workload.path)
            out[g.workload.path] = {"sha256": _file_sha256(g.workload.path, st.st_size,
                                                           st.st_mtime_ns),
                                    "bytes": st.st_size}
    return out


def policy_ref(policy) -> str:
    """How a scenario names ``policy``'s class: its registered name, else "module:Class"."""
    cls = policy if isinstance(policy, type) else type(policy)
    name = getattr(cls, "name", None)
    if name and POLICIES.get(name) is cls:
        return name
    return f"{cls.__module__}:{cls.__qualname__}"


def run_document(scenario: Scenario, policy) -> dict:
    """The resolved scenario with the policy that ran (and its parameters) as its own."""
    doc = to_document(scenario)
    doc["host"]["policy"] = policy_ref(policy)
    doc["host"].pop("policy_params", None)
    params = getattr(policy, "params", None)
    if params:
        doc["host"]["policy_params"] = copy.deepcopy(dict(params))
    return doc


def run_id(document: dict, traces: dict) -> str:
    """Content hash of what decides a run's numbers: its resolved scenario (with the policy and
    seed), the trace files' contents, the package version and the model's sources."""
    blob = json.dumps({"scenario": document, "traces": {p: t["sha256"] for p, t in traces.items()},
                       "version": autoballoon.__version__, "code": code_hash()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_manifest(scenario, policy, names, wall_seconds: float) -> dict:
    doc = run_document(scenario, policy)
    traces = trace_files(scenario)
    params = getattr(policy, "params", None)
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id(doc, traces),
        "scenario": doc,
        "source": scenario.source,
        "seed": scenario.run.seed,
        "duration_ns": scenario.run.duration_ns,
        "tick_ns": scenario.run.tick_ns,
        "guests": list(names),
        # the initial targets this run used (compare changes them for none/static)
        "initial_targets": {g.name: g.target for g in scenario.guests},
        # params None: an instance built in code, whose parameters are not known
        "policy": {"name": policy_name(policy), "ref": policy_ref(policy),
                   "params": None if params is None else dict(params)},
        "traces": traces,
        "package_version": autoballoon.__version__,
        "code_hash": code_hash(),
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 3),
    }


def scenario_from_manifest(manifest: dict, name: str = "manifest.json") -> Scenario:
    """The scenario a manifest's run ran, refused if a trace file changed or its policy's
    parameters are unknown; a note on stderr if the model's code differs from the run's."""
    if manifest.get("format", 1) < MANIFEST_FORMAT:
        raise SpecError(f"{name}: written by an older autoballoon whose manifests describe the "
                        f"scenario file, not the run; it cannot be reproduced from the manifest")
    if manifest["policy"].get("params") is None:
        raise SpecError(f"{name}: the run's policy {manifest['policy']['ref']!r} was an object "
                        f"built in code, so its parameters are unknown")
    for path, want in manifest.get("traces", {}).items():
        try:
            st = os.stat(path)
            have = _file_sha256(path, st.st_size, st.st_mtime_ns)
        except OSError as e:
            raise SpecError(f"{name}: trace {path}: {e.strerror} (moved since the run?)") from None
        if have != want["sha256"]:
            raise SpecError(f"{name}: trace {path} changed since the run (sha256 {have[:12]}..., "
                            f"the run read {want['sha256'][:12]}...)")
    if manifest.get("code_hash") != code_hash():
        print(f"autoballoon: note: {name}: the model's code differs from the run's "
              f"(code {manifest.get('code_hash')} then, {code_hash()} now; version "
              f"{manifest.get('package_version')} then): numbers may differ", file=sys.stderr)
    return parse_document(manifest["scenario"], name=name, check=check_policy)


def load_run_input(path, overrides: dict | None = None) -> Scenario:
    """A scenario from a TOML file, a saved run's ``manifest.json``, or a results directory,
    with dotted ``overrides`` (``{"run.seed": 5}``) applied and checked."""
    if isinstance(path, Scenario) or (isinstance(path, str) and ("\n" in path or "=" in path)):
        return with_overrides(load_scenario(path), overrides)       # a Scenario, or TOML text
    path = Path(path)
    if path.is_dir() and (path / "manifest.json").is_file():
        path = path / "manifest.json"
    if path.suffix == ".json":
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SpecError(f"{path}: not a readable manifest ({e})") from None
        scenario = scenario_from_manifest(manifest, str(path))
    else:
        scenario = load_scenario(path)
    return with_overrides(scenario, overrides)


def with_overrides(scenario: Scenario, overrides: dict | None) -> Scenario:
    """``scenario`` with dotted-key overrides applied to its resolved document and re-parsed."""
    if not overrides:
        return scenario
    return resolve(to_document(scenario), overrides, name=scenario.source, check=check_policy)


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_temporaries(directory) -> list[Path]:
    """Remove the ``.NAME.tmp-PID`` files of saves that were killed (SIGKILL/SIGTERM leave them:
    ``_atomic`` cleans up only when Python unwinds). A file whose process still runs stays."""
    removed = []
    for p in Path(directory).glob(".*.tmp-*"):
        pid = p.name.rpartition(".tmp-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def write_parquet(frame: pd.DataFrame, path: Path, run_id_: str) -> None:
    """``frame`` as Parquet (atomically) with the run id in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           RUN_ID_KEY: run_id_.encode()})
    _atomic(path, lambda p: pq.write_table(table, p))


def parquet_run_id(path: Path) -> str | None:
    import pyarrow.parquet as pq
    meta = pq.read_schema(path).metadata or {}
    value = meta.get(RUN_ID_KEY)
    return value.decode() if value else None


def manifest_run_id(directory) -> str | None:
    """The run id of a complete saved run in ``directory`` (None: no manifest)."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("run_id", "(no id: an older autoballoon)")
    except ValueError:
        return "(unreadable manifest)"


def save(results: Results, directory, force: bool = False) -> Path:
    """Write ``summary.parquet``, ``timeseries.parquet``, ``scenario.toml`` and (last)
    ``manifest.json``. A directory holding another run is refused unless ``force``."""
    d = Path(directory)
    rid = results.run_id
    other = manifest_run_id(d)
    if other is not None and other != rid and not force:
        raise OutputError(f"{d}: holds another run ({other}; this one is {rid}): choose another "
                          f"directory, or force (--force) to replace it")
    d.mkdir(parents=True, exist_ok=True)
    clean_temporaries(d)
    # Overwriting: drop the old manifest first, so that a save interrupted half-way leaves a
    # directory that load() refuses rather than one mixing old and new files.
    (d / "manifest.json").unlink(missing_ok=True)
    write_parquet(results.summary, d / "summary.parquet", rid)
    write_parquet(results.timeseries, d / "timeseries.parquet", rid)
    header = (f"autoballoon run {rid}: the resolved scenario of this run (every default written).\n"
              f"`autoballoon run scenario.toml --out DIR` reproduces it.")
    text = dumps(results.manifest["scenario"], header=header)
    _atomic(d / "scenario.toml", lambda p: p.write_text(text))
    text = json.dumps(results.manifest, indent=2, sort_keys=True, default=str) + "\n"
    _atomic(d / "manifest.json", lambda p: p.write_text(text))
    return d


def load(directory) -> Results:
    """A saved run; refused if it is incomplete or its files come from different runs."""
    d = Path(directory)
    manifest_path = d / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{d}: no manifest.json (not a results directory, or an "
                                f"interrupted save)")
    manifest = json.loads(manifest_path.read_text())
    for name in ("summary.parquet", "timeseries.parquet"):
        found = parquet_run_id(d / name)
        if manifest.get("run_id") is not None and found != manifest["run_id"]:
            raise OutputError(f"{d / name}: belongs to run {found}, not to this directory's run "
                              f"{manifest['run_id']}")
    return Results(summary=pd.read_parquet(d / "summary.parquet"),
                   timeseries=pd.read_parquet(d / "timeseries.parquet"),
                   manifest=manifest)
