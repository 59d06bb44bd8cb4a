"""The guest's virtio_balloon driver.

Mirrors drivers/virtio/virtio_balloon.c: ``towards_target``, ``fill_balloon`` and
``leak_balloon`` (at most VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256 pfns per message, each a
``tell_host`` round trip), ``update_balloon_size`` (``actual`` back to the host),
``update_balloon_stats`` (the tags the guest's kernel version sends, refreshed when the host
polls), ``virtio_balloon_oom_notify`` (DEFLATE_ON_OOM: 256 pages per OOM invocation), free page
reporting (mm/page_reporting.c), and the 2012 RFC's AUTO_BALLOON shrinker, as posted ("rfc")
and corrected ("fixed").

When the balloon work runs (``balloon_work``): in 6.1 the work item ``update_balloon_size_func``
is queued only by a config change (QEMU's ``virtio_notify_config`` on every ``balloon``
command, even one that repeats the target) and requeues itself while it has not reached the
target; in 3.x the ``balloon()`` kthread sleeps on ``config_change`` while at target and is
woken by a config change *or a stats request* (each host stats poll). Neither the OOM notifier
nor the RFC shrinker wakes it: after they deflate, the balloon stays below target until the
host writes the target again (6.1) or the next wake-up (3.x).

What a batch costs (its time runs on the work's own clock, ``S_BALLOON_CLOCK``): the
allocations' direct reclaim, the 200 ms "Out of puff!" ``msleep`` when an allocation fails, and
the ``tell_host`` round trip (``tell_host`` + the host's per-page madvise: DONTNEED on inflate,
WILLNEED on deflate). Deflation by the RFC shrinker or the OOM notifier runs in the reclaiming
task, which pays its round trip (``S_CALLBACK_NS``, collected by reclaim).

``balloon_lock``: the RFC (patch 1/2, "move locking to the balloon thread") holds it across the
whole batch: allocations (whose direct reclaim may call this very shrinker), the 200 ms sleep
and ``tell_host``; its shrinker's ``mutex_trylock`` then fails (-1 / SHRINK_STOP). "fixed"
holds it only while pages move and the host is told, as mainline does. The RFC shrinker also
passes its new *target* to ``leak_balloon``, which takes a *count* capped at 256: up to 256
pages per 128 requested, nothing once the balloon is no larger than ``nr_to_scan``; "fixed"
leaks ``min(size, nr_to_scan)``. A shrinker or OOM deflation holds the lock for its round trip
and the work waits for it. ``balloon_lock_ns`` adds up every hold (the work's batches and the
tasks' deflations), charged when the hold begins: a 200 ms out-of-puff batch counts in full at
its start.

Simplifications: the host learns of deflated pages atomically with the guest freeing them, so
MUST_TELL_HOST orders nothing here and is only counted (``balloon_tell_host``); no page
migration (balloon compaction); free page reporting takes no blocks off the free lists while a
report is in flight.
"""
from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    ALLOCSTALL, BALLOON_DEFLATE, BALLOON_INFLATE, BALLOON_LOCK_NS, BALLOON_OOM_DEFLATE,
    BALLOON_OUT_OF_PUFF, BALLOON_REVERSALS, BALLOON_SHRINKER_BUSY, BALLOON_SHRINKER_CALLS,
    BALLOON_TELL_HOST, FREE_PAGE_REPORTED, KERNEL_6_1, KERNEL_6_12, OOM_KILL, PGFAULT, PGMAJFAULT, PGSCAN_DIRECT,
    PGSCAN_KSWAPD, PGSTEAL_DIRECT, PGSTEAL_KSWAPD, PSWPIN, PSWPOUT, P_AUTOBALLOON_RFC, P_BLOCK_BASE,
    P_FEATURES, P_FRAME_BASE, P_KERNEL_OLD, P_KERNEL_VERSION, P_MADVISE_DONTNEED_NS,
    P_MADVISE_WILLNEED_NS, P_MANAGED, P_NBLOCKS, P_NVPAGES, P_TELL_HOST_NS, P_VPAGE_BASE,
    P_WMARK_LOW, S_BALLOON_ACTUAL, S_BALLOON_CLOCK, S_BALLOON_DIR, S_BALLOON_KICK,
    S_BALLOON_LOCK_FROM, S_BALLOON_LOCK_UNTIL, S_BALLOON_TARGET, S_BALLOON_TASK_UNTIL,
    S_CALLBACK_NS, S_NR_FREE, S_REPORTING_CLOCK, S_STATS_CLOCK)
