"""The two kinds of trace and their invariants: page-access streams and demand envelopes.

An ``AccessTrace`` is what the replay kernels consume (see ``ops.py`` for the event codes).
An ``Envelope`` is a time series of working-set size — what public VM datasets give — and must
be expanded into page accesses (``expand.py``) before it can be replayed.

Constructing either checks it: a bad value raises ``TraceError`` naming where it came from,
the row and what was expected, so a reader never hands the simulator a half-valid trace.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from autoballoon.trace.ops import ACCESS_MASK, OP_EXIT, OP_FILE, OP_FREE, OP_SYSCALL

FORMAT_VERSION = 2          # 2: the metadata holds a checksum of the columns (store.py)
PAGE_SIZE = 4096
MAX_GAP_NS = 2**60          # as units.MAX_DURATION: the replay adds gaps to int64 clocks
MAX_TRACE_NS = 2**62        # the whole stream: its duration is an int64 sum
MAX_EVENTS = 2**28          # what a generator or reader builds: ~4.5 GB of arrays
KIND_ACCESS = "access"
KIND_ENVELOPE = "envelope"


class TraceError(ValueError):
    """A trace file or array that cannot be read or replayed; the message says where and why."""


def fail_at(where: str, row: int, column: str, expected: str, got) -> TraceError:
    """The one error format of every reader: ``where row N: column 'c': expected X, got Y``."""
    return TraceError(f"{where} row {row}: column '{column}': expected {expected}, got {got!r}")


def _as_array(values, dtype, where: str, column: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise TraceError(f"{where}: column '{column}': expected a 1-D array, got shape {arr.shape}")
    if arr.dtype != dtype:
        kind_ok = arr.dtype.kind in "iu" or (arr.size == 0)
        if not kind_ok:
            raise TraceError(f"{where}: column '{column}': expected integers, got {arr.dtype}")
        cast = arr.astype(dtype)
        bad = np.flatnonzero(cast.astype(arr.dtype) != arr) if arr.size else []
        if len(bad):
            raise fail_at(where, int(bad[0]), column, f"a value that fits {np.dtype(dtype)}",
                          arr[bad[0]].item())
        arr = cast
    return np.ascontiguousarray(arr)


def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _check_ops(op: np.ndarray, where: str) -> None:
    is_event = op >= OP_FREE
    bad = _first((is_event & (op > OP_EXIT)) | (~is_event & ((op & np.uint8(0xFF ^ ACCESS_MASK)) != 0)))
    if bad is not None:
        raise fail_at(where, bad, "op", "an access (bits WRITE=1|FILE=2|SYSCALL=4) or "
                      "FREE=0x80/EXIT=0x81", int(op[bad]))
    bad = _first(~is_event & ((op & OP_SYSCALL) != 0) & ((op & OP_FILE) == 0))
    if bad is not None:
        raise fail_at(where, bad, "op", "SYSCALL only together with FILE", int(op[bad]))


def _check_kinds(page: np.ndarray, op: np.ndarray, footprint: int, where: str) -> None:
    """A page is anon or file for the whole stream: the kernels keep one LRU per kind."""
    access = op < OP_FREE
    is_file = (op & OP_FILE) != 0
    if footprint <= 4 * len(page) + 2**20:
        seen_file = np.zeros(footprint, bool)
        seen_anon = np.zeros(footprint, bool)
        seen_file[page[access & is_file]] = True
        seen_anon[page[access & ~is_file]] = True
        is_mixed = (seen_file & seen_anon)[page]
    else:           # sparse pages (a footprint far beyond the events): sort, do not index
        mixed = np.intersect1d(page[access & is_file], page[access & ~is_file])
        is_mixed = np.isin(page, mixed)
    if is_mixed.any():
        row = _first(access & is_mixed)
        # report the first access that disagrees with the page's first kind
        first_kind = is_file[row]
        row = _first(access & is_mixed & (is_file != first_kind) & (page == page[row]))
        raise fail_at(where, row, "op", f"page {int(page[row])} to keep the kind "
                      f"({'file' if first_kind else 'anon'}) of its first access", int(op[row]))


@dataclass(frozen=True)
class AccessTrace:
    """A page-access stream: ``gap_ns`` (int64 think time before each event), ``page`` (int64,
    ``0 <= page < footprint``), ``op`` (uint8, codes in ``ops.py``), with ``meta`` (source, how
    it was made, licence, ...). ``footprint`` is always ``max(page) + 1``."""
    gap_ns: np.ndarray
    page: np.ndarray
    op: np.ndarray
    footprint: int = field(init=False)
    meta: dict = field(default_factory=dict)
    where: str = field(default="trace", repr=False, compare=False)

    def __post_init__(self):
        w = self.where
        gap = _as_array(self.gap_ns, np.int64, w, "gap_ns")
        page = _as_array(self.page, np.int64, w, "page")
        op = _as_array(self.op, np.uint8, w, "op")
        if not (len(gap) == len(page) == len(op)):
            raise TraceError(f"{w}: columns have different lengths "
                             f"(gap_ns {len(gap)}, page {len(page)}, op {len(op)})")
        if (bad := _first((gap < 0) | (gap >= MAX_GAP_NS))) is not None:
            raise fail_at(w, bad, "gap_ns", "an integer in [0, 2^60) (nanoseconds)",
                          int(gap[bad]))
        if float(gap.sum(dtype=np.float64)) >= MAX_TRACE_NS:
            raise TraceError(f"{w}: column 'gap_ns': expected gaps that add up to less than "
                             f"2^62 ns (146 years), got {float(gap.sum(dtype=np.float64)):.3g}")
        if (bad := _first(page < 0)) is not None:
            raise fail_at(w, bad, "page", "an integer >= 0", int(page[bad]))
        _check_ops(op, w)
        footprint = int(page.max()) + 1 if len(page) else 0
        _check_kinds(page, op, footprint, w)
        # frozen means frozen: read-only views, so the caller's arrays stay writable
        object.__setattr__(self, "gap_ns", _readonly(gap))
        object.__setattr__(self, "page", _readonly(page))
        object.__setattr__(self, "op", _readonly(op))
        object.__setattr__(self, "footprint", footprint)
        object.__setattr__(self, "meta", dict(self.meta))

    def __len__(self) -> int:
        return len(self.op)

    @property
    def duration_ns(self) -> int:
        return int(self.gap_ns.sum())

    def equals(self, other: "AccessTrace") -> bool:
        """Same events (metadata aside)."""
        return (np.array_equal(self.gap_ns, other.gap_ns) and np.array_equal(self.page, other.page)
                and np.array_equal(self.op, other.op))


ENVELOPE_OPTIONAL = ("rss_bytes", "cache_bytes", "provisioned_bytes")


@dataclass(frozen=True)
class Envelope:
    """A demand envelope: sample ``i`` holds from ``time_ns[i]`` to ``time_ns[i+1]`` (the last
    one to ``end_ns``). ``wss_bytes`` is the working-set size — the memory touched in the
    sample; optional ``rss_bytes`` (resident), ``cache_bytes`` (page cache) and
    ``provisioned_bytes`` (memory the VM was given) may be ``None``."""
    time_ns: np.ndarray
    wss_bytes: np.ndarray
    end_ns: int
    rss_bytes: np.ndarray | None = None
    cache_bytes: np.ndarray | None = None
    provisioned_bytes: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    where: str = field(default="envelope", repr=False, compare=False)

    def __post_init__(self):
        w = self.where
        t = _as_array(self.time_ns, np.int64, w, "time_ns")
        if len(t) == 0:
            raise TraceError(f"{w}: expected at least one sample, got none")
        if t[0] < 0:
            raise fail_at(w, 0, "time_ns", "a time >= 0", int(t[0]))
        if (bad := _first(np.diff(t) <= 0)) is not None:
            raise fail_at(w, bad + 1, "time_ns", f"a time after the previous sample's "
                          f"({int(t[bad])})", int(t[bad + 1]))
        if int(self.end_ns) <= t[-1]:
            raise TraceError(f"{w}: end_ns: expected a time after the last sample "
                             f"({int(t[-1])}), got {int(self.end_ns)}")
        object.__setattr__(self, "time_ns", _readonly(t))
        object.__setattr__(self, "end_ns", int(self.end_ns))
        for name in ("wss_bytes",) + ENVELOPE_OPTIONAL:
            values = getattr(self, name)
            if values is None:
                continue
            arr = _as_array(values, np.int64, w, name)
            if len(arr) != len(t):
                raise TraceError(f"{w}: column '{name}' has {len(arr)} rows, expected {len(t)}")
            if (bad := _first(arr < 0)) is not None:
                raise fail_at(w, bad, name, "a size >= 0 (bytes)", int(arr[bad]))
            object.__setattr__(self, name, _readonly(arr))
        object.__setattr__(self, "meta", dict(self.meta))

    def __len__(self) -> int:
        return len(self.time_ns)

    @property
    def durations_ns(self) -> np.ndarray:
        return np.diff(np.append(self.time_ns, self.end_ns))

    def columns(self) -> dict[str, np.ndarray]:
        cols = {"time_ns": self.time_ns, "wss_bytes": self.wss_bytes}
        for name in ENVELOPE_OPTIONAL:
            if getattr(self, name) is not None:
                cols[name] = getattr(self, name)
        return cols
