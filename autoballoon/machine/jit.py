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
from llvmlite import ir as llvmir
from numba import njit, types
from numba.core import cgutils
from numba.core.dispatcher import Dispatcher
from numba.extending import intrinsic

_PKG = pathlib.Path(__file__).resolve().parent.parent          # autoballoon/
# Every source a compiled kernel can depend on: the machine package (the kernels and the
# constants they bake in), and what the constants are computed from — the uapi, the trace event
# codes, and the scenario settings whose order gives the kernel table columns.
# tests/test_architecture.py fails if a kernel module reaches any other file.
KERNEL_SOURCES = ("machine", "trace/ops.py", "uapi.py", "enums.py", "errors.py", "units.py",
                  "scenario/spec.py", "scenario/settings.py", "scenario/values.py")


def _source_hash() -> str:
    h = hashlib.sha1()
    for name in KERNEL_SOURCES:
        p = _PKG / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(str(f.relative_to(_PKG)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _use_cache_dir() -> None:
    """Cache in __pycache__/numba-<hash>; the directories of earlier sources are removed."""
    here = _PKG / "__pycache__" / f"numba-{_source_hash()}"
    for old in here.parent.glob("numba-*"):
        if old != here:
            shutil.rmtree(old, ignore_errors=True)
    numba.config.CACHE_DIR = str(here)


if not os.environ.get("NUMBA_CACHE_DIR"):
    _use_cache_dir()

# _nrt=False: no reference counting. The kernels allocate nothing, and counting references to the
# state tuple's arrays on every call made the fault path 12x slower.
_kernel = njit(cache=True, nogil=True, _nrt=False)


def _one_signature_per_type(dispatcher):
    """Compile a kernel called with a constant (``has_feature(m, g, 2)``, ``lru_pages(m, g,
    True)``) for the constant's type, not once per constant: numba types a constant argument of
    a call between kernels as a literal (``Literal[int](2)``) and compiles a specialisation for
    each value: 51 of the 207 compiles of a first ``make demo``. LLVM still sees the constant
    once it inlines the call into the caller's module, so the machine code runs as fast."""
    if not isinstance(dispatcher, Dispatcher):          # NUMBA_DISABLE_JIT: a plain function
        return dispatcher
    template = dispatcher.get_call_template

    def get_call_template(args, kws):
        return template(tuple(types.unliteral(a) for a in args),
                        {k: types.unliteral(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template
    return dispatcher


def kernel(fn):
    """The decorator of every kernel (see the module docstring)."""
    return _one_signature_per_type(_kernel(fn))

# The state tuple travels as ~300 machine words (every array's pointer, shape and strides): a
# call to a kernel LLVM did not inline copies all of them (about 2.5 KB). The few kernels on the
# per-fault path are therefore inlined by numba itself; rare, large paths stay real calls.
kernel_inline = njit(cache=True, nogil=True, _nrt=False, inline="always")


@kernel
def clear_bits(x, bits):
    """``x & ~bits`` without a negative mask, so it also holds for uint8/uint16 values when the
    kernels run as plain Python (NUMBA_DISABLE_JIT=1), where NumPy refuses ``~bits``."""
    return (x | bits) ^ bits


def _prefetch_codegen(context, builder, signature, args):
    aryty, idxty = signature.args
    ary = context.make_array(aryty)(context, builder, args[0])
    idx = context.cast(builder, args[1], idxty, types.intp)
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [idx])
    ptr_t = llvmir.PointerType()
    i32 = llvmir.IntType(32)
    fn = cgutils.get_or_insert_function(
        builder.module, llvmir.FunctionType(llvmir.VoidType(), [ptr_t, i32, i32, i32]),
        "llvm.prefetch.p0")
    # read, high temporal locality, data cache
    builder.call(fn, [builder.bitcast(ptr, ptr_t), i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


@intrinsic
def _prefetch(typingctx, arr, idx):
    return types.void(arr, idx), _prefetch_codegen


def _no_prefetch(arr, idx):
    pass


# prefetch(arr, i): start loading arr[i] into the cache (a hint, never a fault). The replay
# knows its future accesses and reclaim knows the next page on the list, so the random loads
# of page records overlap instead of stalling one after the other. A no-op without the JIT.
prefetch = _no_prefetch if numba.config.DISABLE_JIT else _prefetch
