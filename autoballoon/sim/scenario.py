"""Scenario files (TOML) → validated :class:`~autoballoon.sim.spec.Scenario`.

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

import difflib
import os
import re
import tomllib
from importlib import resources
from pathlib import Path

from autoballoon.sim.spec import (GuestSpec, HostSpec, PhaseSpec, RunSpec, Scenario,
                                  ScheduleEntry, SpecError, SwapSpec, WorkloadSpec)
from autoballoon.units import parse_duration, parse_rate, parse_size

TOP_KEYS = ("description", "run", "host", "guest", "schedule")
RUN_KEYS = ("duration", "tick", "seed", "slice")
HOST_KEYS = ("memory", "swap", "policy", "policy_params", "stats_poll", "fault", "kswapd_scan")
SWAP_KEYS = ("size", "read_latency", "write_latency", "bandwidth")
GUEST_KEYS = ("name", "count", "memory", "swap", "kernel", "features", "target", "workload",
              "swappiness", "watermark_scale_factor", "slab", "auto_balloon_variant",
              "kswapd_scan")
WORKLOAD_KEYS = {"phases": ("kind", "phases", "mapping", "loop", "start", "seed"),
                 "trace": ("kind", "path", "speed", "loop", "start", "seed")}
PHASE_KEYS = ("length", "offset", "pattern", "duration", "passes", "think", "write_fraction",
              "alpha")
SCHEDULE_KEYS = ("at", "guest", "target")


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
    """The bundled default scenario (package data ``autoballoon/scenarios/default.toml``)."""
    return Path(str(resources.files("autoballoon") / "scenarios" / "default.toml"))


def package_data_dirs() -> list[Path]:
    """Where relative trace paths are looked up after the scenario's own directory: the
    package's ``data/`` (installed) and the repository's top-level ``data/`` (a checkout)."""
    pkg = Path(__file__).resolve().parent.parent
    return [pkg / "data", pkg.parent / "data"]


def load_scenario(source) -> Scenario:
    """Parse a scenario from a path, or from TOML text (a string containing a newline or '=').

    A :class:`Scenario` is returned unchanged.
    """
    if isinstance(source, Scenario):
        return source
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and "=" not in source):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as e:
            raise ScenarioError(f"cannot read scenario file ({e.strerror})", str(path)) from None
        return parse_scenario(text, name=str(path), base_dir=path.resolve().parent)
    return parse_scenario(source)


def parse_scenario(text: str, name: str | None = None, base_dir: Path | None = None) -> Scenario:
    """Parse scenario TOML ``text``; ``name`` is used in messages, ``base_dir`` for trace paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        raise ScenarioError(f"not valid TOML: {e}", name, int(m.group(1)) if m else None) from None
    try:
        return _Builder(data, name, base_dir or Path.cwd()).scenario()
    except ScenarioError:
        raise
    except SpecError as e:
        # messages look like "guest[1].workload.phases[0].pattern: expected ..."
        key = str(e).split(": ", 1)[0].split(" ", 1)[0]
        raise ScenarioError(str(e), name, locate(text, key), key) from None


# --- building the specs ---------------------------------------------------------------------

def _fail(where: str, expected: str, got) -> None:
    raise SpecError(f"{where}: expected {expected}, got {got!r}")


def _check_keys(table, allowed, where: str) -> None:
    if not isinstance(table, dict):
        _fail(where, "a table", table)
    for key in table:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise SpecError(f"{where}.{key}: unknown key ({hint}expected one of: "
                            f"{', '.join(allowed)})")


def _int(value, where: str, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, "an integer", value)
    if lo is not None and value < lo:
        _fail(where, f"an integer >= {lo}", value)
    return value


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, "a number", value)
    return float(value)


def _str(value, where: str) -> str:
    if not isinstance(value, str):
        _fail(where, "a string (in quotes)", value)
    return value


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, "true or false", value)
    return value


def _array_of_tables(value, where: str) -> list:
    if isinstance(value, dict):
        _fail(where, f"an array of tables: write [[{where}]], not [{where}]", "a single table")
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        _fail(where, f"an array of tables ([[{where}]])", value)
    return value


