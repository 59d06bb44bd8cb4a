"""Names for perf: a ``/tmp/perf-<pid>.map`` of the numba-compiled kernels.

perf cannot name JIT code; it reads ``/tmp/perf-<pid>.map`` (start, size and name per line) for
that. numba's own NUMBA_ENABLE_PROFILING needs an LLVM built with perf support, which llvmlite's
wheels are not. Only a kernel compiled in this process has its LLVM module at hand, so the map
needs an empty cache (``fresh_cache``). With the map, perf shows each kernel that LLVM did not
inline by name::

    perf record -e cpu-clock -o perf.data autoballoon bench --perf-map --repeat 1
    perf report -i perf.data --sort symbol
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import re
import tempfile

import numba
from numba.core.registry import CPUDispatcher

_NAME = re.compile(r"(\d+)")


def fresh_cache() -> str:
    """Compile everything anew in this process (call before any kernel module is imported)."""
    d = tempfile.mkdtemp(prefix="autoballoon-perfmap-")
    os.environ["NUMBA_CACHE_DIR"] = d
    numba.config.CACHE_DIR = d
    return d


def demangle(symbol: str) -> str:
    """``_ZN11autoballoon2mm6vmscan20shrink_inactive_listB3v26...`` -> the dotted Python name."""
    if not symbol.startswith("_ZN"):
        return symbol
    parts, i = [], 3
    while i < len(symbol) and symbol[i].isdigit():
        n = _NAME.match(symbol, i)
        start = n.end()
        parts.append(symbol[start:start + int(n.group(1))])
        i = start + int(n.group(1))
    return ".".join(parts) or symbol


def autoballoon_dispatchers():
    import autoballoon
    for info in pkgutil.walk_packages(autoballoon.__path__, "autoballoon."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:                          # a module of an extra that is not installed
            continue
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher):
                yield obj


def entries(dispatchers) -> dict[int, str]:
    """Address -> name of every function defined in the dispatchers' compiled libraries."""
    found = {}
    for d in dispatchers:
        for cres in d.overloads.values():
            library = cres.library
            module = getattr(library, "_final_module", None)
            if module is None:                       # loaded from the cache: no LLVM module
                continue
            for f in module.functions:
                if not f.is_declaration:
                    address = library.get_pointer_to_function(f.name)
                    if address:
                        found[address] = demangle(f.name)
    return found


def write(path: str | None = None, dispatchers=None) -> tuple[str, int]:
    """Write the map (sizes run to the next known start); returns (path, number of symbols)."""
    path = path or f"/tmp/perf-{os.getpid()}.map"
    found = entries(autoballoon_dispatchers() if dispatchers is None else dispatchers)
    starts = sorted(found)
    ends = starts[1:] + [starts[-1] + 0x10000] if starts else []   # the last one: a guess
    with open(path, "w") as fh:
        for a, b in zip(starts, ends):
            fh.write(f"{a:x} {min(b - a, 0x100000):x} {found[a]}\n")
    return path, len(starts)
