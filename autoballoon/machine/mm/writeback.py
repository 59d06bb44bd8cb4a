"""Writeback: writes in flight, their completion, and the flusher.

Mirrors the life of a folio written for reclaim in Linux 6.1 (mm/vmscan.c ``pageout``,
mm/page_io.c ``swap_writepage``, mm/filemap.c ``folio_end_writeback``, mm/swap.c
``folio_rotate_reclaimable``) and the flusher (mm/page-writeback.c, fs/fs-writeback.c):
- a write starts asynchronously: the page gets PG_writeback and stays on its LRU list; the
  writer pays only the submission (``BIO_SUBMIT_NS`` per page), not the I/O;
- the guest's disk is a queue: requests transfer one after another at its bandwidth, and each
  completes its latency after its transfer (``submit_write``); a full queue blocks the
  submitter; a write of a page the host has swapped out first waits for the host to read it
  back (double paging);
- when a write completes, PG_writeback goes; a page reclaim wanted gone (PG_reclaim) is moved to
  the tail of the inactive list (``pgrotated``), where the next scan frees it;
- the flusher wakes every 5 s (dirty_writeback_centisecs) and writes the dirty file pages that
  have been dirty for 30 s (dirty_expire_centisecs), or all of them while they exceed 10 % of
  dirtyable memory (dirty_background_ratio); reclaim wakes it when it meets only dirty pages.

Simplifications: one request per reclaim batch or flusher pass (the block layer merges the
adjacent writes of one batch); reads do not queue behind writes; the flusher writes pages, not
inodes, and learns a page's dirtying time when it first sees it dirty (at most 5 s late); no
writer throttling (balance_dirty_pages) at the dirty limit.
"""
from autoballoon.machine.jit import clear_bits, kernel
from autoballoon.machine.layout import (
    NR_WRITTEN, P_FRAME_BASE, P_NFRAMES, P_NVPAGES, P_SWAP_NS_PER_PAGE, P_SWAP_WRITE_NS,
    P_TOTALRESERVE, P_VPAGE_BASE, PGPGOUT, PGROTATED, S_DEV_BUSY_UNTIL, S_FLUSH_CLOCK,
    S_NR_DIRTY, S_NR_FREE, S_NR_WRITEBACK, S_WBQ_HEAD, S_WBQ_LEN)
from autoballoon.machine.mm import lru
from autoballoon.machine.mm.constants import (
    DIRTY_BACKGROUND_RATIO, DIRTY_EXPIRE_S, DIRTY_WRITEBACK_NS, F_DIRTY, LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE, PG_active, PG_lru, PG_reclaim, PG_swapbacked, PG_writeback, V_FILE)

NS_PER_S = 1_000_000_000
STAMP_WRAP = 65535                     # the dirtied stamp is a uint16
QUEUE_DEPTH = 256                      # requests a virtio-blk queue holds (nr_requests)


@kernel
def submit_write(m, g, now, npages, wait_ns):
    """One write request of npages to the guest's disk, submitted at ``now`` after ``wait_ns``
    (host read-backs). Returns (completion time, how long the submitter was blocked).
    Transfers are serialised at the device's bandwidth; each request's latency overlaps with the
    others' (a queue depth > 1). The queue holds at most QUEUE_DEPTH pages' transfers: beyond
    that the submitter sleeps for a free request (blk_mq_get_tag), which is what keeps reclaim
    from putting more pages under writeback than the disk can take."""
    per_page = m.P[g, P_SWAP_NS_PER_PAGE]
    t = now + wait_ns
    blocked = max(0, m.S[g, S_DEV_BUSY_UNTIL] - t - QUEUE_DEPTH * per_page)
    start = max(t + blocked, m.S[g, S_DEV_BUSY_UNTIL])
    end = start + npages * per_page
    m.S[g, S_DEV_BUSY_UNTIL] = end
    return end + m.P[g, P_SWAP_WRITE_NS], blocked


@kernel
def queue_write(m, g, pfn):
    """folio_start_writeback(): pfn's write joins the queue; its completion time is set when its
    request is submitted (commit_writes)."""
    cap = m.P[g, P_NFRAMES]
    slot = m.P[g, P_FRAME_BASE] + (m.S[g, S_WBQ_HEAD] + m.S[g, S_WBQ_LEN]) % cap
    m.wbq_pfn[slot] = pfn
    m.wbq_vpn[slot] = m.rmap[pfn]
    m.S[g, S_WBQ_LEN] += 1
    m.pflags[pfn] |= PG_writeback
    m.S[g, S_NR_WRITEBACK] += 1
    m.V[g, PGPGOUT] += 4                       # KiB, as /proc/vmstat counts it


@kernel
def commit_writes(m, g, k, done):
    """The last k queued writes complete at ``done`` (never before those queued earlier)."""
    cap = m.P[g, P_NFRAMES]
    base = m.P[g, P_FRAME_BASE]
    n = m.S[g, S_WBQ_LEN]
    if n > k:
        done = max(done, m.wbq_done[base + (m.S[g, S_WBQ_HEAD] + n - k - 1) % cap])
    for i in range(n - k, n):
        m.wbq_done[base + (m.S[g, S_WBQ_HEAD] + i) % cap] = done


