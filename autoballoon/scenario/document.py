"""A scenario as a TOML document: the resolved scenario written back (``to_document``, ``dumps``),
and dotted-key overrides applied to a document before it is parsed (``override``).

``to_document(scenario)`` is the whole scenario as it runs, every default written out: ``[run]``
(with the seed), ``[host]`` (the policy and its parameters), one ``[[guest]]`` per guest table
(replicas that are still identical, or identical but for starts ``stagger`` apart, stay one table
with ``count``, so the guests get the same names, ``vm-0``, ``vm-1``, ..., and the same group;
replicas that were changed in code become one
table each, under the names they ran with), their workloads and phases, and the ``[[schedule]]``.
Parsing it gives the same scenario back (``parse_document(to_document(s))`` equals ``s`` but for
where it came from), which is what lets a manifest reproduce a run.

An override names a key of the document with dots, as in a sweep's grid or ``--set KEY=VALUE``::

    run.duration = "5s"                       host.memory = "512MiB"
    host.policy_params.inflate = "64MiB"      host.swap.size = "2GiB"
    guest.vm.swappiness = 0                   (the [[guest]] named "vm": every replica)
    guest.vm.workload.phases[0].length = "32MiB"
    schedule[0].target = "128MiB"

and is checked by the same parser as a file: a bad value or an unknown key is an error naming the
override and what was expected.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from pathlib import Path

from autoballoon.errors import SpecError
from autoballoon.scenario import settings as st
from autoballoon.scenario.parse import WORKLOAD_ONLY, parse_scenario
from autoballoon.scenario.spec import GuestSpec, Scenario
from autoballoon.units import format_duration

__all__ = ["to_document", "dumps", "parse_document", "override", "apply_overrides",
           "parse_value", "parse_assignment"]


# --- scenario → document -------------------------------------------------------------------------

def _table(spec, skip=()) -> dict:
    """``st.to_table`` plus the nested specs (a swap device) as tables of their own."""
    nested = {f.name: f.metadata["setting"].key for f in dataclasses.fields(spec)
              if "nested" in f.metadata}
    out = st.to_table(spec, skip=tuple(skip) + tuple(nested.values()))
    for name, key in nested.items():
        if key not in skip:
            out[key] = _table(getattr(spec, name))
    return out


def _workload(wl) -> dict:
    out = _table(wl, skip=WORKLOAD_ONLY["trace" if wl.kind == "phases" else "phases"])
    if wl.kind == "phases":
        out["phases"] = [_table(p) for p in wl.phases]
    return out


def _guest(g: GuestSpec) -> dict:
    out = _table(g)
    out["workload"] = _workload(g.workload)
    return out


def _same_but_name(a: GuestSpec, b: GuestSpec, later_ns: int = 0) -> bool:
    """a and b are the same guest but for the name (and b starting ``later_ns`` after a)."""
    b = dataclasses.replace(b, workload=dataclasses.replace(
        b.workload, start_ns=b.workload.start_ns - later_ns))
    return {**_guest(a), "name": ""} == {**_guest(b), "name": ""}


def _guest_tables(guests) -> list[dict]:
    """Replica groups that are still whole and identical (but for a ``stagger``) as one table
    with ``count``."""
    tables, i = [], 0
    while i < len(guests):
        g = guests[i]
        n = 1
        if g.group is not None and g.name == f"{g.group}-0":
            stagger = (max(guests[i + 1].workload.start_ns - g.workload.start_ns, 0)
                       if i + 1 < len(guests) else 0)
            while (i + n < len(guests) and guests[i + n].group == g.group
                   and guests[i + n].name == f"{g.group}-{n}"
                   and _same_but_name(g, guests[i + n], n * stagger)):
                n += 1
            later = [h for h in guests[i + n:] if h.group == g.group]
            if not later:
                table = _guest(g)
                table.update(name=g.group, count=n)
                if stagger and n > 1:
                    table["stagger"] = format_duration(stagger)
                tables.append(table)
                i += n
                continue
        tables.append(_guest(g))
        i += 1
    return tables


def _schedule(scenario: Scenario, kept_groups: set[str]) -> list[dict]:
    """Entries naming a group that is no longer one table are written once per guest."""
    out = []
    for e in scenario.schedule:
        if e.guest in kept_groups or any(g.name == e.guest for g in scenario.guests):
            out.append(_table(e))
            continue
        for g in scenario.guests:
            if g.group == e.guest:
                out.append({**_table(e), "guest": g.name})
    return out


def to_document(scenario: Scenario) -> dict:
    """The resolved scenario as a TOML document (a dict of TOML values), every default written."""
    doc = {}
    if isinstance(scenario.raw.get("description"), str):
        doc["description"] = scenario.raw["description"]
    doc["run"] = _table(scenario.run)
    doc["host"] = _table(scenario.host)
    if scenario.host.policy_params:
        doc["host"]["policy_params"] = copy.deepcopy(dict(scenario.host.policy_params))
    doc["guest"] = _guest_tables(scenario.guests)
    kept = {t["name"] for t in doc["guest"] if "count" in t}
    schedule = _schedule(scenario, kept)
    if schedule:
        doc["schedule"] = schedule
    return doc


def dumps(doc: dict, header: str = "") -> str:
    """TOML text of a document (``tomli_w``); ``header`` becomes comment lines at the top."""
    import tomli_w
    try:
        text = tomli_w.dumps(doc, multiline_strings=False)
    except TypeError as e:
        raise SpecError(f"scenario: a value cannot be written as TOML ({e}); policy "
                        f"parameters must be strings, numbers, booleans, lists or tables") from None
    lines = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return lines + text


def parse_document(doc: dict, name: str | None = None, base_dir: Path | None = None,
                   check=None) -> Scenario:
    """Parse a document exactly as a file holding ``dumps(doc)`` would be parsed."""
    return parse_scenario(dumps(doc), name=name, base_dir=base_dir, check=check)


# --- overrides -----------------------------------------------------------------------------------

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parts(key: str) -> list:
    """``"guest.vm.workload.phases[0].length"`` → ``["guest", "vm", "workload", "phases", 0,
    "length"]``."""
    parts, pos = [], 0
    for m in _PART.finditer(key):
        if m.start() != pos and key[pos:m.start()] != ".":
            break
        parts.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
        pos = m.end()
    if not parts or pos != len(key) or isinstance(parts[0], int):
        raise SpecError(f"override {key!r}: expected a dotted key such as 'host.memory' or "
                        f"'guest.vm.workload.phases[0].length'")
    return parts


def _guest_table(doc: dict, name: str, key: str) -> dict:
    tables = doc.get("guest")
    if not isinstance(tables, list):
        raise SpecError(f"override {key!r}: the scenario has no [[guest]] tables")
    for t in tables:
        if isinstance(t, dict) and t.get("name") == name:
            return t
    names = [t.get("name") for t in tables if isinstance(t, dict)]
    for t in tables:
        base = t.get("name")
        if isinstance(t, dict) and "count" in t and re.fullmatch(rf"{re.escape(str(base))}-\d+",
                                                                  name):
            raise SpecError(f"override {key!r}: {name!r} is a replica of the group {base!r}; "
                            f"override the group (guest.{base}...), which sets every replica")
    raise SpecError(f"override {key!r}: no [[guest]] named {name!r} (guests: "
                    f"{', '.join(map(str, names))})")


def override(doc: dict, key: str, value) -> None:
    """Set the dotted ``key`` of ``doc`` to ``value`` in place (missing tables are created; a
    swap given as a size becomes ``{ size = ... }`` when one of its keys is set)."""
    parts = _parts(key)
    node = doc
    if parts[0] == "guest":
        if len(parts) < 3 or not isinstance(parts[1], str):
            raise SpecError(f"override {key!r}: expected guest.NAME.KEY (NAME: a [[guest]] "
                            f"table's name, for all of its replicas)")
        node, parts = _guest_table(doc, parts[1], key), parts[2:]
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise SpecError(f"override {key!r}: no element [{part}] (the list has "
                                f"{len(node) if isinstance(node, list) else 0})")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise SpecError(f"override {key!r}: {part!r} is not inside a table")
        child = node.get(part)
        if child is None:
            child = node[part] = [] if isinstance(nxt, int) else {}
        elif part == "swap" and not isinstance(child, dict):
            child = node[part] = {"size": child}
        node = child
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise SpecError(f"override {key!r}: no element [{last}]")
    elif not isinstance(node, dict):
        raise SpecError(f"override {key!r}: {last!r} is not inside a table")
    node[last] = value


def apply_overrides(doc: dict, overrides: dict) -> dict:
    """A copy of ``doc`` with every override applied (the base document is not changed)."""
    out = copy.deepcopy(doc)
    for key, value in overrides.items():
        override(out, key, value)
    return out


def resolve(base: dict, overrides: dict, name: str | None = None, check=None) -> Scenario:
    """Parse ``base`` with ``overrides``; an error names the override that caused it (each
    override is first tried alone, so the message can point at one key)."""
    label = name or "override"
    prefix = f"{name}: " if name else ""
    doc = apply_overrides(base, overrides)          # a key that leads nowhere fails here
    try:
        return parse_document(doc, name=label, check=check)
    except SpecError as combined:
        for key, value in overrides.items():
            try:
                parse_document(apply_overrides(base, {key: value}), name=label, check=check)
            except SpecError as e:
                raise SpecError(f"{prefix}{key} = {value!r}: {_strip(e, label)}") from None
        shown = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
        raise SpecError(f"{prefix}{shown}: {_strip(combined, label)}") from None


def _strip(error: SpecError, label: str) -> str:
    """The parser's message without the ``name:line:`` prefix (the text was generated)."""
    return re.sub(rf"^{re.escape(label)}(:\d+)?: ", "", str(error))


# --- values typed on a command line ---------------------------------------------------------

def parse_value(text: str):
    """A TOML value (``0``, ``true``, ``"x"``, ``[1, 2]``, ``{ a = 1 }``), else the text itself
    (so ``--set host.memory=512MiB`` needs no quotes)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(text: str) -> tuple[str, object]:
    """``"KEY=VALUE"`` → (key, value), as ``--set`` takes it."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise SpecError(f"--set {text!r}: expected KEY=VALUE, such as host.memory=512MiB")
    return key.strip(), parse_value(value.strip())
