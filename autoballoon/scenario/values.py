"""Readers of scenario values: each takes the TOML value and ``where`` (the dotted key, for the
message) and returns a Python value or raises ``SpecError`` saying what was expected. Sizes,
durations and rates are :mod:`autoballoon.units`."""
from __future__ import annotations

import math

from autoballoon.errors import SpecError
from autoballoon.units import (
    format_duration, format_rate, format_size, parse_duration, parse_rate, parse_size)

__all__ = ["fail", "value_int", "value_number", "value_str", "value_bool", "value_choice",
           "value_list_of", "value_size_or_auto", "format_size_or_auto", "parse_size", "parse_duration", "parse_rate", "format_size",
           "format_duration", "format_rate"]


def fail(where: str, expected: str, got) -> None:
    raise SpecError(f"{where}: expected {expected}, got {got!r}")


def value_int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(where, "an integer", value)
    return value


def value_number(value, where: str) -> float:
    """A finite number (TOML's nan and inf are refused: no setting means them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        fail(where, "a finite number", value)
    return float(value)


def value_str(value, where: str) -> str:
    if not isinstance(value, str):
        fail(where, "a string (in quotes)", value)
    return value


def value_bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        fail(where, "true or false", value)
    return value


def value_choice(choices):
    """A reader of one string among ``choices``."""
    def read(value, where: str) -> str:
        if not isinstance(value, str):
            fail(where, "a string: one of " + ", ".join(f'"{c}"' for c in choices), value)
        return value
    return read


def value_size_or_auto(value, where: str):
    """A size, or "auto" (None): the model computes it."""
    if value == "auto":
        return None
    return parse_size(value, where)


def format_size_or_auto(value):
    return "auto" if value is None else format_size(value)


def value_list_of(choices):
    """A reader of a list of strings (each checked against ``choices`` by the spec)."""
    def read(value, where: str) -> frozenset:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(where, f'a list of strings such as ["{next(iter(choices))}"]', value)
        return frozenset(value)
    return read
