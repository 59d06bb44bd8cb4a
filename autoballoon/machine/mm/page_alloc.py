"""The page allocator's order-0 path and the OOM killer.

Mirrors mm/page_alloc.c: ``get_page_from_freelist`` (fast path at the low watermark),
``__alloc_pages_slowpath`` (wake kswapd, retry at the min watermark, direct reclaim counted as
``allocstall``, ``should_reclaim_retry`` giving up after MAX_RECLAIM_RETRIES rounds without
progress, then ``__alloc_pages_may_oom``) and mm/oom_kill.c's ``out_of_memory`` (the OOM notifier
chain first — registered callbacks, mm/hooks.py: the balloon's deflate-on-OOM — then the OOM
killer). ``__GFP_NORETRY`` (balloon
inflation) tries one round of direct reclaim and fails without OOM.

Simplifications: one zone, no ALLOC_HARDER/HIGH reserves, no compaction; the OOM victim is the
guest's workload (the only process modelled): its anonymous memory and swap are freed, it stops
making progress, and the simulation goes on.
"""
from autoballoon.machine.jit import kernel, kernel_inline
from autoballoon.machine.layout import (
    ALIVE_KILLED, ALIVE_RUNNING, OOM_KILL, P_NVPAGES, P_VPAGE_BASE, P_WMARK_LOW, P_WMARK_MIN,
    S_ALIVE, S_CALLBACK_NS, S_NR_FREE)
from autoballoon.machine.mm import buddy, hooks, unmap, vmscan
from autoballoon.machine.mm.constants import (
    MAX_OOM_NOTIFIERS, MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, V_FILE)

GFP_HIGHUSER_MOVABLE = 0
__GFP_NORETRY = 1


@kernel
def oom_kill_workload(m, g, now):
    """oom_kill_process() on the workload: free its anon pages and swap; it stops."""
    m.V[g, OOM_KILL] += 1
    m.S[g, S_ALIVE] = ALIVE_KILLED
    base = m.P[g, P_VPAGE_BASE]
    for vpn in range(base, base + m.P[g, P_NVPAGES]):
        if not (m.vflags[vpn] & V_FILE):
            unmap.zap_anon_page(m, g, vpn, now)


@kernel
def out_of_memory(m, g, now):
    """out_of_memory(): the OOM notifier chain may free pages; else kill. True if memory came
    back."""
    freed = 0
    for i in range(MAX_OOM_NOTIFIERS):               # blocking_notifier_call_chain()
        kind = m.oom_notifier_kind[g, i]
        if kind < 0:
            break
        freed += hooks.oom_notify(m, g, kind, now)
    if freed > 0:
        return True
    if m.S[g, S_ALIVE] != ALIVE_RUNNING:
        return False
    oom_kill_workload(m, g, now)
    return True


@kernel_inline
def alloc_pages(m, g, gfp, now):
    """alloc_pages(): one frame for guest g. Returns (pfn or -1, stall_ns of the caller).

    The fast path (get_page_from_freelist above the low watermark) is inlined into callers;
    kswapd first catches up with the time of the request if it is awake and behind.
    """
    if vmscan.kswapd_behind(m, g, now):    # tested first: a call copies the whole state
        vmscan.kswapd(m, g, now)
    if m.S[g, S_NR_FREE] > m.P[g, P_WMARK_LOW]:
        return buddy.rmqueue(m, g, now), 0
    return alloc_pages_slowpath(m, g, gfp, now)


@kernel
def alloc_pages_slowpath(m, g, gfp, now):
    """__alloc_pages_slowpath(): wake kswapd, retry at min, direct reclaim, OOM."""
    vmscan.wakeup_kswapd(m, g, now)
    vmscan.kswapd(m, g, now + 1)     # its first pass starts at the wake-up instant
    stall = 0
    no_progress = 0
    while True:
        if m.S[g, S_NR_FREE] > m.P[g, P_WMARK_MIN]:
            return buddy.rmqueue(m, g, now), stall
        reclaimed, cost = vmscan.try_to_free_pages(m, g, SWAP_CLUSTER_MAX, 1, now + stall)
        stall += cost
        if m.S[g, S_NR_FREE] > m.P[g, P_WMARK_MIN]:
            return buddy.rmqueue(m, g, now), stall
        if gfp & __GFP_NORETRY:
            return -1, stall
        no_progress = 0 if reclaimed > 0 else no_progress + 1
        if no_progress > MAX_RECLAIM_RETRIES:
            oom = out_of_memory(m, g, now + stall)
            stall += m.S[g, S_CALLBACK_NS]          # what the OOM notifiers cost this task
            m.S[g, S_CALLBACK_NS] = 0
            if not oom:
                # nothing left to kill: dip into the reserve below min rather than deadlock
                return buddy.rmqueue(m, g, now), stall
            if m.S[g, S_ALIVE] == ALIVE_KILLED:
                return -1, stall
            no_progress = 0