def _seed(value, where: str) -> int:
    return _int(value, where, 0)


def _optional(t: dict, w: str, fields: dict) -> dict:
    """The optional keys present in table ``t``, parsed: ``{toml key: (spec field, parser)}``,
    each parser called as ``parser(value, "where.key")`` so its error names the key."""
    return {field: parse(t[key], f"{w}.{key}")
            for key, (field, parse) in fields.items() if key in t}


def _required(table: dict, key: str, where: str):
    if key not in table:
        raise SpecError(f"{where}.{key}: missing (required)")
    return table[key]


class _Builder:
    """Turns the parsed TOML dict into specs; every error names its TOML key path."""

    def __init__(self, data: dict, name: str | None, base_dir: Path):
        self.data, self.name, self.base_dir = data, name, base_dir

    def scenario(self) -> Scenario:
        d = self.data
        _check_keys(d, TOP_KEYS, "scenario")
        run = self.run(_required(d, "run", "scenario"))
        host = self.host(_required(d, "host", "scenario"))
        guests: list[GuestSpec] = []
        for i, table in enumerate(_array_of_tables(_required(d, "guest", "scenario"), "guest")):
            guests.extend(self.guest(table, f"guest[{i}]"))
        schedule = tuple(self.entry(t, f"schedule[{i}]", run, guests)
                         for i, t in enumerate(_array_of_tables(d.get("schedule", []), "schedule")))
        scenario = Scenario(run=run, host=host, guests=tuple(guests), schedule=schedule,
                            source=self.name, raw=d)
        # Build the policy once so a bad name or parameter fails now, not mid-run.
        from autoballoon.host.policies import make_policy
        make_policy(scenario)
        return scenario

    def run(self, t) -> RunSpec:
        _check_keys(t, RUN_KEYS, "run")
        kw = {"duration_ns": parse_duration(_required(t, "duration", "run"), "run.duration"),
              **_optional(t, "run", {"tick": ("tick_ns", parse_duration), "seed": ("seed", _seed),
                                     "slice": ("slice_ns", parse_duration)})}
        if "slice" not in t and kw.get("tick_ns", RunSpec.tick_ns) < RunSpec.slice_ns:
            kw["slice_ns"] = kw["tick_ns"]       # a short tick implies a short slice
        return RunSpec(**kw, where="run")

    def swap(self, value, where: str) -> SwapSpec:
        if not isinstance(value, dict):
            return SwapSpec(size=parse_size(value, where), where=where)
        _check_keys(value, SWAP_KEYS, where)
        kw = _optional(value, where, {
            "size": ("size", parse_size),
            "read_latency": ("read_latency_ns", parse_duration),
            "write_latency": ("write_latency_ns", parse_duration),
            "bandwidth": ("bandwidth", parse_rate)})
        return SwapSpec(**kw, where=where)

    def host(self, t) -> HostSpec:
        _check_keys(t, HOST_KEYS, "host")
        kw = {"memory": parse_size(_required(t, "memory", "host"), "host.memory")}
        if "swap" in t:
            kw["swap"] = self.swap(t["swap"], "host.swap")
        kw.update(_optional(t, "host", {
            "policy": ("policy", _str), "stats_poll": ("stats_poll_ns", parse_duration),
            "fault": ("fault_ns", parse_duration), "kswapd_scan": ("kswapd_scan_ns", parse_duration)}))
        if "policy_params" in t:
            if not isinstance(t["policy_params"], dict):
                _fail("host.policy_params", "a table such as { inflate = \"16MiB\" }",
                      t["policy_params"])
            kw["policy_params"] = dict(t["policy_params"])
        return HostSpec(**kw, where="host")

    def guest(self, t, w: str) -> list[GuestSpec]:
        _check_keys(t, GUEST_KEYS, w)
        name = _str(_required(t, "name", w), f"{w}.name")
        kw = {"memory": parse_size(_required(t, "memory", w), f"{w}.memory"),
              "workload": self.workload(_required(t, "workload", w), f"{w}.workload")}
        if "swap" in t:
            kw["swap"] = self.swap(t["swap"], f"{w}.swap")
        if "kernel" in t:
            kernel = t["kernel"]
            if not isinstance(kernel, str):
                _fail(f"{w}.kernel", 'a string: kernel = "6.1" or "3.7"', kernel)
            kw["kernel"] = kernel
        if "features" in t:
            feats = t["features"]
            if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats):
                _fail(f"{w}.features", 'a list of strings such as ["stats_vq"]', feats)
            kw["features"] = frozenset(feats)
        kw.update(_optional(t, w, {
            "target": ("target", parse_size), "swappiness": ("swappiness", _int),
            "watermark_scale_factor": ("watermark_scale_factor", _int),
            "slab": ("slab", parse_size), "auto_balloon_variant": ("auto_balloon_variant", _str),
            "kswapd_scan": ("kswapd_scan_ns", parse_duration)}))
        if "count" not in t:
            return [GuestSpec(name=name, **kw, where=w)]
        count = _int(t["count"], f"{w}.count", 1)
        return [GuestSpec(name=f"{name}-{k}", group=name, **kw, where=w) for k in range(count)]

    def workload(self, t, w: str) -> WorkloadSpec:
        if not isinstance(t, dict):
            _fail(w, "a table such as { kind = \"phases\", phases = [...] }", t)
        kind = _str(t.get("kind", "phases"), f"{w}.kind")
        if kind not in WORKLOAD_KEYS:
            _fail(f"{w}.kind", "'phases' or 'trace'", kind)
        _check_keys(t, WORKLOAD_KEYS[kind], w)
        kw = {"kind": kind}
        if kind == "phases":
            phases = _required(t, "phases", w)
            if not isinstance(phases, list) or not phases:
                _fail(f"{w}.phases", "a non-empty list of tables", phases)
            kw["phases"] = tuple(self.phase(p, f"{w}.phases[{i}]") for i, p in enumerate(phases))
            if "mapping" in t:
                kw["mapping"] = parse_size(t["mapping"], f"{w}.mapping")
        else:
            kw["path"] = self.trace_path(_str(_required(t, "path", w), f"{w}.path"), f"{w}.path")
            if "speed" in t:
                kw["speed"] = _number(t["speed"], f"{w}.speed")
        kw.update(_optional(t, w, {"loop": ("loop", _bool), "start": ("start_ns", parse_duration),
                                   "seed": ("seed", _seed)}))
        return WorkloadSpec(**kw, where=w)

    def phase(self, t, w: str) -> PhaseSpec:
        _check_keys(t, PHASE_KEYS, w)
        kw = {"length": parse_size(_required(t, "length", w), f"{w}.length"),
              **_optional(t, w, {
                  "offset": ("offset", parse_size), "pattern": ("pattern", _str),
                  "duration": ("duration_ns", parse_duration), "passes": ("passes", _int),
                  "think": ("think_ns", parse_duration),
                  "write_fraction": ("write_fraction", _number), "alpha": ("alpha", _number)})}
        return PhaseSpec(**kw, where=w)

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
            _fail(where, "an existing trace file (looked in " +
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
            _fail(where, f"a page-access trace, not a demand envelope (expand it first: "
                         f"`autoballoon trace expand {path} OUT --seed 1`)", path)
        return str(found)

    def entry(self, t, w: str, run: RunSpec, guests: list[GuestSpec]) -> ScheduleEntry:
        _check_keys(t, SCHEDULE_KEYS, w)
        at = parse_duration(_required(t, "at", w), f"{w}.at")
        if at > run.duration_ns:
            _fail(f"{w}.at", f"a time within run.duration ({run.duration_ns} ns)", t["at"])
        guest = _str(_required(t, "guest", w), f"{w}.guest")
        matched = [g for g in guests if guest in (g.name, g.group)]
        if not matched:
            names = sorted({g.name for g in guests} | {g.group for g in guests if g.group})
            _fail(f"{w}.guest", f"a guest or group name ({', '.join(names)})", guest)
        target = parse_size(_required(t, "target", w), f"{w}.target")
        for g in matched:
            if not 0 < target <= g.memory:
                _fail(f"{w}.target", f"a size in (0, memory of {g.name} = {g.memory}]", t["target"])
        return ScheduleEntry(at_ns=at, guest=guest, target=target, where=w)


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
