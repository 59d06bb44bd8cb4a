"""Scenario files (TOML) → validated :class:`~autoballoon.scenario.spec.Scenario`.

::

    [run]                       # duration, tick, seed, slice
    duration = "70s"
    tick = "100ms"
    seed = 1
    [host]                      # memory, swap, policy, policy_params, stats_poll, fault, kswapd_scan
    memory = "4GiB"
    swap = "4GiB"               # or { size = "4GiB", read_latency = "100us", bandwidth = "500MiB/s" }
    policy = "qemu-auto"        # a registered name or "package.module:ClassName"
    policy_params = { inflate = "16MiB" }
    [[guest]]                   # one table per guest; `count` replicas become vm-0, vm-1, ...
    name = "vm"
    count = 4
    stagger = "10s"             # replica k's workload starts k x 10 s after its `start`
    memory = "1GiB"
    swap = "1GiB"
    kernel = "6.1"              # or "3.7" (the shrinker semantics the 2012 RFC ran on)
    features = ["stats_vq", "auto_balloon"]
    target = "768MiB"           # initial balloon target, QEMU's meaning (guest memory after)
    workload = { kind = "phases", phases = [ { length = "600MiB", duration = "40s", pattern = "seq" } ] }
    # or workload = { kind = "trace", path = "traces/x.parquet", speed = 1.0, loop = false }
    [[schedule]]                # host-set target changes: at, guest (name or group), target
    at = "30s"
    guest = "vm"
    target = "512MiB"

Sizes and durations take units (:mod:`autoballoon.units`). Every key is checked: an unknown key or
an impossible value raises :class:`ScenarioError` naming the file, the line (found by scanning the
text: tomllib gives no positions) and the key, before any simulation starts.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

from autoballoon.errors import SpecError
from autoballoon.scenario import settings as st
from autoballoon.scenario.spec import (
    GuestSpec, HostSpec, PhaseSpec, RunSpec, Scenario, ScheduleEntry, WorkloadSpec)
from autoballoon.scenario.values import fail, format_size, value_int, value_str
from autoballoon.units import parse_duration

TOP_KEYS = ("description", "run", "host", "guest", "schedule")
# keys besides each spec's own settings
GUEST_EXTRA = ("count", "stagger", "workload")
HOST_EXTRA = ("policy_params",)
WORKLOAD_ONLY = {"phases": ("phases", "mapping"),
                 "trace": ("path", "speed", "repeat", "fresh_files")}
MAX_REPLICAS = 4096         # `count`: a page-level machine of more guests is beyond this model


class ScenarioError(SpecError):
    """A scenario file that cannot be simulated; ``key`` and ``line`` say where (line may be None)."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None,
                 key: str | None = None):
        self.source, self.line, self.key = source, line, key
        where = source or "<scenario>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


def default_scenario_path() -> Path:
    """The bundled default scenario (package data ``autoballoon/scenario/library/default.toml``)."""
    return Path(str(resources.files("autoballoon.scenario") / "library" / "default.toml"))


def package_data_dirs() -> list[Path]:
    """Where relative trace paths are looked up after the scenario's own directory: the
    package's ``data/`` (installed) and the repository's top-level ``data/`` (a checkout)."""
    pkg = Path(__file__).resolve().parent.parent
    return [pkg / "data", pkg.parent / "data"]


def load_scenario(source, check=None) -> Scenario:
    """Parse a scenario from a path, or from TOML text (a string containing a newline or '=').

    ``check(scenario)`` may refuse the parsed scenario with a ``SpecError`` naming a key (the
    control layer checks the policy this way: :func:`autoballoon.load_scenario`); the error then
    gets the key's line too. A :class:`Scenario` is returned unchanged.
    """
    if isinstance(source, Scenario):
        return source
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and "=" not in source):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ScenarioError(f"cannot read scenario file ({e.strerror})", str(path)) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[:e.start].count(b"\n") + 1
            raise ScenarioError(f"expected a UTF-8 text file (TOML), got byte "
                                f"{data[e.start]:#04x} at offset {e.start}", str(path),
                                line) from None
        return parse_scenario(text, name=str(path), base_dir=path.resolve().parent, check=check)
    return parse_scenario(source, check=check)


