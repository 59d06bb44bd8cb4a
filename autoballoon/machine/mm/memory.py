"""Page faults and page-cache accesses of the workload: the slow path of an access.

Mirrors mm/memory.c (``handle_mm_fault`` → ``do_anonymous_page``, ``do_swap_page`` with
``swap_cluster_readahead``, ``do_wp_page``, ``filemap_fault``), mm/swap_state.c
(``__read_swap_cache_async``: every page read from swap, readahead included, goes through
``workingset_refault``), mm/filemap.c's read path (``filemap_read``: a page-cache miss starts
readahead, mm/readahead.py; a hit calls ``folio_mark_accessed``) and mm/swap.c's
``folio_mark_accessed``.

The fast path (an access to a resident, mapped, host-backed page only sets the accessed and dirty
bits) is inlined in workload/replay.py. Counted as the kernel counts: ``pgfault`` for every fault
(minor ones too: a swap-cache hit, a write to a page mapped read-only after a read swap-in),
``pgmajfault`` when the fault waited for I/O, ``pswpin`` per page read from swap (readahead
included), ``pgpgin`` in KiB per page read from swap or disk; read() of an uncached page is I/O
but no fault. The workload's stall is counted by cause (``stall_*_ns``).

The swap slot after a swap-in: a write fault frees it (the page becomes dirty: memory holds the
only copy); a read fault keeps it and maps the page read-only, so that its first write is a
minor fault; then 6.1 keeps the slot (``do_wp_page`` reuses an exclusive page: reclaim rewrites
the same slot) and 3.x frees it (``reuse_swap_page``). With swap more than half full the slot is
freed at once (``vm_swap_full``).

Simplifications: a first anon touch allocates a page even for a read (no shared zero page);
file pages are read from a disk with the guest's swap-device timing; mmap faults on file pages
read one page (no read-around); a swap readahead window is one request, waited for whole.
"""
from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import clear_bits, kernel, kernel_inline
from autoballoon.machine.layout import (
    ALIVE_RUNNING, P_FAULT_NS, P_KERNEL_OLD, P_NSLOTS, P_SWAP_BASE, PGACTIVATE, PGFAULT,
    PGMAJFAULT, PGPGIN,
    PSWPIN, S_ALIVE, S_RA_HITS, STALL_FAULT_NS, STALL_FILEREAD_NS, STALL_HOST_NS,
    STALL_SWAPIN_NS, SWAP_RA, SWAP_RA_HIT, THRASH_NS)
from autoballoon.machine.mm import lru, page_alloc, readahead, swap, workingset
from autoballoon.machine.mm.constants import (
    F_DIRTY, F_HYOUNG, F_PRESENT, F_UNMAPPED, F_WPROTECT, F_YOUNG, V_FILE,
    V_KIND_SET, V_MAPPED, PG_active, PG_locked, PG_readahead, PG_referenced, PG_writeback)
from autoballoon.machine.mm.workingset import workingset_age_nonresident
from autoballoon.trace.ops import OP_FILE, OP_SYSCALL, OP_WRITE

TASK_GFP = page_alloc.GFP_HIGHUSER_MOVABLE | page_alloc.CHARGE_WORKLOAD


@kernel
def folio_mark_accessed(m, g, pfn):
    """folio_mark_accessed(): second access to an unmapped page activates it."""
    flags = m.pflags[pfn]
    if not (flags & PG_referenced):
        m.pflags[pfn] = flags | PG_referenced
    elif not (flags & PG_active):
        l = lru.folio_lru_list(flags)
        lru.lru_del(m, g, l, pfn)
        m.pflags[pfn] = clear_bits(flags | PG_active, PG_referenced)
        lru.lru_add_head(m, g, l + 1, pfn)
        m.V[g, PGACTIVATE] += 1
        workingset_age_nonresident(m, g, 1)


