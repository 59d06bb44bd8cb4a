"""Host memory behind the guests: lazy backing, host reclaim and host swap (double paging).

Guest RAM is anonymous memory of the QEMU process. A guest frame is backed by a host page on
its first touch (an EPT violation: ``handle_mm_fault`` on the host); inflating the balloon and
free page reporting drop the backing (``MADV_DONTNEED`` in QEMU's ``balloon_inflate_page`` and
``virtio_balloon_handle_report``). When host free memory falls below its watermarks, host
reclaim swaps backed guest frames out to host swap; a guest touching such a frame stalls on a
host swap-in — the guest cannot see it.

Simplifications (documented choices):
- host reclaim is a CLOCK (second chance) over all guest frames using the EPT accessed bit,
  standing in for the host's anon LRU of the QEMU processes; frames the guest has freed but the
  host still backs look cold and are swapped first, as on a real host;
- host kswapd runs concurrently at ``kswapd_scan_ns`` per scanned frame plus swap write time;
  the host's vmpressure levels come from its reclaim efficiency (kswapd's passes count, as in
  Linux), and critical once direct reclaim has fallen to priority 3 (vmpressure_prio); a
  listener needs cgroup v1's memory.pressure_level on a real host;
- host swap-out is synchronous (the host is not given the guest's writeback lifecycle), so its
  reclaim efficiency is higher than a real host's;
- host memory other than guest RAM (QEMU, host kernel) is left out of ``memory``.
"""
from autoballoon.machine.jit import clear_bits, kernel
from autoballoon.machine.layout import (
    ALIVE_VM_KILLED, H_ALLOCSTALL, H_CLOCK_HAND, H_DIRECT_PRIO, H_FAULT_NS, H_HOST_SWAPPED, H_KSWAPD_AWAKE,
    H_KSWAPD_CLOCK, H_KSWAPD_SCAN_NS, H_KSWAPD_WAKE, H_NFRAMES, H_NR_FREE, H_OOM_KILL, H_PGFAULT,
    H_PGSCAN, H_PGSTEAL, H_PSWPIN, H_PSWPOUT, H_SWAP_NS_PER_PAGE, H_SWAP_READ_NS, H_SWAP_TOTAL,
    H_SWAP_USED, H_SWAP_WRITE_NS, H_WMARK_HIGH, H_WMARK_LOW, H_WMARK_MIN, HOST_FAULTS,
    HOST_SWAPIN_STALLS, P_FRAME_BASE, P_NFRAMES, S_ALIVE)
from autoballoon.machine.mm import vmpressure as vmp
from autoballoon.machine.mm.constants import (
    DEF_PRIORITY, F_HSWAPPED, F_HYOUNG, F_PRESENT, SWAP_CLUSTER_MAX)


@kernel
def host_shrink(m, nr_to_reclaim, prio):
    """One host reclaim pass: CLOCK over backed frames until nr_to_reclaim are swapped out.

    Returns (reclaimed, cost_ns). Gives up after two sweeps' worth of scanning or when host
    swap is full. Reports the pass to the host's vmpressure (a direct reclaimer at priority <= 3
    reports a critical window, as vmpressure_prio(); kswapd never does: pass DEF_PRIORITY).
    """
    n = m.H[H_NFRAMES]
    hand = m.H[H_CLOCK_HAND]
    scanned = 0
    reclaimed = 0
    steps = 0
    while reclaimed < nr_to_reclaim and steps < 2 * n:
        if m.H[H_SWAP_USED] >= m.H[H_SWAP_TOTAL]:
            break
        f = m.fref[hand]
        if f & F_PRESENT:
            scanned += 1
            if f & F_HYOUNG:
                m.fref[hand] = clear_bits(f, F_HYOUNG)
            else:
                m.fref[hand] = clear_bits(f, F_PRESENT) | F_HSWAPPED
                m.H[H_SWAP_USED] += 1
                m.H[H_NR_FREE] += 1
                m.H[H_HOST_SWAPPED] += 1
                reclaimed += 1
        hand += 1
        if hand == n:
            hand = 0
        steps += 1
    m.H[H_CLOCK_HAND] = hand
    m.H[H_PGSCAN] += scanned
    m.H[H_PGSTEAL] += reclaimed
    m.H[H_PSWPOUT] += reclaimed
    vmp.host_vmpressure(m, scanned, reclaimed, prio)
    cost = scanned * m.H[H_KSWAPD_SCAN_NS]
    if reclaimed:
        cost += m.H[H_SWAP_WRITE_NS] + reclaimed * m.H[H_SWAP_NS_PER_PAGE]
    return reclaimed, cost