def parse_scenario(text: str, name: str | None = None, base_dir: Path | None = None,
                   check=None) -> Scenario:
    """Parse scenario TOML ``text``; ``name`` is used in messages, ``base_dir`` for trace paths,
    ``check`` as in :func:`load_scenario`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        raise ScenarioError(f"not valid TOML: {e}", name, int(m.group(1)) if m else None) from None
    except RecursionError:
        raise ScenarioError("not valid TOML: arrays or tables nested too deeply", name) from None
    try:
        scenario = _Builder(data, name, base_dir or Path.cwd(), text).scenario()
        if check is not None:
            check(scenario)
        return scenario
    except SpecError as e:
        raise _located(e, name, text) from None


def _located(e: SpecError, name: str | None, text: str | None) -> ScenarioError:
    """``e`` with the file and the line of the key its message starts with."""
    if isinstance(e, ScenarioError):
        return e
    # messages look like "guest[1].workload.phases[0].pattern: expected ..."
    key = str(e).split(": ", 1)[0].split(" ", 1)[0]
    return ScenarioError(str(e), name, locate(text, key) if text else None, key)


def located(scenario: Scenario, e: SpecError) -> ScenarioError:
    """An error found after parsing (the machine's boot checks) with the scenario's file and
    the key's line, as the parser's own errors have them."""
    return _located(e, scenario.source, scenario.text)


# --- building the specs ---------------------------------------------------------------------

def _array_of_tables(value, where: str) -> list:
    if isinstance(value, dict):
        fail(where, f"an array of tables: write [[{where}]], not [{where}]", "a single table")
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        fail(where, f"an array of tables ([[{where}]])", value)
    return value


def _required(table: dict, key: str, where: str):
    if key not in table:
        raise SpecError(f"{where}.{key}: missing (required)")
    return table[key]


class _Builder:
    """Turns the parsed TOML dict into specs; every error names its TOML key path. The keys and
    readers of each table come from the spec classes' settings (scenario/settings.py)."""

    def __init__(self, data: dict, name: str | None, base_dir: Path, text: str | None = None):
        self.data, self.name, self.base_dir, self.text = data, name, base_dir, text

    def scenario(self) -> Scenario:
        d = self.data
        st.check_keys(d, TOP_KEYS, "scenario")
        if "description" in d:
            value_str(d["description"], "description")
        run = self.run(_required(d, "run", "scenario"))
        host = self.host(_required(d, "host", "scenario"))
        guests: list[GuestSpec] = []
        for i, table in enumerate(_array_of_tables(_required(d, "guest", "scenario"), "guest")):
            guests.extend(self.guest(table, f"guest[{i}]"))
        schedule = tuple(self.entry(t, f"schedule[{i}]", run, guests)
                         for i, t in enumerate(_array_of_tables(d.get("schedule", []), "schedule")))
        return Scenario(run=run, host=host, guests=tuple(guests), schedule=schedule,
                        source=self.name, raw=d, text=self.text)

    def run(self, t) -> RunSpec:
        st.check_keys(t, st.keys(RunSpec), "run")
        kw = st.parse_table(RunSpec, t, "run")
        if "tick" not in t and 0 < kw["duration_ns"] < RunSpec.tick_ns:
            kw["tick_ns"] = kw["duration_ns"]    # a short run implies a short tick
        if "slice" not in t and kw.get("tick_ns", RunSpec.tick_ns) < RunSpec.slice_ns:
            kw["slice_ns"] = kw["tick_ns"]       # a short tick implies a short slice
        return RunSpec(**kw, where="run")

    def host(self, t) -> HostSpec:
        st.check_keys(t, st.keys(HostSpec, HOST_EXTRA), "host")
        kw = st.parse_table(HostSpec, t, "host")
        if "policy_params" in t:
            if not isinstance(t["policy_params"], dict):
                fail("host.policy_params", "a table such as { inflate = \"16MiB\" }",
                     t["policy_params"])
            kw["policy_params"] = dict(t["policy_params"])
        return HostSpec(**kw, where="host")

    def guest(self, t, w: str) -> list[GuestSpec]:
        st.check_keys(t, st.keys(GuestSpec, GUEST_EXTRA), w)
        kw = st.parse_table(GuestSpec, t, w)
        kw["workload"] = self.workload(_required(t, "workload", w), f"{w}.workload")
        if "count" not in t:
            if "stagger" in t:
                fail(f"{w}.stagger", "a `count` of replicas to stagger", t["stagger"])
            return [GuestSpec(**kw, where=w)]
        count = value_int(t["count"], f"{w}.count")
        if not 1 <= count <= MAX_REPLICAS:
            ram = f"; {count:,} x {format_size(kw['memory'])} = {count * kw['memory'] / 2**40:.3g} " \
                  f"TiB of guest RAM" if count > 0 and "memory" in kw else ""
            fail(f"{w}.count", f"an integer in [1, {MAX_REPLICAS}] (replicas of this guest{ram})",
                 count)
        name = kw.pop("name")
        if not name:
            fail(f"{w}.name", "a non-empty name (the replicas are NAME-0, NAME-1, ...)", name)
        wl = kw.pop("workload")
        stagger = parse_duration(t.get("stagger", 0), f"{w}.stagger")
        return [GuestSpec(name=f"{name}-{k}", group=name, where=w, **kw,
                          workload=replace(wl, start_ns=wl.start_ns + k * stagger))
                for k in range(count)]

    def workload(self, t, w: str) -> WorkloadSpec:
        if not isinstance(t, dict):
            fail(w, "a table such as { kind = \"phases\", phases = [...] }", t)
        kind = value_str(t.get("kind", "phases"), f"{w}.kind")
        if kind not in WORKLOAD_ONLY:
            fail(f"{w}.kind", "'phases' or 'trace'", kind)
        other = WORKLOAD_ONLY["trace" if kind == "phases" else "phases"]
        st.check_keys(t, tuple(k for k in st.keys(WorkloadSpec, ("phases",)) if k not in other), w)
        kw = st.parse_table(WorkloadSpec, t, w, skip=("phases",))
        if kind == "phases":
            phases = _required(t, "phases", w)
            if not isinstance(phases, list) or not phases:
                fail(f"{w}.phases", "a non-empty list of tables", phases)
            kw["phases"] = tuple(self.phase(p, f"{w}.phases[{i}]") for i, p in enumerate(phases))
        else:
            _required(t, "path", w)
            kw["path"] = self.trace_path(kw["path"], f"{w}.path")
        return WorkloadSpec(**kw, where=w)

    def phase(self, t, w: str) -> PhaseSpec:
        st.check_keys(t, st.keys(PhaseSpec), w)
        return PhaseSpec(**st.parse_table(PhaseSpec, t, w), where=w)

    def trace_path(self, path: str, where: str) -> str:
        """Relative paths: the scenario's directory first, then the package's data/."""
        p = Path(path)
        candidates = [p] if p.is_absolute() else [self.base_dir / p] + [d / p for d in
                                                                       package_data_dirs()]
        for c in candidates:
            if c.is_file():
                found = c.resolve()
                break
        else:
            fail(where, "an existing trace file (looked in " +
                 ", ".join(str(c) for c in candidates) + ")", path)
        # Read the header (only the Parquet schema) now, so an envelope or a file that is not a
        # trace is refused here, naming the key, rather than part-way through the run.
        from autoballoon.trace.format import KIND_ACCESS, TraceError
        from autoballoon.trace.store import read_header
        try:
            kind = read_header(found)["kind"]
        except TraceError as e:
            raise SpecError(f"{where}: expected a page-access trace file: {e}") from None
        if kind != KIND_ACCESS:
            # read_header allows only 'access' and 'envelope'
            fail(where, f"a page-access trace, not a demand envelope (expand it first: "
                        f"`autoballoon trace expand {path} OUT --seed 1`)", path)
        return str(found)

    def entry(self, t, w: str, run: RunSpec, guests: list[GuestSpec]) -> ScheduleEntry:
        st.check_keys(t, st.keys(ScheduleEntry), w)
        kw = st.parse_table(ScheduleEntry, t, w)
        if kw["at_ns"] > run.duration_ns:
            fail(f"{w}.at", f"a time within run.duration ({run.duration_ns} ns)", t["at"])
        matched = [g for g in guests if kw["guest"] in (g.name, g.group)]
        if not matched:
            names = sorted({g.name for g in guests} | {g.group for g in guests if g.group})
            fail(f"{w}.guest", f"a guest or group name ({', '.join(names)})", kw["guest"])
        for g in matched:
            if not 0 < kw["target"] <= g.memory:
                fail(f"{w}.target", f"a size in (0, memory of {g.name} = {g.memory}]", t["target"])
        return ScheduleEntry(**kw, where=w)


# --- finding a key's line -----------------------------------------------------------------------

_TOKEN = re.compile(r"([A-Za-z0-9_\-]+)|\[(\d+)\]")


def _key_path(dotted: str) -> tuple:
    """``"guest[1].workload.phases[0].pattern"`` → ``("guest", 1, "workload", "phases", 0,
    "pattern")``."""
    return tuple(int(i) if i else k for k, i in _TOKEN.findall(dotted))


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _header_keys(text: str) -> tuple:
    return tuple(k.strip().strip("\"'") for k in text.split("."))


def locate(text: str, dotted: str) -> int | None:
    """1-based line of the key ``dotted`` (e.g. ``"guest[1].memory"``) in TOML ``text``.

    Good enough, not a TOML parser: finds the table the key lives in from the ``[x]``/``[[x]]``
    headers, then the first ``key =`` below it, key by key.
    """
    path = _key_path(dotted)
    if path[:1] == ("scenario",):
        path = path[1:]
    lines = [_strip_comment(s) for s in text.splitlines()]
    array_index: dict[tuple, int] = {}
    sections: list[tuple[tuple, int]] = [((), 0)]       # (concrete key path, first line index)

    def concrete(keys: tuple) -> tuple:
        out: list = []
        for k in keys:
            out.append(k)
            if tuple(out) in array_index:
                out.append(array_index[tuple(out)])
        return tuple(out)

    for i, line in enumerate(lines):
        s = line.strip()
        if m := re.fullmatch(r"\[\[\s*(.+?)\s*\]\]", s):
            keys = _header_keys(m.group(1))
            arr = concrete(keys[:-1]) + (keys[-1],)
            array_index[arr] = array_index.get(arr, -1) + 1
            sections.append((arr + (array_index[arr],), i))
        elif m := re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", s):
            sections.append((concrete(_header_keys(m.group(1))), i))
    best = max(((p, i, n) for n, (p, i) in enumerate(sections) if path[:len(p)] == p),
               key=lambda x: len(x[0]))
    sec_path, start, n = best
    end = sections[n + 1][1] if n + 1 < len(sections) else len(lines)
    found, pos, nth = (start if sec_path else None), start, 0
    for comp in path[len(sec_path):]:
        if isinstance(comp, int):
            nth = comp                      # the nth element: take the (n+1)th next key match
            continue
        pat = re.compile(r"(?:^|[\s{,.\"'])" + re.escape(comp) + r"[\"']?\s*[=.]")
        hits = [j for j in range(pos, end) if pat.search(lines[j])]
        if not hits:
            break
        pos = hits[min(nth, len(hits) - 1)]
        found, nth = pos, 0
    return None if found is None else found + 1
