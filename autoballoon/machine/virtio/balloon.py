"""The guest's virtio_balloon driver.

Mirrors drivers/virtio/virtio_balloon.c: ``towards_target``, ``fill_balloon`` and
``leak_balloon`` (at most VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256 pfns per message),
``update_balloon_size`` (``actual`` back to the host), ``update_balloon_stats`` (the 16 stats
tags, refreshed when the host polls), ``virtio_balloon_oom_notify`` (DEFLATE_ON_OOM: 256 pages
per OOM invocation), free page reporting (mm/page_reporting.c: 2 MiB blocks free for
PAGE_REPORTING_DELAY = 2 s are reported and the host drops their backing), and the 2012 RFC's
AUTO_BALLOON shrinker, as posted ("rfc") and corrected ("fixed"):
  - rfc: ``mutex_trylock(balloon_lock)`` fails (-1 / SHRINK_STOP) while the balloon work holds
    the lock across fill_balloon's 200 ms "Out of puff!" sleep, and the new *target* is passed
    to ``leak_balloon``, which takes a *count* capped at 256: up to 256 pages per 128 requested,
    nothing once the balloon is no larger than ``nr_to_scan``;
  - fixed: the lock is not held across the sleep and ``min(size, nr_to_scan)`` pages are leaked.
The shrinker does not change the host's target, so the balloon work inflates again towards it.

Simplifications: the work item runs one batch every ``balloon_batch_ns`` (virtqueue round trip
and the host's madvise); inflate allocations (GFP_HIGHUSER_MOVABLE | __GFP_NOMEMALLOC |
__GFP_NORETRY) may direct-reclaim once and never OOM, and the reclaim time is not added to the
work item's clock (the balloon inflates at its batch rate however hard reclaim is); the host
learns of deflated pages atomically with the guest freeing them, so MUST_TELL_HOST orders
nothing here and is only counted (``balloon_tell_host``); no page migration (balloon
compaction).
"""
from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    ALLOCSTALL, BALLOON_DEFLATE, BALLOON_INFLATE, BALLOON_OOM_DEFLATE, BALLOON_OUT_OF_PUFF,
    BALLOON_REVERSALS, BALLOON_SHRINKER_BUSY, BALLOON_SHRINKER_CALLS, BALLOON_TELL_HOST,
    FREE_PAGE_REPORTED, OOM_KILL, P_AUTOBALLOON_RFC, P_BALLOON_BATCH_NS, P_BLOCK_BASE, P_FEATURES,
    P_FRAME_BASE, P_MANAGED, P_NBLOCKS, PGFAULT, PGMAJFAULT, PGSCAN_DIRECT, PGSCAN_KSWAPD,
    PGSTEAL_DIRECT, PGSTEAL_KSWAPD, PSWPIN, PSWPOUT, S_BALLOON_ACTUAL, S_BALLOON_CLOCK,
    S_BALLOON_DIR, S_BALLOON_LOCKED, S_BALLOON_TARGET, S_NR_FREE, S_PUFF_UNTIL, S_REPORTING_CLOCK,
    S_STATS_CLOCK)
from autoballoon.machine.mm import buddy, lru, meminfo, page_alloc
from autoballoon.machine.mm.constants import (
    BALLOON_PUFF_SLEEP_NS, BLOCK_PAGES, OOM_VBALLOON_DEFAULT_PAGES, PAGE_REPORTING_DELAY_NS,
    PAGE_SHIFT, SHRINK_STOP, VIRTIO_BALLOON_ARRAY_PFNS_MAX, PG_balloon)
from autoballoon.uapi import (
    VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_REPORTING,
    VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_S_ALLOC_STALL, VIRTIO_BALLOON_S_ASYNC_RECLAIM,
    VIRTIO_BALLOON_S_ASYNC_SCAN, VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_CACHES,
    VIRTIO_BALLOON_S_DIRECT_RECLAIM, VIRTIO_BALLOON_S_DIRECT_SCAN, VIRTIO_BALLOON_S_HTLB_PGALLOC,
    VIRTIO_BALLOON_S_HTLB_PGFAIL, VIRTIO_BALLOON_S_MAJFLT, VIRTIO_BALLOON_S_MEMFREE,
    VIRTIO_BALLOON_S_MEMTOT, VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_OOM_KILLS,
    VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_SWAP_OUT)

NEVER = 2**62


@kernel
def has_feature(m, g, bit):
    return (m.P[g, P_FEATURES] >> bit) & 1 == 1


@kernel
def towards_target(m, g):
    """towards_target(): pages still to inflate (> 0) or deflate (< 0)."""
    return m.S[g, S_BALLOON_TARGET] - m.S[g, S_BALLOON_ACTUAL]