@kernel
def swap_readahead(m, g, vpn, now):
    """swap_cluster_readahead(): read the aligned window of slots around vpn's slot.

    Neighbours come in as unmapped swap-cache pages with PG_readahead, each through
    workingset_refault (active if its refault distance fits). Their allocations are the
    fault's own (GFP_HIGHUSER_MOVABLE) and their reclaim is the faulting task's.
    Returns (pages read besides vpn's, allocation stall, workingset refaults), or pages -1 if
    the workload died allocating."""
    base = m.P[g, P_SWAP_BASE]
    offset = m.swp[vpn] - base
    win = swap.swapin_nr_pages(m, g, offset)
    if win <= 1:
        return 0, 0, 0
    start = offset & ~(win - 1)
    end = min(start + win, m.P[g, P_NSLOTS])
    extra = 0
    stall = 0
    thrash = 0
    for off in range(start, end):
        other = m.slot_owner[base + off]
        if other < 0 or other == vpn or m.pte[other] >= 0:
            continue
        pfn, s = page_alloc.alloc_pages(m, g, TASK_GFP, now + stall)
        stall += s
        if m.S[g, S_ALIVE] != ALIVE_RUNNING:
            return -1, stall, thrash
        if pfn < 0:
            break
        active, ws = workingset.workingset_refault(m, g, other, False)
        thrash += ws
        lru.lru_cache_add(m, g, pfn, other, True, active, ws)
        m.pflags[pfn] |= PG_readahead
        m.fref[pfn] |= F_UNMAPPED
        extra += 1
    m.V[g, SWAP_RA] += extra
    return extra, stall, thrash


@kernel
def map_swapped_in(m, g, vpn, pfn, op):
    """do_swap_page()'s end: should_try_to_free_swap() frees the slot on a write fault, or with
    swap more than half full (not while it is being written: folio_free_swap fails then); the
    page becomes dirty, memory holding its only copy. Kept on a read fault, the slot stays
    valid and the page is mapped read-only (exclusive)."""
    if m.swp[vpn] < 0:
        return
    if ((op & OP_WRITE) or swap.vm_swap_full(m, g)) and not (m.pflags[pfn] & PG_writeback):
        swap.swap_free(m, g, vpn)
        m.fref[pfn] |= F_DIRTY
    elif not (op & OP_WRITE):
        m.fref[pfn] |= F_WPROTECT


@kernel
def do_wp_page(m, g, pfn, vpn):
    """A write to a page mapped read-only after a read swap-in: a minor fault. 6.1 reuses the
    exclusive page and keeps its (now stale) swap slot; 3.x's reuse_swap_page frees it."""
    m.fref[pfn] = clear_bits(m.fref[pfn], F_WPROTECT)
    m.V[g, PGFAULT] += 1
    if m.P[g, P_KERNEL_OLD] and m.swp[vpn] >= 0 and not (m.pflags[pfn] & PG_writeback):
        swap.swap_free(m, g, vpn)
    m.V[g, STALL_FAULT_NS] += m.P[g, P_FAULT_NS]
    return m.P[g, P_FAULT_NS]


@kernel
def set_kind(m, vpn, op):
    """The first access decides a page's kind (anon or file, mapped or read()), unless boot
    knew it from the workload."""
    vf = m.vflags[vpn]
    if not (vf & V_KIND_SET):
        vf |= V_KIND_SET
        if op & OP_FILE:
            vf |= V_FILE
            if not (op & OP_SYSCALL):
                vf |= V_MAPPED
        m.vflags[vpn] = vf
    return vf


@kernel
def do_swap_page(m, g, vpn, pfn, op, now):
    """do_swap_page() of a page not in memory: its own refault detection, the readahead
    window, and one read for them all. Returns the stall in ns, or -1 if the workload died."""
    active, ws = workingset.workingset_refault(m, g, vpn, False)
    lru.lru_cache_add(m, g, pfn, vpn, True, active, ws)
    extra, stall, thrash = swap_readahead(m, g, vpn, now)
    if extra < 0:
        return -1
    io = swap.swap_read_ns(m, g, 1 + extra)
    m.V[g, PSWPIN] += 1 + extra
    m.V[g, PGPGIN] += 4 * (1 + extra)
    m.V[g, PGMAJFAULT] += 1
    m.V[g, STALL_SWAPIN_NS] += io
    if ws or thrash:
        m.V[g, THRASH_NS] += io
    map_swapped_in(m, g, vpn, pfn, op)
    return stall + io


@kernel
def read_file_page(m, g, vpn, now):
    """filemap_read() of an uncached page: readahead brings it (and its window) in; the
    reader waits for the read. Returns the stall in ns, or -1 if the workload died."""
    stall, io, thrash = readahead.page_cache_ra(m, g, vpn, now, False)
    if stall < 0:
        return -1
    m.V[g, STALL_FILEREAD_NS] += io
    m.V[g, THRASH_NS] += thrash
    return stall


