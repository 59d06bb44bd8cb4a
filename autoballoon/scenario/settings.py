"""Scenario settings, each defined once: its TOML key, how its value is written (type and unit),
its default, which values are valid, what it means, and the kernel column it boots into.

A spec class (scenario/spec.py) declares every setting as a dataclass field::

    swappiness: int = setting("swappiness", value_int, 60, valid=lambda v: 0 <= v <= 200,
                              expected="an integer in [0, 200]", param="swappiness",
                              doc="/proc/sys/vm/swappiness")

From that one line the parser knows the key and how to read it (scenario/parse.py), the spec
checks the value on construction, the machine writes it into the per-guest parameter table
column ``P_SWAPPINESS`` at boot (machine/layout.py derives the columns, machine/machine.py the
boot), a resolved scenario can be written back as TOML (``to_document``), and a sweep can override
it by its dotted key (``guest.swappiness``).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from autoballoon.errors import SpecError

REQUIRED = dataclasses.MISSING


def _identity(value):
    return value


@dataclass(frozen=True)
class Setting:
    key: str                                   # TOML key
    parse: Callable[[Any, str], Any]           # parse(value, "where.key") -> Python value
    valid: Callable[[Any], bool] | None        # checked on construction
    expected: str                              # what a valid value is, for the message
    doc: str
    param: str | None                          # kernel table column it boots into, if any
    encode: Callable[[Any], int]               # value -> int for that column
    format: Callable[[Any], Any]               # value -> TOML value (inverse of parse)


def setting(key: str, parse, default=REQUIRED, *, valid=None, expected: str = "", doc: str = "",
            param: str | None = None, encode=int, format=_identity, nested=None):
    """A dataclass field that is a scenario setting (see the module docstring). ``nested``: the
    spec class of a setting whose value is itself a spec (a swap device), whose own settings
    also boot into kernel columns."""
    meta = {"setting": Setting(key, parse, valid, expected, doc, param, encode, format)}
    if nested is not None:
        meta["nested"] = nested
    if default is REQUIRED:
        return field(metadata=meta)
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def settings(spec_cls) -> list[tuple[str, Setting]]:
    """(field name, Setting) of every setting of a spec class, in declaration order."""
    return [(f.name, f.metadata["setting"]) for f in dataclasses.fields(spec_cls)
            if "setting" in f.metadata]


def defaults(spec_cls) -> dict[str, Any]:
    """{TOML key: default} of the settings that have one."""
    out = {}
    for f in dataclasses.fields(spec_cls):
        s = f.metadata.get("setting")
        if s is None:
            continue
        if f.default is not REQUIRED:
            out[s.key] = f.default
        elif f.default_factory is not REQUIRED:
            out[s.key] = f.default_factory()
    return out


def check(spec) -> None:
    """Validate every setting of a spec object; the error names ``spec.where.key``."""
    for name, s in settings(type(spec)):
        value = getattr(spec, name)
        if s.valid is not None and value is not None and not s.valid(value):
            raise SpecError(f"{spec.where}.{s.key}: expected {s.expected}, got {value!r}")


def check_keys(table, allowed, where: str) -> None:
    """Refuse keys of a TOML table that are not among ``allowed``, suggesting the nearest."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {table!r}")
    for key in table:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise SpecError(f"{where}.{key}: unknown key ({hint}expected one of: "
                            f"{', '.join(allowed)})")


def keys(spec_cls, extra=()) -> tuple[str, ...]:
    """The TOML keys of a spec class's table (its settings' keys, then ``extra``)."""
    return tuple(s.key for _, s in settings(spec_cls)) + tuple(extra)


def parse_table(spec_cls, table: dict, where: str, skip=()) -> dict[str, Any]:
    """Constructor arguments for ``spec_cls`` from a TOML table: every setting present (but the
    keys in ``skip``, which the caller parses itself), each parsed so that its error names
    ``where.key``; a missing required setting is an error too."""
    kw = {}
    for f in dataclasses.fields(spec_cls):
        s = f.metadata.get("setting")
        if s is None or s.key in skip:
            continue
        if s.key in table:
            kw[f.name] = s.parse(table[s.key], f"{where}.{s.key}")
        elif f.default is REQUIRED and f.default_factory is REQUIRED:
            raise SpecError(f"{where}.{s.key}: missing (required)")
    return kw


def to_table(spec, skip=()) -> dict[str, Any]:
    """A spec object's settings as a TOML table, every default written out."""
    out = {}
    for name, s in settings(type(spec)):
        value = getattr(spec, name)
        if s.key in skip or value is None:
            continue
        out[s.key] = s.format(value)
    return out


def kernel_params(spec_cls) -> tuple[str, ...]:
    """The kernel table columns the settings of ``spec_cls`` (and of nested specs) boot into."""
    out = []
    for f in dataclasses.fields(spec_cls):
        s = f.metadata.get("setting")
        if s is not None and s.param:
            out.append(s.param)
        nested = f.metadata.get("nested")
        if nested is not None:
            out.extend(kernel_params(nested))
    return tuple(out)


def kernel_values(spec) -> dict[str, int]:
    """{column: encoded value} for every setting of ``spec`` (and nested specs) with a column."""
    out = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        s = f.metadata.get("setting")
        if s is not None and s.param:
            out[s.param] = int(s.encode(value))
        if f.metadata.get("nested") is not None:
            out.update(kernel_values(value))
    return out
