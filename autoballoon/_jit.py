"""The one numba decorator the package uses: compiled, cached on disk, no GIL, no NRT.

numba's on-disk cache checks only the source file of the function it compiled, not the files of
the functions it inlined: after an edit to mm/vmscan.py a cached replay kernel would silently run
the old reclaim code. So the cache lives in a directory named after a hash of every kernel
source; any edit starts a fresh, correct cache (NUMBA_CACHE_DIR, if set, is respected).
"""
import hashlib
import os
import pathlib
import shutil

import numba
from numba import njit

_ROOT = pathlib.Path(__file__).parent
_KERNEL_SOURCES = ("_jit.py", "mm", "virtio", "host/memory.py", "sim/engine.py", "trace/ops.py")


def _source_hash() -> str:
    h = hashlib.sha1()
    for name in _KERNEL_SOURCES:
        p = _ROOT / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _use_cache_dir() -> None:
    """Cache in __pycache__/numba-<hash>; the directories of earlier sources are removed."""
    here = _ROOT / "__pycache__" / f"numba-{_source_hash()}"
    for old in here.parent.glob("numba-*"):
        if old != here:
            shutil.rmtree(old, ignore_errors=True)
    numba.config.CACHE_DIR = str(here)


if not os.environ.get("NUMBA_CACHE_DIR"):
    _use_cache_dir()

# _nrt=False: no reference counting. The kernels allocate nothing, and counting references to the
# state tuple's arrays on every call made the fault path 12x slower.
kernel = njit(cache=True, nogil=True, _nrt=False)


@kernel
def clear_bits(x, bits):
    """``x & ~bits`` without a negative mask, so it also holds for uint8/uint16 values when the
    kernels run as plain Python (NUMBA_DISABLE_JIT=1), where NumPy refuses ``~bits``."""
    return (x | bits) ^ bits
