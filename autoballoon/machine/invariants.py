"""State invariants, checked after every control tick in debug mode and by the tests.

Every guest frame is in exactly one state (free list, one LRU list, balloon, slab, the kernel's
own); list lengths equal their counters; swap slots and PTEs agree; host accounting adds up.
Plain NumPy, no numba: this is the independent check of what the kernels did.
"""
from __future__ import annotations

import numpy as np

from autoballoon.machine import layout as L
from autoballoon.machine.mm import constants as c


class InvariantError(AssertionError):
    pass


def _walk(next_arr, head, limit):
    out = []
    p = int(head)
    while p >= 0:
        out.append(p)
        if len(out) > limit:
            raise InvariantError("list does not terminate (cycle)")
        p = int(next_arr[p])
    return out


def _check_lists(m, g, where):
    P, S = m.P[g], m.S[g]
    base, n = int(P[L.P_FRAME_BASE]), int(P[L.P_NFRAMES])
    owner = np.full(n, -1, np.int64)        # which state claims each frame

    def claim(pfns, state):
        idx = np.asarray(pfns, np.int64) - base
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise InvariantError(f"{where}: state {state} holds a frame of another guest")
        if (owner[idx] != -1).any() or len(np.unique(idx)) != len(idx):
            raise InvariantError(f"{where}: a frame is in two states (state {state})")
        owner[idx] = state

    free = _walk(m.lru_next, S[L.S_FREE_HEAD], n)
    if len(free) != S[L.S_NR_FREE]:
        raise InvariantError(f"{where}: free list has {len(free)} frames, nr_free says "
                             f"{S[L.S_NR_FREE]}")
    claim(free, 10)
    for lru in range(c.NR_LRU_LISTS):
        pages = _walk(m.lru_next, m.lru_head[g, lru], n)
        if len(pages) != m.lru_size[g, lru]:
            raise InvariantError(f"{where}: lru {lru} has {len(pages)} pages, counter says "
                                 f"{m.lru_size[g, lru]}")
        if pages and int(m.lru_tail[g, lru]) != pages[-1]:
            raise InvariantError(f"{where}: lru {lru} tail is wrong")
        claim(pages, lru)
        flags = m.pflags[np.asarray(pages, np.int64)]
        want_anon = lru in (c.LRU_INACTIVE_ANON, c.LRU_ACTIVE_ANON)
        want_active = lru in (c.LRU_ACTIVE_ANON, c.LRU_ACTIVE_FILE)
        if (((flags & c.PG_swapbacked) != 0) != want_anon).any() or \
                (((flags & c.PG_active) != 0) != want_active).any():
            raise InvariantError(f"{where}: a page's flags disagree with its lru {lru}")
    actual = int(S[L.S_BALLOON_ACTUAL])
    claim(m.balloon_pfns[base:base + actual], 20)
    claim(np.arange(base, base + S[L.S_NR_SLAB]), 30)
    claim(base + np.nonzero(m.pflags[base:base + n] & c.PG_reserved)[0], 40)
    if (owner == -1).any():
        raise InvariantError(f"{where}: {int((owner == -1).sum())} frames are in no state")


def _check_mappings(m, g, where):
    P = m.P[g]
    vb, nv = int(P[L.P_VPAGE_BASE]), int(P[L.P_NVPAGES])
    pte = m.pte[vb:vb + nv]
    mapped = np.nonzero(pte >= 0)[0]
    if (m.rmap[pte[mapped]] != mapped + vb).any():
        raise InvariantError(f"{where}: a PTE and its frame's rmap disagree")
    nlru = int(m.lru_size[g].sum())
    if len(mapped) != nlru:
        raise InvariantError(f"{where}: {len(mapped)} resident pages but {nlru} on the LRU")
    swp = m.swp[vb:vb + nv]
    used = np.nonzero(swp >= 0)[0]
    if (m.slot_owner[swp[used]] != used + vb).any():
        raise InvariantError(f"{where}: a swap entry and its slot's owner disagree")
    sb, ns = int(P[L.P_SWAP_BASE]), int(P[L.P_NSLOTS])
    if int((m.slot_owner[sb:sb + ns] >= 0).sum()) != m.S[g, L.S_SWAP_USED] or \
            len(used) != m.S[g, L.S_SWAP_USED]:
        raise InvariantError(f"{where}: swap_used disagrees with the slots in use")


def _check_host(m):
    H = m.H
    present = int(((m.fref & c.F_PRESENT) != 0).sum())
    swapped = int(((m.fref & c.F_HSWAPPED) != 0).sum())
    if ((m.fref & c.F_PRESENT) & ((m.fref & c.F_HSWAPPED) >> 1)).any():
        raise InvariantError("host: a frame is both backed and in host swap")
    if H[L.H_NR_FREE] < 0:
        raise InvariantError(f"host: free pages {H[L.H_NR_FREE]} < 0")
    if present + H[L.H_NR_FREE] != H[L.H_TOTAL]:
        raise InvariantError(f"host: {present} backed + {H[L.H_NR_FREE]} free != "
                             f"{H[L.H_TOTAL]} total")
    if swapped != H[L.H_SWAP_USED] or swapped > H[L.H_SWAP_TOTAL]:
        raise InvariantError(f"host: {swapped} swapped frames but swap_used "
                             f"{H[L.H_SWAP_USED]}")
    balloon = (m.pflags & c.PG_balloon) != 0
    if (m.fref[balloon] & (c.F_PRESENT | c.F_HSWAPPED)).any():
        raise InvariantError("host: a ballooned frame is still backed")


def check_invariants(m) -> None:
    """Raise InvariantError naming the guest and the broken rule."""
    for g in range(m.P.shape[0]):
        where = f"guest {g}"
        _check_lists(m, g, where)
        _check_mappings(m, g, where)
    _check_host(m)