from autoballoon.machine.mm.constants import (
    BALLOON_PUFF_SLEEP_NS, BLOCK_PAGES, OOM_VBALLOON_DEFAULT_PAGES, PAGEBLOCK_ORDER,
    PAGE_REPORTING_CAPACITY, PAGE_REPORTING_DELAY_NS, PAGE_SHIFT, PG_balloon, SHRINK_STOP,
    VIRTIO_BALLOON_ARRAY_PFNS_MAX)
from autoballoon.uapi import (
    VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_REPORTING,
    VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_S_ALLOC_STALL, VIRTIO_BALLOON_S_ASYNC_RECLAIM,
    VIRTIO_BALLOON_S_ASYNC_SCAN, VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_CACHES,
    VIRTIO_BALLOON_S_DIRECT_RECLAIM, VIRTIO_BALLOON_S_DIRECT_SCAN, VIRTIO_BALLOON_S_HTLB_PGALLOC,
    VIRTIO_BALLOON_S_HTLB_PGFAIL, VIRTIO_BALLOON_S_MAJFLT, VIRTIO_BALLOON_S_MEMFREE,
    VIRTIO_BALLOON_S_MEMTOT, VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_OOM_KILLS,
    VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_SWAP_OUT)
from autoballoon.machine.mm import buddy, lru, meminfo, page_alloc

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
def tell_host_ns(m, g, pages, inflate):
    """One tell_host() round trip for ``pages`` pfns: the virtqueue kick and interrupt, and
    QEMU's madvise of each page (DONTNEED on inflate, WILLNEED on deflate)."""
    per_page = m.P[g, P_MADVISE_DONTNEED_NS] if inflate else m.P[g, P_MADVISE_WILLNEED_NS]
    return m.P[g, P_TELL_HOST_NS] + pages * per_page


@kernel
def lock_balloon(m, g, start, until):
    """balloon_lock is held from ``start`` to ``until`` (NEVER: until further notice; the hold
    is counted once its end is known)."""
    m.S[g, S_BALLOON_LOCK_FROM] = start
    m.S[g, S_BALLOON_LOCK_UNTIL] = until
    if until != NEVER:
        m.V[g, BALLOON_LOCK_NS] += until - start


@kernel
def balloon_lock_held(m, g, now):
    """Would mutex_trylock(&balloon_lock) fail at ``now``?"""
    return m.S[g, S_BALLOON_LOCK_FROM] <= now < m.S[g, S_BALLOON_LOCK_UNTIL]


@kernel
def fill_balloon(m, g, num, now):
    """fill_balloon(): inflate by up to num (<= 256) pages. Returns the batch's duration."""
    num = min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX)
    rfc = m.P[g, P_AUTOBALLOON_RFC] != 0
    if rfc:
        lock_balloon(m, g, now, NEVER)   # the RFC allocates under the lock
    base = m.P[g, P_FRAME_BASE]
    cost = 0
    done = 0
    for _ in range(num):
        pfn, stall = page_alloc.alloc_pages(m, g, page_alloc.__GFP_NORETRY, now + cost)
        cost += stall
        if pfn < 0:
            m.V[g, BALLOON_OUT_OF_PUFF] += 1
            cost += BALLOON_PUFF_SLEEP_NS
            break
        m.pflags[pfn] = PG_balloon
        m.balloon_pfns[base + m.S[g, S_BALLOON_ACTUAL]] = pfn
        m.S[g, S_BALLOON_ACTUAL] += 1
        host.host_drop(m, pfn)
        if not has_feature(m, g, VIRTIO_BALLOON_F_DEFLATE_ON_OOM):
            m.P[g, P_MANAGED] -= 1          # adjust_managed_page_count(page, -1)
        done += 1
    tell = tell_host_ns(m, g, done, True) if done else 0
    lock_balloon(m, g, now if rfc else now + cost, now + cost + tell)
    if done:
        m.V[g, BALLOON_INFLATE] += done
        note_direction(m, g, 1)
    return cost + tell


@kernel
def leak_balloon(m, g, num, now):
    """leak_balloon(): deflate by up to num (capped at 256) pages and tell the host.
    Returns (pages freed, round-trip time); the caller holds balloon_lock meanwhile."""
    num = min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX, m.S[g, S_BALLOON_ACTUAL])
    if num == 0:
        return 0, 0
    base = m.P[g, P_FRAME_BASE]
    for _ in range(num):
        m.S[g, S_BALLOON_ACTUAL] -= 1
        pfn = m.balloon_pfns[base + m.S[g, S_BALLOON_ACTUAL]]
        m.balloon_pfns[base + m.S[g, S_BALLOON_ACTUAL]] = -1
        buddy.free_frame(m, g, pfn, now)
        if not has_feature(m, g, VIRTIO_BALLOON_F_DEFLATE_ON_OOM):
            m.P[g, P_MANAGED] += 1
    m.V[g, BALLOON_DEFLATE] += num
    if has_feature(m, g, VIRTIO_BALLOON_F_MUST_TELL_HOST):
        m.V[g, BALLOON_TELL_HOST] += 1
    note_direction(m, g, -1)
    return num, tell_host_ns(m, g, num, False)


