"""File readahead for sequential read(): the on-demand readahead window.

Mirrors mm/readahead.c of Linux 6.1 (3.x's is the same for this case): ``page_cache_sync_ra``
on a read() miss and ``page_cache_async_ra`` on reaching a page marked PG_readahead, both through
``ondemand_readahead``: a read from the start of the file, or right after the previous one,
starts a window of ``get_init_ra_size`` pages (4 for a 4 KiB read), marks the page
``start + size - async_size``, and each time the reader reaches the mark the next window starts,
``get_next_ra_size`` times larger, up to ``ra_pages`` = 32 (128 KiB, VM_READAHEAD_PAGES; a
virtio-blk disk keeps the default). A read elsewhere reads just its page and leaves the state
alone. The window's pages go on the inactive file list (after ``workingset_refault``); the
reader waits for a sync window's read, not for an async one, unless it reaches a page of it
before the read completes (the page is locked: it waits for the rest).

Simplifications: one readahead state per guest (``struct file_ra_state`` is per open file; the
model's read() streams are one file each, or interleave rarely); a window stops at the first
page that is not a read() file page of the workload; the pages of one window are one request;
mmap faults read one page (no read-around, do_sync_mmap_readahead); no ``try_context_readahead``.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    ALIVE_RUNNING, P_NVPAGES, P_VPAGE_BASE, PGPGIN, S_ALIVE, S_RA_ASYNC_DONE, S_RA_ASYNC_SIZE,
    S_RA_PREV, S_RA_SIZE, S_RA_START)
from autoballoon.machine.mm import lru, page_alloc, swap, workingset
from autoballoon.machine.mm.constants import (
    V_FILE, V_MAPPED, VM_READAHEAD_PAGES, PG_locked, PG_readahead)


@kernel
def get_init_ra_size(size, max_pages):
    """get_init_ra_size(): the first window for a read of ``size`` pages."""
    newsize = 1
    while newsize < size:
        newsize <<= 1
    if newsize <= max_pages // 32:
        return newsize * 4
    if newsize <= max_pages // 4:
        return newsize * 2
    return max_pages


@kernel
def get_next_ra_size(cur, max_pages):
    """get_next_ra_size(): the window after one of ``cur`` pages."""
    if cur < max_pages // 16:
        return 4 * cur
    if cur <= max_pages // 2:
        return 2 * cur
    return max_pages


@kernel
def is_read_page(m, g, vpn):
    """A page a read() stream can read ahead: a file page of the workload not mmap()ed."""
    base = m.P[g, P_VPAGE_BASE]
    if vpn < base or vpn >= base + m.P[g, P_NVPAGES]:
        return False
    return (m.vflags[vpn] & (V_FILE | V_MAPPED)) == V_FILE


@kernel
def ondemand_readahead(m, g, index, async_hit):
    """ondemand_readahead() for a read of one page at ``index`` (a page number inside the
    workload): sets the window in S_RA_* and returns True, or returns False for a random read
    (read just the page, leave the state alone)."""
    max_pages = VM_READAHEAD_PAGES
    start, size, asize = m.S[g, S_RA_START], m.S[g, S_RA_SIZE], m.S[g, S_RA_ASYNC_SIZE]
    if index == 0:
        initial = True
    elif async_hit and (index == start + size - asize or index == start + size):
        m.S[g, S_RA_START] = start + size
        size = get_next_ra_size(size, max_pages)
        m.S[g, S_RA_SIZE] = size
        m.S[g, S_RA_ASYNC_SIZE] = size
        initial = False
    elif index - m.S[g, S_RA_PREV] <= 1 and index >= m.S[g, S_RA_PREV]:
        initial = True
    else:
        return False
    if initial:
        size = get_init_ra_size(1, max_pages)
        m.S[g, S_RA_START] = index
        m.S[g, S_RA_SIZE] = size
        m.S[g, S_RA_ASYNC_SIZE] = size - 1 if size > 1 else size
    start, size, asize = m.S[g, S_RA_START], m.S[g, S_RA_SIZE], m.S[g, S_RA_ASYNC_SIZE]
    if index == start and size == asize:      # the read would hit its own mark: merge
        add = get_next_ra_size(size, max_pages)
        if size + add <= max_pages:
            m.S[g, S_RA_ASYNC_SIZE] = add
            m.S[g, S_RA_SIZE] = size + add
        else:
            m.S[g, S_RA_SIZE] = max_pages
            m.S[g, S_RA_ASYNC_SIZE] = max_pages >> 1
    return True


@kernel
def read_window(m, g, base, now, locked):
    """Bring the window's missing pages into the page cache (each through workingset_refault),
    mark its PG_readahead page, and issue one read for them. Returns (pages read, allocation
    stall, workingset refaults), or pages -1 if the workload died allocating."""
    start, size, asize = m.S[g, S_RA_START], m.S[g, S_RA_SIZE], m.S[g, S_RA_ASYNC_SIZE]
    mark = start + size - asize
    n = 0
    stall = 0
    thrash = 0
    for index in range(start, start + size):
        vpn = base + index
        if not is_read_page(m, g, vpn):
            break
        if m.pte[vpn] >= 0:
            continue
        pfn, s = page_alloc.alloc_pages(m, g, page_alloc.GFP_HIGHUSER_MOVABLE
                                        | page_alloc.CHARGE_WORKLOAD, now + stall)
        stall += s
        if m.S[g, S_ALIVE] != ALIVE_RUNNING:
            return -1, stall, thrash
        if pfn < 0:
            break
        active, ws = workingset.workingset_refault(m, g, vpn, True)
        thrash += ws
        lru.lru_cache_add(m, g, pfn, vpn, False, active, ws)
        if index == mark:
            m.pflags[pfn] |= PG_readahead
        if locked:
            m.pflags[pfn] |= PG_locked
        n += 1
    m.V[g, PGPGIN] += 4 * n                      # KiB
    return n, stall, thrash


@kernel
def page_cache_ra(m, g, vpn, now, async_hit):
    """The read() path's readahead at page vpn (a miss, or a hit on the PG_readahead mark).
    Returns (stall of the reader, of which I/O wait, of which workingset refaults' I/O), or
    stall -1 if the workload died. A miss waits for its window's read; a hit starts the next
    window and does not wait (its pages stay locked until the read completes)."""
    base = m.P[g, P_VPAGE_BASE]
    index = vpn - base
    if not ondemand_readahead(m, g, index, async_hit):
        m.S[g, S_RA_START] = index                # a random read: just this page
        m.S[g, S_RA_SIZE] = 1
        m.S[g, S_RA_ASYNC_SIZE] = 0
    m.S[g, S_RA_PREV] = index
    n, stall, thrash = read_window(m, g, base, now, async_hit)
    if n < 0:
        return -1, 0, 0
    if n == 0:
        return stall, 0, 0
    io = swap.swap_read_ns(m, g, n)
    if async_hit:
        m.S[g, S_RA_ASYNC_DONE] = now + stall + io
        return stall, 0, 0
    return stall + io, io, io if thrash else 0


@kernel
def wait_on_page_locked(m, g, pfn, now):
    """A read reaches a page whose readahead is still in flight: it waits for it."""
    m.pflags[pfn] ^= PG_locked
    return max(0, m.S[g, S_RA_ASYNC_DONE] - now)
