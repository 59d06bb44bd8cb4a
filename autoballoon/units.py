"""Sizes, durations and rates with units, as written in scenario files and on the command line.

Sizes are **binary** whatever the spelling: ``K``/``KB``/``KiB`` = 1024, ``M``/``MB``/``MiB`` =
1024², ``G``/``GB``/``GiB`` = 1024³, ``T``/``TB``/``TiB`` = 1024⁴. This is what a kernel or
hypervisor engineer reads: QEMU's ``-m 4G``, the kernel's ``memparse`` (``mem=4G``) and
/proc/meminfo's ``kB`` are all binary, and a decimal "4GB" guest would not be a whole number of
pages. A bare number (``4096`` or ``"4096"``) is bytes; ``B`` is accepted as a suffix. For a decimal
size write the bytes (``4000000000``).

Durations need a unit: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``min``, ``h``; a bare ``0`` is
allowed. Rates are a size per second: ``"500MiB/s"``.

All parsers return ints (bytes, nanoseconds, bytes/s) and raise ``SpecError`` naming ``where``
(the key being parsed) and what was expected. Values are bounded: sizes and durations below
``2**60`` (1 EiB, 36 years), so that the kernels' int64 sums of a time and a cost, or of sizes,
cannot overflow.
"""
from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Decimal, InvalidOperation, localcontext

from autoballoon.errors import SpecError

# The one table of unit factors (lower-case size units, all binary; time units in ns). Readers
# that accept fewer spellings take a subset of these (see ``units_subset``).
SIZE_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtp", start=1):
    SIZE_UNITS[_p] = SIZE_UNITS[_p + "b"] = SIZE_UNITS[_p + "ib"] = 1024 ** _i

MAX_SIZE = 2**60           # bytes (1 EiB)
MAX_DURATION = 2**60       # ns (36.5 years)

TIME_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9,
              "min": 60 * 10**9, "h": 3600 * 10**9}


def units_subset(table: dict[str, int], names) -> dict[str, int]:
    """``{name: table[name]}`` for ``names``, in that order (a KeyError names a typo)."""
    return {name: table[name] for name in names}

_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


def _split(text: str) -> tuple[Decimal, str] | None:
    m = _NUMBER_UNIT.match(text.replace("_", ""))
    if not m:
        return None
    try:
        return Decimal(m.group(1)), m.group(2)
    except InvalidOperation:
        return None


def _exact_int(number: Decimal, factor: int, where: str, what: str, got, limit: int,
               limit_text: str) -> int:
    # Decimal arithmetic keeps "1.5GiB" exact; a fraction of a byte or nanosecond is a typo.
    # Any exponent is allowed and enough digits are kept for every value below the limit; the
    # bound is checked first: int() of "1e999999999s" would build a billion-digit number.
    with localcontext(prec=80, Emax=MAX_EMAX, Emin=MIN_EMIN):
        value = number * factor
    if value >= limit:
        raise SpecError(f"{where}: expected {limit_text}, got {got!r:.60}")
    if value != value.to_integral_value():
        raise SpecError(f"{where}: expected a whole number of {what}, got {got!r}")
    return int(value)


def parse_size(value, where: str = "size") -> int:
    """``"4GiB"``, ``"768MiB"``, ``"4G"``, ``"4GB"``, ``"4096"``, ``4096`` → bytes (binary units)."""
    expected = "a size such as '768MiB', '4GiB' or a number of bytes"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(f"{where}: expected {expected}, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise SpecError(f"{where}: expected a size >= 0, got {value!r}")
        if value >= MAX_SIZE:
            raise SpecError(f"{where}: expected a size below 2^60 bytes (1 EiB), got {value!r}")
        return value
    parts = _split(value)
    if parts is None or parts[1].lower() not in SIZE_UNITS:
        raise SpecError(f"{where}: expected {expected} (units B, KiB, MiB, GiB, TiB; "
                        f"K/KB/M/MB/G/GB are binary too), got {value!r}")
    number, unit = parts
    return _exact_int(number, SIZE_UNITS[unit.lower()], where, "bytes", value, MAX_SIZE,
                      "a size below 2^60 bytes (1 EiB)")


def parse_duration(value, where: str = "duration") -> int:
    """``"70s"``, ``"100ms"``, ``"1us"``, ``"2.5min"``, ``"200ns"`` → nanoseconds."""
    expected = "a duration with a unit such as '70s', '100ms', '1us' or '2.5min'"
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected {expected}, got {value!r}")
    if isinstance(value, int) and value == 0:
        return 0
    if not isinstance(value, str):
        # A bare number is ambiguous (seconds? nanoseconds?), so it is refused.
        raise SpecError(f"{where}: expected {expected}, got {value!r}")
    parts = _split(value)
    if parts is None or parts[1] not in TIME_UNITS:
        if parts is not None and parts[1] == "" and parts[0] == 0:
            return 0
        raise SpecError(f"{where}: expected {expected} (units ns, us, ms, s, min, h), "
                        f"got {value!r}")
    number, unit = parts
    return _exact_int(number, TIME_UNITS[unit], where, "nanoseconds", value, MAX_DURATION,
                      "a duration below 2^60 ns (36 years)")


def parse_rate(value, where: str = "rate") -> int:
    """``"500MiB/s"`` (or a number of bytes per second) → bytes per second."""
    if isinstance(value, str) and "/" in value:
        size, _, per = value.partition("/")
        if per.strip() != "s":
            raise SpecError(f"{where}: expected a rate such as '500MiB/s', got {value!r}")
        return parse_size(size, where)
    if isinstance(value, str) or isinstance(value, int) and not isinstance(value, bool):
        return parse_size(value, where)
    raise SpecError(f"{where}: expected a rate such as '500MiB/s', got {value!r}")


def format_size(nbytes: int) -> str:
    """The shortest exact binary spelling: 805306368 → '768MiB'."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return f"{nbytes}B"


def format_duration(ns: int) -> str:
    """The shortest exact spelling: 100000000 → '100ms' (parse_duration reads it back)."""
    for unit in ("h", "min", "s", "ms", "us"):
        if ns and ns % TIME_UNITS[unit] == 0:
            return f"{ns // TIME_UNITS[unit]}{unit}"
    return f"{ns}ns"


def format_rate(bytes_per_s: int) -> str:
    """500 MiB/s → '500MiB/s'."""
    return format_size(bytes_per_s) + "/s"