@kernel
def balloon_work(m, g, now):
    """The balloon work (6.1 ``update_balloon_size_func`` / 3.x ``balloon()`` kthread): while
    kicked, one batch towards the target at a time, each starting when the last one ended and
    balloon_lock is free; it goes idle once at target."""
    if not m.S[g, S_BALLOON_KICK]:
        m.S[g, S_BALLOON_CLOCK] = now            # idle: a kick starts it at that moment
        return
    while m.S[g, S_BALLOON_CLOCK] <= now:
        t = max(m.S[g, S_BALLOON_CLOCK], m.S[g, S_BALLOON_TASK_UNTIL])   # mutex_lock()
        diff = towards_target(m, g)
        if diff == 0:
            m.S[g, S_BALLOON_KICK] = 0
            m.S[g, S_BALLOON_CLOCK] = now
            break
        if diff > 0:
            took = fill_balloon(m, g, diff, t)
        else:
            _, took = leak_balloon(m, g, -diff, t)
            lock_balloon(m, g, t, t + took)
        m.S[g, S_BALLOON_CLOCK] = t + took


@kernel
def kick_balloon(m, g):
    """virtballoon_changed() (a config change), or stats_request() waking the 3.x kthread."""
    m.S[g, S_BALLOON_KICK] = 1


@kernel
def deflate_in_task(m, g, num, now):
    """leak_balloon() called by a reclaiming or allocating task (the shrinker, the OOM
    notifier): it first waits for balloon_lock (mutex_lock), then pays the round trip; the time
    goes to S_CALLBACK_NS for the task to collect. Returns pages freed."""
    start = m.S[g, S_BALLOON_LOCK_UNTIL] if balloon_lock_held(m, g, now) else now
    freed, tell = leak_balloon(m, g, num, start)
    m.S[g, S_CALLBACK_NS] += start - now + tell
    m.V[g, BALLOON_LOCK_NS] += tell
    # The task holds the lock until start + tell; the balloon work waits for it. (The task's
    # own next call comes after it let go: the reclaim pass's clock does not move meanwhile.)
    m.S[g, S_BALLOON_TASK_UNTIL] = max(m.S[g, S_BALLOON_TASK_UNTIL], start + tell)
    return freed


@kernel
def virtballoon_oom_notify(m, g, now):
    """virtio_balloon_oom_notify(): leak 256 pages; returns pages freed. Registered on the OOM
    notifier chain when DEFLATE_ON_OOM is negotiated (virtballoon_probe: callbacks.probe)."""
    freed = deflate_in_task(m, g, OOM_VBALLOON_DEFAULT_PAGES, now)
    m.V[g, BALLOON_OOM_DEFLATE] += freed
    return freed


