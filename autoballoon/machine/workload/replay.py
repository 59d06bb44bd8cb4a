"""Closed-loop replay of a guest's workload: the access loop.

A workload's next event happens after its think time plus whatever stall its previous access
suffered (fault, swap-in, host swap-in, allocation stall), so a thrashing guest makes less
progress, as on a real machine. Sources: a recorded access stream (autoballoon/trace, event
codes in trace/ops.py) or the built-in phased program (workload/phases.py).

The fast path is Linux's own: an access to a resident, mapped, host-backed page only sets its
accessed (and dirty) bits; everything else goes to mm/memory.access_slow.
"""
import numpy as np

from autoballoon.machine.jit import kernel, prefetch
from autoballoon.machine.layout import (
    ALIVE_FINISHED, ALIVE_RUNNING, P_NVPAGES, P_VPAGE_BASE, PROGRESS, S_ALIVE, S_CLOCK, S_WL_CURSOR,
    STALL_BALLOON_NS, STALL_FAULT_NS, STALL_FILEREAD_NS, STALL_HOST_NS, STALL_NS, STALL_OOM_NS,
    STALL_RECLAIM_NS, STALL_SWAPIN_NS, WL_TRACE)
from autoballoon.machine.mm import memory, unmap
from autoballoon.machine.mm.constants import (
    F_DIRTY, F_HIT_MASK, F_HYOUNG, F_PRESENT, F_WPROTECT, F_YOUNG, V_FILE)
from autoballoon.machine.workload.phases import phase_event
from autoballoon.trace.ops import OP_EXIT, OP_FREE, OP_SYSCALL, OP_WRITE

PREFETCH_AHEAD = 16


@kernel
def dying_stall(m, g, stalled):
    """The stall of the access the task died in (its futile reclaim, the OOM path): the causes
    counted it, access_slow returns -1 instead of it. Keeps stall_ns the sum of the causes."""
    causes = (m.V[g, STALL_FAULT_NS] + m.V[g, STALL_SWAPIN_NS] + m.V[g, STALL_FILEREAD_NS]
              + m.V[g, STALL_RECLAIM_NS] + m.V[g, STALL_BALLOON_NS] + m.V[g, STALL_OOM_NS]
              + m.V[g, STALL_HOST_NS])
    return causes - m.V[g, STALL_NS] - stalled


@kernel
def free_vpage(m, g, vpn, now):
    """munmap()/free() of one page: an anon page and its swap go; a file page stays cached."""
    if m.vflags[vpn] & V_FILE:
        return
    unmap.zap_anon_page(m, g, vpn, now)
    m.vflags[vpn] = 0


@kernel
def process_exit(m, g, now):
    base = m.P[g, P_VPAGE_BASE]
    for vpn in range(base, base + m.P[g, P_NVPAGES]):
        free_vpage(m, g, vpn, now)


@kernel
def access_bits(f, op):
    """What the MMU sets on an access: the accessed bits (guest PTE, host EPT) and, on a
    write, the dirty bit."""
    return f | F_YOUNG | F_HYOUNG | ((op & OP_WRITE) * F_DIRTY)


@kernel
def is_hit(f, op):
    """The fast path's test: the page is host-backed and mapped (not only in the swap cache)
    and, for a write, not mapped read-only."""
    return (f & (F_HIT_MASK | ((op & OP_WRITE) * F_WPROTECT))) == F_PRESENT


@kernel
def next_event(m, g, clock):
    """The workload's next event: (page, op, gap_ns), or page -1 when it has ended."""
    if m.wl_kind[g] != WL_TRACE:
        return phase_event(m, g, clock)
    i = m.S[g, S_WL_CURSOR]
    if i >= m.wl_end[g]:
        if not m.wl_loop[g] or m.wl_start[g] == m.wl_end[g]:   # an empty trace cannot loop
            return -1, 0, 0
        i = m.wl_start[g]
    m.S[g, S_WL_CURSOR] = i + 1
    gap = m.tr_gap[i]
    if m.wl_speed[g] != 1.0:
        gap = np.int64(gap / m.wl_speed[g])
    return m.tr_page[i], m.tr_op[i], gap


@kernel
def replay_hits(pte, fref, tr_page, tr_op, tr_gap, i, end, clock, until, base):
    """The fast path over a recorded stream: consume events while they hit resident, mapped,
    host-backed pages (only the accessed/dirty bits change; a write to a page mapped read-only
    faults). Returns (i, clock, hits) at the
    first event that needs the slow path, at ``end`` or at ``until``.

    Kept free of calls and of the state tuple so that it compiles to a tight loop. The page
    table entry of the access PREFETCH_AHEAD events ahead, and the frame of the one half as
    far ahead, are prefetched: a fault's long path would otherwise serialise those misses.
    """
    hits = 0
    while i < end and clock < until:
        if i + PREFETCH_AHEAD < end:
            prefetch(pte, base + tr_page[i + PREFETCH_AHEAD])
            ahead = pte[base + tr_page[i + PREFETCH_AHEAD // 2]]
            if ahead >= 0:
                prefetch(fref, ahead)
        op = tr_op[i]
        if op & (OP_SYSCALL | OP_FREE):
            break
        pfn = pte[base + tr_page[i]]
        if pfn < 0:
            break
        f = fref[pfn]
        if not is_hit(f, op):
            break
        fref[pfn] = access_bits(f, op)
        clock += tr_gap[i]
        hits += 1
        i += 1
    return i, clock, hits


@kernel
def run_guest(m, g, until):
    """Replay guest g's workload until its clock reaches ``until`` (or it ends or dies).

    Linux's own hot path: an access to a resident, mapped, host-backed page only sets its
    accessed and dirty bits (replay_hits for traces, inline for phases); everything else goes
    to mm/memory.access_slow.
    """
    base = m.P[g, P_VPAGE_BASE]
    fast = m.wl_kind[g] == WL_TRACE and m.wl_speed[g] == 1.0
    clock = m.S[g, S_CLOCK]
    progress = 0
    stalled = 0
    while clock < until and m.S[g, S_ALIVE] == ALIVE_RUNNING:
        if fast:
            i, clock, hits = replay_hits(m.pte, m.fref, m.tr_page, m.tr_op, m.tr_gap,
                                         m.S[g, S_WL_CURSOR], m.wl_end[g], clock, until, base)
            m.S[g, S_WL_CURSOR] = i
            progress += hits
            if clock >= until:
                break
        page, op, gap = next_event(m, g, clock)
        if page < 0:
            m.S[g, S_ALIVE] = ALIVE_FINISHED
            break
        clock += gap
        vpn = base + page
        if op >= OP_FREE:
            if op == OP_EXIT:
                process_exit(m, g, clock)
            else:
                free_vpage(m, g, vpn, clock)
            continue
        pfn = m.pte[vpn]
        if pfn >= 0 and not (op & OP_SYSCALL):
            f = m.fref[pfn]
            if is_hit(f, op):
                m.fref[pfn] = access_bits(f, op)
                progress += 1
                continue
        stall = memory.access_slow(m, g, vpn, op, clock)
        if stall < 0:
            stalled += dying_stall(m, g, stalled)
            break
        clock += stall
        stalled += stall
        progress += 1
    m.S[g, S_CLOCK] = clock
    m.V[g, PROGRESS] += progress
    m.V[g, STALL_NS] += stalled