@kernel_inline
def fault_in(m, g, vpn, vf, op, now):
    """Bring a non-resident page in. Returns the stall in ns, or -1 if the workload died."""
    anon = not (vf & V_FILE)
    mapped = (vf & V_MAPPED) != 0 or anon
    if not mapped:
        stall = read_file_page(m, g, vpn, now)
        if stall < 0 or m.pte[vpn] >= 0:
            return stall
    pfn, stall = page_alloc.alloc_pages(m, g, TASK_GFP, now)
    if pfn < 0:
        return -1
    if mapped:
        m.V[g, PGFAULT] += 1
        stall += m.P[g, P_FAULT_NS]
        m.V[g, STALL_FAULT_NS] += m.P[g, P_FAULT_NS]
    if anon and m.swp[vpn] >= 0:
        s = do_swap_page(m, g, vpn, pfn, op, now + stall)
        return -1 if s < 0 else stall + s
    if anon:
        # a new anonymous page (do_anonymous_page): 3.x starts it active
        lru.lru_cache_add(m, g, pfn, vpn, True, m.P[g, P_KERNEL_OLD] != 0, False)
        m.fref[pfn] |= F_DIRTY                         # no copy in swap: must be written
        return stall
    # a file page: an mmap fault reads one page (so does a read() whose readahead got no page)
    active, ws = workingset.workingset_refault(m, g, vpn, True)
    lru.lru_cache_add(m, g, pfn, vpn, False, active, ws)
    io = swap.swap_read_ns(m, g, 1)
    m.V[g, PGPGIN] += 4
    m.V[g, PGMAJFAULT] += mapped
    m.V[g, STALL_FILEREAD_NS] += io
    if ws:
        m.V[g, THRASH_NS] += io
    return stall + io


@kernel
def swap_cache_hit(m, g, vpn, pfn, op):
    """do_swap_page() finding the page in the swap cache (readahead brought it, or reclaim
    unmapped it to write it out): a minor fault; a readahead hit grows the next window."""
    m.fref[pfn] = clear_bits(m.fref[pfn], F_UNMAPPED)
    m.V[g, PGFAULT] += 1
    if m.pflags[pfn] & PG_readahead:
        m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_readahead)
        m.V[g, SWAP_RA_HIT] += 1
        m.S[g, S_RA_HITS] += 1
    map_swapped_in(m, g, vpn, pfn, op)
    m.V[g, STALL_FAULT_NS] += m.P[g, P_FAULT_NS]
    return m.P[g, P_FAULT_NS]


@kernel
def read_cached_page(m, g, pfn, vpn, now):
    """filemap_read() of a cached page: wait if its readahead is still in flight, start the
    next window at the PG_readahead mark. Returns the stall in ns, or -1 if the workload
    died."""
    stall = 0
    if m.pflags[pfn] & PG_locked:
        stall = readahead.wait_on_page_locked(m, g, pfn, now)
        m.V[g, STALL_FILEREAD_NS] += stall
    if m.pflags[pfn] & PG_readahead:
        m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_readahead)
        s, _, _ = readahead.page_cache_ra(m, g, vpn, now + stall, True)
        if s < 0:
            return -1
        stall += s
    return stall


@kernel_inline
def access_slow(m, g, vpn, op, now):
    """Everything but the fast path. Returns the stall in ns, or -1 if the workload died."""
    vf = set_kind(m, vpn, op)
    stall = 0
    pfn = m.pte[vpn]
    if pfn < 0:
        stall = fault_in(m, g, vpn, vf, op, now)
        if stall < 0:
            return -1
        pfn = m.pte[vpn]
    elif m.fref[pfn] & F_UNMAPPED:
        stall += swap_cache_hit(m, g, vpn, pfn, op)
    elif (vf & (V_FILE | V_MAPPED)) == V_FILE:
        s = read_cached_page(m, g, pfn, vpn, now)
        if s < 0:
            return -1
        stall += s
    if (op & OP_WRITE) and (m.fref[pfn] & F_WPROTECT):
        stall += do_wp_page(m, g, pfn, vpn)
    if not (m.fref[pfn] & F_PRESENT):
        h = host.host_fault(m, g, pfn, now + stall)
        if h < 0:
            return -1
        m.V[g, STALL_HOST_NS] += h
        stall += h
    if (vf & (V_FILE | V_MAPPED)) == V_FILE:
        folio_mark_accessed(m, g, pfn)
        m.fref[pfn] |= F_HYOUNG
    else:
        m.fref[pfn] |= F_YOUNG | F_HYOUNG
    if op & OP_WRITE:
        m.fref[pfn] |= F_DIRTY
    return stall