@kernel
def folio_rotate_reclaimable(m, g, pfn):
    """folio_rotate_reclaimable(): a clean page reclaim wanted gone moves to the inactive
    tail, so that the next scan frees it."""
    flags = m.pflags[pfn]
    if not (flags & PG_lru) or (m.fref[pfn] & F_DIRTY):
        return
    l = lru.folio_lru_list(flags)
    lru.lru_del(m, g, l, pfn)
    m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_active)
    lru.lru_add_tail(m, g, LRU_INACTIVE_ANON if flags & PG_swapbacked else LRU_INACTIVE_FILE,
                     pfn)
    m.V[g, PGROTATED] += 1


@kernel
def writeback_end(m, g, now):
    """End every write that has completed by ``now``: folio_end_writeback() per page. A page
    freed meanwhile (unmapped, or its process killed) left a stale entry: it is skipped."""
    cap = m.P[g, P_NFRAMES]
    base = m.P[g, P_FRAME_BASE]
    while m.S[g, S_WBQ_LEN]:
        slot = base + m.S[g, S_WBQ_HEAD]
        if m.wbq_done[slot] > now:
            break
        m.S[g, S_WBQ_HEAD] = (m.S[g, S_WBQ_HEAD] + 1) % cap
        m.S[g, S_WBQ_LEN] -= 1
        pfn = m.wbq_pfn[slot]
        if not (m.pflags[pfn] & PG_writeback) or m.rmap[pfn] != m.wbq_vpn[slot]:
            continue
        m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_writeback)
        m.S[g, S_NR_WRITEBACK] -= 1
        m.V[g, NR_WRITTEN] += 1
        if m.pflags[pfn] & PG_reclaim:
            m.pflags[pfn] = clear_bits(m.pflags[pfn], PG_reclaim)
            folio_rotate_reclaimable(m, g, pfn)


@kernel
def next_completion(m, g):
    """When the oldest write in flight completes (or -1 if none is)."""
    if m.S[g, S_WBQ_LEN] == 0:
        return -1
    return m.wbq_done[m.P[g, P_FRAME_BASE] + m.S[g, S_WBQ_HEAD]]


@kernel
def wakeup_flusher(m, g, now):
    """wakeup_flusher_threads(): the flusher runs at once."""
    if m.S[g, S_FLUSH_CLOCK] > now:
        m.S[g, S_FLUSH_CLOCK] = now


@kernel
def dirty_age(stamp, now):
    """Seconds since a page was first seen dirty (``dirtied`` holds the time in seconds, modulo
    STAMP_WRAP, plus 1; 0 means clean)."""
    return (now // NS_PER_S % STAMP_WRAP + 1 - stamp) % STAMP_WRAP


@kernel
def flusher(m, g, now):
    """wb_workfn() every DIRTY_WRITEBACK period (or when woken): write the dirty file pages
    dirty for DIRTY_EXPIRE, or every dirty one while they exceed the background threshold."""
    if now < m.S[g, S_FLUSH_CLOCK]:
        return
    m.S[g, S_FLUSH_CLOCK] = now + DIRTY_WRITEBACK_NS
    base = m.P[g, P_VPAGE_BASE]
    end = base + m.P[g, P_NVPAGES]
    dirty = 0
    for vpn in range(base, end):
        pfn = m.pte[vpn]
        if pfn < 0 or not (m.vflags[vpn] & V_FILE) or not (m.fref[pfn] & F_DIRTY):
            m.dirtied[vpn] = 0
        else:
            if m.dirtied[vpn] == 0:
                m.dirtied[vpn] = now // NS_PER_S % STAMP_WRAP + 1
            dirty += 1
    m.S[g, S_NR_DIRTY] = dirty
    dirtyable = max(m.S[g, S_NR_FREE] - m.P[g, P_TOTALRESERVE], 0) + lru.lru_pages(m, g, True)
    background = dirty * 100 > dirtyable * DIRTY_BACKGROUND_RATIO
    writes = 0
    for vpn in range(base, end):
        if due_for_writeback(m, vpn, now, background):
            writes += 1
    if writes == 0:
        return
    for vpn in range(base, end):
        if due_for_writeback(m, vpn, now, background):
            pfn = m.pte[vpn]
            m.fref[pfn] = clear_bits(m.fref[pfn], F_DIRTY)
            m.dirtied[vpn] = 0
            queue_write(m, g, pfn)
    done, _ = submit_write(m, g, now, writes, 0)
    commit_writes(m, g, writes, done)
    m.S[g, S_NR_DIRTY] -= writes


@kernel
def due_for_writeback(m, vpn, now, background):
    """A dirty file page the flusher writes now: expired, or any while above background."""
    stamp = m.dirtied[vpn]
    if stamp == 0 or (m.pflags[m.pte[vpn]] & PG_writeback):
        return False
    return background or dirty_age(stamp, now) >= DIRTY_EXPIRE_S