@kernel
def shrinker_leak(m, g, nr_to_scan, now):
    """What the auto-balloon shrinker leaks for a request of nr_to_scan pages (it holds the
    lock: trylock succeeded)."""
    nr_pages = m.S[g, S_BALLOON_ACTUAL]
    if m.P[g, P_AUTOBALLOON_RFC]:
        new_target = nr_pages - nr_to_scan if nr_pages > nr_to_scan else 0
        return deflate_in_task(m, g, new_target, now)  # a target where a count is expected
    return deflate_in_task(m, g, min(nr_pages, nr_to_scan), now)


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
    """page_reporting_process(): report whole free 2 MiB blocks to the host, which drops their
    backing.

    The first block to become whole while reporting is idle schedules a pass
    PAGE_REPORTING_DELAY (2 s) later (buddy.free_frame). A pass reports nothing unless free
    memory exceeds the low watermark by PAGE_REPORTING_CAPACITY blocks (64 MiB:
    ``page_reporting_process_zone``'s gate); it reports the unreported whole blocks, at most
    ``ceil(blocks / (32 * 16)) + 1`` reports of 32 blocks (the per-list budget); cut short by the
    budget, it runs again 2 s later, else it goes idle.
    """
    if not has_feature(m, g, VIRTIO_BALLOON_F_REPORTING):
        return
    if now < m.S[g, S_REPORTING_CLOCK]:
        return
    m.S[g, S_REPORTING_CLOCK] = NEVER
    gate = m.P[g, P_WMARK_LOW] + (PAGE_REPORTING_CAPACITY << PAGEBLOCK_ORDER)
    if m.S[g, S_NR_FREE] < gate:
        return
    b0 = m.P[g, P_BLOCK_BASE]
    nblocks = m.P[g, P_NBLOCKS]
    whole = 0
    for blk in range(b0, b0 + nblocks):
        whole += m.blk_nfree[blk] == BLOCK_PAGES
    budget = (-(-whole // (PAGE_REPORTING_CAPACITY * 16)) + 1) * PAGE_REPORTING_CAPACITY
    for blk in range(b0, b0 + nblocks):
        if m.blk_nfree[blk] != BLOCK_PAGES or m.blk_reported[blk]:
            continue
        if budget == 0:
            m.S[g, S_REPORTING_CLOCK] = now + PAGE_REPORTING_DELAY_NS
            break
        for pfn in range(blk * BLOCK_PAGES, (blk + 1) * BLOCK_PAGES):
            host.host_drop(m, pfn)
        m.blk_reported[blk] = 1
        m.V[g, FREE_PAGE_REPORTED] += BLOCK_PAGES
        budget -= 1


@kernel
def nr_swapcache(m, g):
    """Resident pages that also have a swap slot: the swap cache."""
    base = m.P[g, P_VPAGE_BASE]
    n = 0
    for vpn in range(base, base + m.P[g, P_NVPAGES]):
        n += m.pte[vpn] >= 0 and m.swp[vpn] >= 0
    return n


@kernel
def update_balloon_stats(m, g):
    """update_balloon_stats(): fill the stats virtqueue buffer with the tags the guest's kernel
    sends; the others stay -1 (QEMU reports them as absent). 3.7: SWAP_IN, SWAP_OUT, MAJFLT,
    MINFLT, MEMFREE, MEMTOT; 6.1 adds AVAIL, CACHES (NR_FILE_PAGES: the page cache and the swap
    cache) and the two hugetlb counters (0: no hugetlbfs here); 6.12 adds OOM_KILLS,
    ALLOC_STALL and the scan/reclaim counters, in bytes."""
    v = m.V[g]
    st = m.stats[g]
    version = m.P[g, P_KERNEL_VERSION]
    st[:] = -1
    st[VIRTIO_BALLOON_S_SWAP_IN] = v[PSWPIN] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_SWAP_OUT] = v[PSWPOUT] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_MAJFLT] = v[PGMAJFAULT]
    st[VIRTIO_BALLOON_S_MINFLT] = v[PGFAULT]                  # all faults, as Linux
    st[VIRTIO_BALLOON_S_MEMFREE] = m.S[g, S_NR_FREE] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_MEMTOT] = meminfo.totalram_pages(m, g) << PAGE_SHIFT
    if version < KERNEL_6_1:
        return
    st[VIRTIO_BALLOON_S_AVAIL] = meminfo.si_mem_available(m, g) << PAGE_SHIFT
    caches = lru.lru_pages(m, g, True) + nr_swapcache(m, g)
    st[VIRTIO_BALLOON_S_CACHES] = caches << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_HTLB_PGALLOC] = 0
    st[VIRTIO_BALLOON_S_HTLB_PGFAIL] = 0
    if version < KERNEL_6_12:
        return
    st[VIRTIO_BALLOON_S_OOM_KILLS] = v[OOM_KILL]
    st[VIRTIO_BALLOON_S_ALLOC_STALL] = v[ALLOCSTALL]
    st[VIRTIO_BALLOON_S_ASYNC_SCAN] = v[PGSCAN_KSWAPD] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_DIRECT_SCAN] = v[PGSCAN_DIRECT] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_ASYNC_RECLAIM] = v[PGSTEAL_KSWAPD] << PAGE_SHIFT
    st[VIRTIO_BALLOON_S_DIRECT_RECLAIM] = v[PGSTEAL_DIRECT] << PAGE_SHIFT


@kernel
def stats_poll(m, g, now, poll_ns):
    """The host's stats timer (QEMU guest-stats-polling-interval) hands the guest a buffer:
    stats_request() refreshes the stats, and in 3.x also wakes the balloon kthread."""
    if not has_feature(m, g, VIRTIO_BALLOON_F_STATS_VQ) or now < m.S[g, S_STATS_CLOCK]:
        return
    update_balloon_stats(m, g)
    m.S[g, S_STATS_CLOCK] = now + poll_ns
    if m.P[g, P_KERNEL_OLD]:
        kick_balloon(m, g)
