"""The machine's state as NumPy arrays, one array per page field.

Every guest's frames (struct page), virtual pages (PTEs of the workload's address space) and
swap slots live in shared arrays at per-guest offsets (``P[g, P_FRAME_BASE]`` ...), so one set
of numba kernels serves a machine of many guests and the host can scan all guest frames.

The per-frame fields (``pflags``, ``fref``, ``lru_next``, ``lru_prev``, ``rmap``) are views
into one 16-byte record per frame, like the fields of struct page, and the per-virtual-page
fields (``pte``, ``swp``, ``shadow``, ``vflags``) into one 16-byte record per page: a fault or
a reclaim step then misses the cache once per page, not once per field, which is most of the
model's speed on large footprints. The kernels see ordinary (strided) arrays.
"""
from __future__ import annotations

import os
from collections import namedtuple

import numpy as np

from autoballoon.machine.layout import HOST_EVENTS_MAX, NR_HOST, NR_PARAMS, NR_STATE, NR_VMSTAT
from autoballoon.machine.mm.constants import (
    BLOCK_PAGES, MAX_OOM_NOTIFIERS, MAX_SHRINKERS, NR_LRU_LISTS)
from autoballoon.uapi import VIRTIO_BALLOON_S_NR

MachineState = namedtuple("MachineState", [
    # frames (struct page / folio), global pfn
    "pflags", "fref", "lru_next", "lru_prev", "rmap", "balloon_pfns",
    # virtual pages of the workloads, global vpn
    "pte", "swp", "vflags", "shadow", "dirtied",
    # swap slots, global slot number -> vpn
    "slot_owner",
    # free page reporting, one entry per 2 MiB block of guest frames
    "blk_nfree", "blk_reported",
    # per-guest tables
    "P", "S", "V", "lru_head", "lru_tail", "lru_size", "stats",
    # registered shrinkers (kind, nr_deferred) and OOM notifiers, per guest (mm/hooks.py)
    "shrinker_kind", "shrinker_deferred", "oom_notifier_kind",
    # struct scan_control of direct reclaim (row 0) and kswapd (row 1)
    "scan_control",
    # pages under writeback, per guest a FIFO ring of (pfn, vpn, done) at its frame base
    "wbq_pfn", "wbq_vpn", "wbq_done",
    # host
    "H", "host_events",
    # workloads: traces (concatenated) and phase programs
    "wl_kind", "wl_loop", "wl_speed", "wl_start", "wl_end",
    "tr_gap", "tr_page", "tr_op",
    "ph_offset", "ph_len", "ph_pattern", "ph_duration", "ph_passes", "ph_think", "ph_wfrac",
    "ph_cdf_start", "zipf_cdf",
])


FRAME = np.dtype([("lru_next", np.int32), ("lru_prev", np.int32), ("rmap", np.int32),
                  ("pflags", np.uint16), ("fref", np.uint8)], align=True)
VPAGE = np.dtype([("pte", np.int32), ("swp", np.int32), ("shadow", np.int32),
                  ("vflags", np.uint8), ("dirtied", np.uint16)], align=True)
WRITEBACK = np.dtype([("wbq_done", np.int64), ("wbq_pfn", np.int32), ("wbq_vpn", np.int32)])
assert FRAME.itemsize == 16 and VPAGE.itemsize == 16 and WRITEBACK.itemsize == 16

# struct scan_control (mm/vmscan.c), the fields the model uses; ``nr`` holds get_scan_count's
# targets per LRU list. One record for direct reclaim, one for kswapd: they never nest.
SCAN_CONTROL = np.dtype([
    ("nr_to_reclaim", np.int64), ("priority", np.int64), ("may_swap", np.int64),
    ("is_kswapd", np.int64), ("nr_scanned", np.int64), ("nr_reclaimed", np.int64),
    ("cost_ns", np.int64), ("callback_ns", np.int64),
    # sc->nr: what shrink_folio_list met, for shrink_node's writeback throttling
    ("nr_taken", np.int64), ("nr_file_taken", np.int64), ("nr_writeback", np.int64),
    ("nr_immediate", np.int64), ("nr_unqueued_dirty", np.int64),
    ("nr", np.int64, (NR_LRU_LISTS,))])


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _records(n: int) -> int:
    """At least two records: numba types a strided field view of 0 or 1 records as contiguous
    (another signature: every kernel compiled again, minutes); the spare record is never
    indexed (each guest's pages are P_VPAGE_BASE .. + P_NVPAGES)."""
    return max(n, 2)