@kernel
def note_direction(m, g, direction):
    """Count inflate/deflate reversals (churn)."""
    if m.S[g, S_BALLOON_DIR] != 0 and m.S[g, S_BALLOON_DIR] != direction:
        m.V[g, BALLOON_REVERSALS] += 1
    m.S[g, S_BALLOON_DIR] = direction


@kernel
def fill_balloon(m, g, num, now):
    """fill_balloon(): inflate by up to num (<= 256) pages; returns pages inflated."""
    num = min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX)
    base = m.P[g, P_FRAME_BASE]
    done = 0
    m.S[g, S_BALLOON_LOCKED] = m.P[g, P_AUTOBALLOON_RFC]   # the RFC allocates under the lock
    for _ in range(num):
        pfn, _stall = page_alloc.alloc_pages(m, g, page_alloc.__GFP_NORETRY, now)
        if pfn < 0:
            m.V[g, BALLOON_OUT_OF_PUFF] += 1
            m.S[g, S_PUFF_UNTIL] = now + BALLOON_PUFF_SLEEP_NS
            break
        m.pflags[pfn] = PG_balloon
        m.balloon_pfns[base + m.S[g, S_BALLOON_ACTUAL]] = pfn
        m.S[g, S_BALLOON_ACTUAL] += 1
        host.host_drop(m, pfn)
        if not has_feature(m, g, VIRTIO_BALLOON_F_DEFLATE_ON_OOM):
            m.P[g, P_MANAGED] -= 1          # adjust_managed_page_count(page, -1)
        done += 1
    m.S[g, S_BALLOON_LOCKED] = 0
    if done:
        m.V[g, BALLOON_INFLATE] += done
        note_direction(m, g, 1)
    return done


@kernel
def leak_balloon(m, g, num, now):
    """leak_balloon(): deflate by up to num (capped at 256) pages; returns pages freed."""
    num = min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX, m.S[g, S_BALLOON_ACTUAL])
    base = m.P[g, P_FRAME_BASE]
    for _ in range(num):
        m.S[g, S_BALLOON_ACTUAL] -= 1
        pfn = m.balloon_pfns[base + m.S[g, S_BALLOON_ACTUAL]]
        m.balloon_pfns[base + m.S[g, S_BALLOON_ACTUAL]] = -1
        buddy.free_frame(m, g, pfn, now)
        if not has_feature(m, g, VIRTIO_BALLOON_F_DEFLATE_ON_OOM):
            m.P[g, P_MANAGED] += 1
    if num:
        m.V[g, BALLOON_DEFLATE] += num
        if has_feature(m, g, VIRTIO_BALLOON_F_MUST_TELL_HOST):
            m.V[g, BALLOON_TELL_HOST] += 1
        note_direction(m, g, -1)
    return num


@kernel
def balloon_work(m, g, now):
    """update_balloon_size_func(): one batch per balloon_batch_ns towards the target."""
    batch = m.P[g, P_BALLOON_BATCH_NS]
    while m.S[g, S_BALLOON_CLOCK] <= now:
        t = m.S[g, S_BALLOON_CLOCK]
        if t < m.S[g, S_PUFF_UNTIL]:
            m.S[g, S_BALLOON_CLOCK] = m.S[g, S_PUFF_UNTIL]
            continue
        diff = towards_target(m, g)
        if diff == 0:
            m.S[g, S_BALLOON_CLOCK] = now + 1
            break
        if diff > 0:
            fill_balloon(m, g, diff, t)
        else:
            leak_balloon(m, g, -diff, t)
        m.S[g, S_BALLOON_CLOCK] = t + batch


@kernel
def virtballoon_oom_notify(m, g, now):
    """virtio_balloon_oom_notify(): leak 256 pages; returns pages freed. Registered on the OOM
    notifier chain when DEFLATE_ON_OOM is negotiated (virtballoon_probe: callbacks.probe)."""
    freed = leak_balloon(m, g, OOM_VBALLOON_DEFAULT_PAGES, now)
    m.V[g, BALLOON_OOM_DEFLATE] += freed
    return freed


@kernel
def balloon_lock_held(m, g, now):
    """The RFC holds balloon_lock across fill_balloon — its allocations (whose direct reclaim
    may call this very shrinker) and its 200 ms back-off. Fixed: the lock covers only moving
    pages in and out, as in mainline, so the shrinker can always take it."""
    return m.S[g, S_BALLOON_LOCKED] != 0 or (m.P[g, P_AUTOBALLOON_RFC] != 0
                                              and now < m.S[g, S_PUFF_UNTIL])


@kernel
def shrinker_leak(m, g, nr_to_scan, now):
    """What the auto-balloon shrinker leaks for a request of nr_to_scan pages."""
    nr_pages = m.S[g, S_BALLOON_ACTUAL]
    if m.P[g, P_AUTOBALLOON_RFC]:
        new_target = nr_pages - nr_to_scan if nr_pages > nr_to_scan else 0
        return leak_balloon(m, g, new_target, now)   # a target where a count is expected
    return leak_balloon(m, g, min(nr_pages, nr_to_scan), now)