@kernel
def host_kswapd(m, now):
    """Host kswapd, run up to ``now``: passes of max(high, 32) pages until free >= high."""
    while m.H[H_KSWAPD_AWAKE] and m.H[H_KSWAPD_CLOCK] < now:
        if m.H[H_NR_FREE] >= m.H[H_WMARK_HIGH]:
            m.H[H_KSWAPD_AWAKE] = 0
            break
        target = max(m.H[H_WMARK_HIGH] - m.H[H_NR_FREE], SWAP_CLUSTER_MAX)
        reclaimed, cost = host_shrink(m, target, DEF_PRIORITY)
        m.H[H_KSWAPD_CLOCK] += max(cost, m.H[H_KSWAPD_SCAN_NS])
        if reclaimed == 0:
            m.H[H_KSWAPD_AWAKE] = 0


@kernel
def wakeup_host_kswapd(m, now):
    if not m.H[H_KSWAPD_AWAKE]:
        m.H[H_KSWAPD_AWAKE] = 1
        m.H[H_KSWAPD_WAKE] += 1
        if m.H[H_KSWAPD_CLOCK] < now:
            m.H[H_KSWAPD_CLOCK] = now


@kernel
def host_alloc_page(m, g, now):
    """A host page for guest g's QEMU process (its fault or a swap-in): host kswapd catches up
    and is woken below the low watermark, direct reclaim below min, the host OOM killer at
    zero. Returns the allocation stall in ns, or -1 when the host OOM killer killed this
    guest's QEMU process (host_oom_kill)."""
    stall = 0
    host_kswapd(m, now)
    if m.H[H_NR_FREE] <= m.H[H_WMARK_LOW]:
        wakeup_host_kswapd(m, now)
        host_kswapd(m, now + 1)      # its first pass starts at the wake-up instant
    if m.H[H_NR_FREE] <= m.H[H_WMARK_MIN]:
        # direct reclaim: each call that falls short of its target stands for one more step of
        # do_try_to_free_pages()'s priority loop; one that reaches it starts over
        m.H[H_ALLOCSTALL] += 1
        reclaimed, cost = host_shrink(m, SWAP_CLUSTER_MAX, m.H[H_DIRECT_PRIO])
        if reclaimed >= SWAP_CLUSTER_MAX:
            m.H[H_DIRECT_PRIO] = DEF_PRIORITY
        elif m.H[H_DIRECT_PRIO] > 0:
            m.H[H_DIRECT_PRIO] -= 1
        stall += cost
    if m.H[H_NR_FREE] <= 0:
        host_oom_kill(m, g)
        return -1
    m.H[H_NR_FREE] -= 1
    return stall


@kernel
def host_oom_kill(m, g):
    """The host OOM killer kills guest g's QEMU process: the VM stops for good and the host
    memory and host swap behind its RAM are freed (exit of QEMU's address space)."""
    m.H[H_OOM_KILL] += 1
    m.S[g, S_ALIVE] = ALIVE_VM_KILLED
    base = m.P[g, P_FRAME_BASE]
    for pfn in range(base, base + m.P[g, P_NFRAMES]):
        host_drop(m, pfn)


@kernel
def host_fault(m, g, pfn, now):
    """A guest access reaches a frame the host does not back (the caller checked F_PRESENT):
    the host's handle_mm_fault for the EPT violation, maybe a host swap-in.

    Returns the stall in ns, or -1 when the host OOM killer killed this guest.
    """
    m.H[H_PGFAULT] += 1
    m.V[g, HOST_FAULTS] += 1
    alloc = host_alloc_page(m, g, now)
    if alloc < 0:
        return -1
    stall = m.H[H_FAULT_NS] + alloc
    if m.fref[pfn] & F_HSWAPPED:
        stall += host_swapin(m, g, pfn)
    m.fref[pfn] |= F_PRESENT | F_HYOUNG
    return stall


@kernel
def host_swapin(m, g, pfn):
    """Read a host-swapped guest frame back into the host page just allocated for it; returns
    the time it takes."""
    m.H[H_PSWPIN] += 1
    m.H[H_SWAP_USED] -= 1
    m.H[H_HOST_SWAPPED] -= 1
    m.V[g, HOST_SWAPIN_STALLS] += 1
    m.fref[pfn] = clear_bits(m.fref[pfn], F_HSWAPPED) | F_PRESENT
    return m.H[H_SWAP_READ_NS] + m.H[H_SWAP_NS_PER_PAGE]


@kernel
def host_readback(m, g, pfn, now):
    """Double paging: the guest writing out a page the host swapped makes the host read it
    back first, into a page allocated like any other. Returns the time; 0 if the allocation
    got the guest killed (the write-out is then moot)."""
    if not (m.fref[pfn] & F_HSWAPPED):
        return 0
    alloc = host_alloc_page(m, g, now)
    if alloc < 0:
        return 0
    return alloc + host_swapin(m, g, pfn)


@kernel
def host_drop(m, pfn):
    """MADV_DONTNEED on a guest frame: the host frees its page or its swap slot."""
    f = m.fref[pfn]
    if f & F_PRESENT:
        m.H[H_NR_FREE] += 1
    if f & F_HSWAPPED:
        m.H[H_SWAP_USED] -= 1
        m.H[H_HOST_SWAPPED] -= 1
    m.fref[pfn] = clear_bits(f, F_PRESENT | F_HSWAPPED | F_HYOUNG)