def allocate(nframes: list[int], nvpages: list[int], nslots: list[int],
             trace_len: int = 0, nphases: int = 0, cdf_len: int = 0) -> MachineState:
    """Zeroed state for guests of the given sizes; per-guest offsets are filled in P.

    Guest frame ranges are aligned to 2 MiB blocks so a pageblock never spans two guests.
    """
    from autoballoon.machine import layout as c
    G = len(nframes)
    fbase = np.zeros(G + 1, np.int64)
    for g, n in enumerate(nframes):
        fbase[g + 1] = fbase[g] + _align(n, BLOCK_PAGES)
    vbase = np.concatenate([[0], np.cumsum(nvpages)]).astype(np.int64)
    sbase = np.concatenate([[0], np.cumsum(nslots)]).astype(np.int64)
    NF, NV, NS = int(fbase[-1]), int(vbase[-1]), int(sbase[-1])
    P = np.zeros((G, NR_PARAMS), np.int64)
    P[:, c.P_FRAME_BASE] = fbase[:-1]
    P[:, c.P_NFRAMES] = nframes
    P[:, c.P_VPAGE_BASE] = vbase[:-1]
    P[:, c.P_NVPAGES] = nvpages
    P[:, c.P_SWAP_BASE] = sbase[:-1]
    P[:, c.P_NSLOTS] = nslots
    P[:, c.P_BLOCK_BASE] = fbase[:-1] // BLOCK_PAGES
    P[:, c.P_NBLOCKS] = [(n + BLOCK_PAGES - 1) // BLOCK_PAGES for n in nframes]
    frames = np.zeros(NF, FRAME)
    vpages = np.zeros(_records(NV), VPAGE)
    writeback = np.zeros(NF, WRITEBACK)
    for field in ("lru_next", "lru_prev", "rmap"):
        frames[field] = -1
    for field in ("pte", "swp", "shadow"):
        vpages[field] = -1
    return MachineState(
        **{f: frames[f] for f in FRAME.names}, **{f: vpages[f] for f in VPAGE.names},
        **{f: writeback[f] for f in WRITEBACK.names},
        balloon_pfns=np.full(NF, -1, np.int32),
        slot_owner=np.full(NS, -1, np.int32),
        blk_nfree=np.zeros(NF // BLOCK_PAGES, np.int32),
        blk_reported=np.zeros(NF // BLOCK_PAGES, np.uint8),
        P=P, S=np.zeros((G, NR_STATE), np.int64), V=np.zeros((G, NR_VMSTAT), np.int64),
        lru_head=np.full((G, NR_LRU_LISTS), -1, np.int32),
        lru_tail=np.full((G, NR_LRU_LISTS), -1, np.int32),
        lru_size=np.zeros((G, NR_LRU_LISTS), np.int64),
        stats=np.zeros((G, VIRTIO_BALLOON_S_NR), np.int64),
        shrinker_kind=np.full((G, MAX_SHRINKERS), -1, np.int64),
        shrinker_deferred=np.zeros((G, MAX_SHRINKERS), np.int64),
        oom_notifier_kind=np.full((G, MAX_OOM_NOTIFIERS), -1, np.int64),
        scan_control=np.zeros(2, SCAN_CONTROL).view(np.recarray),
        H=np.zeros(NR_HOST, np.int64), host_events=np.zeros(HOST_EVENTS_MAX, np.int8),
        wl_kind=np.zeros(G, np.int64), wl_loop=np.zeros(G, np.int64),
        wl_speed=np.ones(G, np.float64),
        wl_start=np.zeros(G, np.int64), wl_end=np.zeros(G, np.int64),
        tr_gap=np.zeros(trace_len, np.int64), tr_page=np.zeros(trace_len, np.int64),
        tr_op=np.zeros(trace_len, np.uint8),
        ph_offset=np.zeros(nphases, np.int64), ph_len=np.zeros(nphases, np.int64),
        ph_pattern=np.zeros(nphases, np.int64), ph_duration=np.zeros(nphases, np.int64),
        ph_passes=np.zeros(nphases, np.int64), ph_think=np.zeros(nphases, np.int64),
        ph_wfrac=np.zeros(nphases, np.float64), ph_cdf_start=np.full(nphases, -1, np.int64),
        zipf_cdf=np.zeros(cdf_len, np.float64),
    )


def estimate_bytes(nframes: list[int], nvpages: list[int], nslots: list[int],
                   trace_len: int = 0, nphases: int = 0, cdf_len: int = 0) -> int:
    """The bytes :func:`allocate` takes for these sizes, computed without allocating (so that a
    machine that cannot fit is refused before it starts). tests/test_reliability.py checks it
    against a real allocation."""
    G = len(nframes)
    NF = sum(_align(n, BLOCK_PAGES) for n in nframes)
    per_frame = FRAME.itemsize + WRITEBACK.itemsize + 4          # + balloon_pfns
    per_block = 4 + 1                                            # blk_nfree, blk_reported
    per_guest = 8 * (NR_PARAMS + NR_STATE + NR_VMSTAT + 4 * NR_LRU_LISTS // 2
                     + VIRTIO_BALLOON_S_NR + 2 * MAX_SHRINKERS + MAX_OOM_NOTIFIERS + 5)
    per_phase = 8 * 8
    return (NF * per_frame + NF // BLOCK_PAGES * per_block
            + _records(sum(nvpages)) * VPAGE.itemsize + sum(nslots) * 4 + trace_len * (8 + 8 + 1) + nphases * per_phase + cdf_len * 8
            + G * per_guest + 2 * SCAN_CONTROL.itemsize + NR_HOST * 8 + HOST_EVENTS_MAX)


def available_memory() -> int | None:
    """Bytes this process may still allocate: the kernel's MemAvailable, or less if a cgroup
    (a container's memory limit) allows less; None if neither can be read."""
    avail = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                avail.append(int(limit) - int(f.read()))
    except (OSError, ValueError):
        pass
    if not avail and hasattr(os, "sysconf"):
        try:
            avail.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return max(0, min(avail)) if avail else None


def bytes_per_page(m: MachineState) -> float:
    """Model state per simulated page (frames + virtual pages + swap slots), in bytes,
    counting whole records (padding included)."""
    records = (m.pflags.base, m.pte.base, m.wbq_pfn.base, m.balloon_pfns, m.slot_owner)
    return sum(a.nbytes for a in records) / max(1, len(m.pte))