@kernel
def balloon_shrink_old(m, g, nr_to_scan, now):
    """The RFC's ``balloon_shrinker()`` (Linux <= 3.11 API): pages left, or -1 when busy."""
    m.V[g, BALLOON_SHRINKER_CALLS] += 1
    if balloon_lock_held(m, g, now):
        m.V[g, BALLOON_SHRINKER_BUSY] += 1
        return -1
    if nr_to_scan and m.S[g, S_BALLOON_ACTUAL]:
        shrinker_leak(m, g, nr_to_scan, now)
    return m.S[g, S_BALLOON_ACTUAL]


@kernel
def balloon_shrinker_count(m, g):
    """count_objects() of the auto-balloon shrinker on the mainline API."""
    return m.S[g, S_BALLOON_ACTUAL]


@kernel
def balloon_shrinker_scan(m, g, nr_to_scan, now):
    """scan_objects() of the auto-balloon shrinker on the mainline API: freed or SHRINK_STOP."""
    m.V[g, BALLOON_SHRINKER_CALLS] += 1
    if balloon_lock_held(m, g, now):
        m.V[g, BALLOON_SHRINKER_BUSY] += 1
        return SHRINK_STOP
    return shrinker_leak(m, g, nr_to_scan, now)


@kernel
def page_reporting_process(m, g, now):
    """page_reporting_process(): report whole free 2 MiB blocks, free for >= 2 s, to the host.

    Runs when due (the free path schedules it PAGE_REPORTING_DELAY after a block becomes free)
    and schedules itself again for the earliest block not yet old enough.
    """
    if not has_feature(m, g, VIRTIO_BALLOON_F_REPORTING):
        return
    if now < m.S[g, S_REPORTING_CLOCK]:
        return
    next_due = NEVER
    b0 = m.P[g, P_BLOCK_BASE]
    for blk in range(b0, b0 + m.P[g, P_NBLOCKS]):
        since = m.blk_since[blk]
        if since < 0 or m.blk_reported[blk]:
            continue
        if now - since < PAGE_REPORTING_DELAY_NS:
            next_due = min(next_due, since + PAGE_REPORTING_DELAY_NS)
            continue
        for pfn in range(blk * BLOCK_PAGES, (blk + 1) * BLOCK_PAGES):
            host.host_drop(m, pfn)
        m.blk_reported[blk] = 1
        m.V[g, FREE_PAGE_REPORTED] += BLOCK_PAGES
    m.S[g, S_REPORTING_CLOCK] = next_due


@kernel
def update_balloon_stats(m, g):
    """update_balloon_stats(): fill the stats virtqueue buffer (swap and memory in bytes)."""
    v = m.V[g]
    st = m.stats[g]
    st[VIRTIO_BALLOON_S_SWAP_IN] = v[PSWPIN] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_SWAP_OUT] = v[PSWPOUT] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_MAJFLT] = v[PGMAJFAULT]
    st[VIRTIO_BALLOON_S_MINFLT] = v[PGFAULT]                  # all faults, as Linux
    st[VIRTIO_BALLOON_S_MEMFREE] = m.S[g, S_NR_FREE] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_MEMTOT] = meminfo.totalram_pages(m, g) << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_AVAIL] = meminfo.si_mem_available(m, g) << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_CACHES] = lru.lru_pages(m, g, True) << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_HTLB_PGALLOC] = 0
    st[VIRTIO_BALLOON_S_HTLB_PGFAIL] = 0
    st[VIRTIO_BALLOON_S_OOM_KILLS] = v[OOM_KILL]
    st[VIRTIO_BALLOON_S_ALLOC_STALL] = v[ALLOCSTALL]
    st[VIRTIO_BALLOON_S_ASYNC_SCAN] = v[PGSCAN_KSWAPD]
    st[VIRTIO_BALLOON_S_DIRECT_SCAN] = v[PGSCAN_DIRECT]
    st[VIRTIO_BALLOON_S_ASYNC_RECLAIM] = v[PGSTEAL_KSWAPD]
    st[VIRTIO_BALLOON_S_DIRECT_RECLAIM] = v[PGSTEAL_DIRECT]


@kernel
def stats_poll(m, g, now, poll_ns):
    """The host's stats timer (QEMU guest-stats-polling-interval) asks for fresh stats."""
    if not has_feature(m, g, VIRTIO_BALLOON_F_STATS_VQ) or now < m.S[g, S_STATS_CLOCK]:
        return
    update_balloon_stats(m, g)
    m.S[g, S_STATS_CLOCK] = now + poll_ns
