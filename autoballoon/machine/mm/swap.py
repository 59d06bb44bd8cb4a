"""Swap: slot allocation, the swap device cost model, and swap-in readahead.

Mirrors mm/swapfile.c (``get_swap_pages`` / ``scan_swap_map_slots``: next-fit from a cursor, so
pages evicted together get neighbouring slots), ``swap_free``, and mm/swap_state.c
(``__swapin_nr_pages``: the readahead window grows with readahead hits and collapses to one page
on random access; ``swap_cluster_readahead`` reads the aligned window around the faulting slot:
a virtio-blk swap disk is rotational, so Linux uses cluster, not VMA, readahead).

Simplifications: one swap device per guest; no per-cpu clusters or discard; I/O is modelled as
a per-request latency plus a per-page transfer time (bandwidth), charged to whoever waits for it.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    P_KERNEL_OLD,
    P_NSLOTS, P_SWAP_BASE, P_SWAP_NS_PER_PAGE, P_SWAP_READ_NS, S_RA_HITS,
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
def swapin_nr_pages(m, g, offset):
    """swapin_nr_pages() / __swapin_nr_pages(): readahead window in pages for a swap-in at slot
    ``offset``: grows with the readahead hits since the last swap-in, collapses to one page on a
    non-adjacent offset without hits, shrinks at most by half. ``prev_offset`` moves only when
    there were no hits. 3.x always reads the whole aligned cluster of 1 << page_cluster slots."""
    max_pages = 1 << PAGE_CLUSTER
    if m.P[g, P_KERNEL_OLD]:
        return max_pages
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
    if hits == 0:
        m.S[g, S_RA_PREV_OFFSET] = offset
    m.S[g, S_RA_PREV_WIN] = pages
    return pages
