"""Swap: slot allocation, the swap device cost model, and swap-in readahead.

Mirrors mm/swapfile.c (``get_swap_pages`` / ``scan_swap_map_slots``: next-fit from a cursor, so
pages evicted together get neighbouring slots), ``swap_free``, and mm/swap_state.c
(``__swapin_nr_pages``: the readahead window grows with readahead hits and collapses to one page
on random access; ``swap_cluster_readahead`` reads the aligned window around the faulting slot).

Simplifications: one swap device per guest; no per-cpu clusters or discard; I/O is modelled as
a per-request latency plus a per-page transfer time (bandwidth), charged to whoever waits for it.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    P_NSLOTS, P_SWAP_BASE, P_SWAP_NS_PER_PAGE, P_SWAP_READ_NS, P_SWAP_WRITE_NS, S_RA_HITS,
    S_RA_PREV_OFFSET, S_RA_PREV_WIN, S_SWAP_CURSOR, S_SWAP_USED)
from autoballoon.machine.mm.constants import PAGE_CLUSTER


@kernel
def get_swap_page(m, g, vpn):
    """get_swap_pages(): a free slot for vpn (next-fit from the cursor), or -1 when full."""
    n = m.P[g, P_NSLOTS]
    if m.S[g, S_SWAP_USED] >= n:
        return -1
    base = m.P[g, P_SWAP_BASE]
    off = m.S[g, S_SWAP_CURSOR]
    while m.slot_owner[base + off] >= 0:
        off += 1
        if off == n:
            off = 0
    slot = base + off
    m.slot_owner[slot] = vpn
    m.S[g, S_SWAP_CURSOR] = off + 1 if off + 1 < n else 0
    m.S[g, S_SWAP_USED] += 1
    return slot


@kernel
def swap_free(m, g, vpn):
    """swap_free(): release vpn's slot (the swap-cache copy is no longer needed)."""
    slot = m.swp[vpn]
    if slot >= 0:
        m.slot_owner[slot] = -1
        m.swp[vpn] = -1
        m.S[g, S_SWAP_USED] -= 1


@kernel
def get_nr_swap_pages(m, g):
    """get_nr_swap_pages(): free swap slots (0 without swap)."""
    return m.P[g, P_NSLOTS] - m.S[g, S_SWAP_USED]


@kernel
def vm_swap_full(m, g):
    """vm_swap_full(): more than half the swap in use, so swap-cache copies are freed eagerly."""
    return m.S[g, S_SWAP_USED] * 2 > m.P[g, P_NSLOTS]


@kernel
def swap_read_ns(m, g, npages):
    """Time to read npages in one request from the guest's swap (or file) device."""
    return m.P[g, P_SWAP_READ_NS] + npages * m.P[g, P_SWAP_NS_PER_PAGE]


@kernel
def swap_write_ns(m, g, npages):
    """Time the reclaimer waits to write npages (latency per request + bandwidth)."""
    return m.P[g, P_SWAP_WRITE_NS] + npages * m.P[g, P_SWAP_NS_PER_PAGE]


@kernel
def swapin_nr_pages(m, g, offset):
    """__swapin_nr_pages(): readahead window in pages for a swap-in at slot ``offset``."""
    max_pages = 1 << PAGE_CLUSTER
    hits = m.S[g, S_RA_HITS]
    m.S[g, S_RA_HITS] = 0
    prev_offset = m.S[g, S_RA_PREV_OFFSET]
    pages = hits + 2
    if pages == 2:
        if offset != prev_offset + 1 and offset != prev_offset - 1:
            pages = 1
    else:
        roundup = 4
        while roundup < pages:
            roundup <<= 1
        pages = roundup
    if pages > max_pages:
        pages = max_pages
    last_ra = m.S[g, S_RA_PREV_WIN] // 2
    if pages < last_ra:
        pages = last_ra
    m.S[g, S_RA_PREV_WIN] = pages
    m.S[g, S_RA_PREV_OFFSET] = offset
    return pages
