"""The built-in phased workload: seq / rand / read / zipf phases over one anonymous mapping,
generated in the kernel so that phases that last a *duration* end on simulated time.

A phase's table row (``ph_*``, filled at boot from the scenario's PhaseSpecs) gives its range,
pattern, end (duration or passes), think time per access and write fraction; zipf phases draw
ranks from the CDF in ``zipf_cdf`` (trace/synth.zipf_cdf).
"""
import numpy as np

from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    PAT_READ,
    PAT_SEQ,
    PAT_ZIPF,
    S_WL_PASS,
    S_WL_PHASE,
    S_WL_PHASE_START,
    S_WL_POS,
)
from autoballoon.machine.workload.rng import rand_u64, rand_unit
from autoballoon.trace.ops import OP_FILE, OP_SYSCALL, OP_WRITE


@kernel
def next_phase(m, g, now):
    """Move to the next phase (or wrap when looping). False when the program has ended."""
    p = m.S[g, S_WL_PHASE] + 1
    if p >= m.wl_end[g]:
        if not m.wl_loop[g]:
            return False
        p = m.wl_start[g]
    m.S[g, S_WL_PHASE] = p
    m.S[g, S_WL_POS] = 0
    m.S[g, S_WL_PASS] = 0
    m.S[g, S_WL_PHASE_START] = now
    return True


@kernel
def phase_event(m, g, now):
    """The phased program's next access: (page, op, think_ns), or page -1 at the end."""
    p = m.S[g, S_WL_PHASE]
    while True:
        dur = m.ph_duration[p]
        if dur > 0 and now - m.S[g, S_WL_PHASE_START] >= dur:
            pass
        elif dur == 0 and m.S[g, S_WL_PASS] >= m.ph_passes[p]:
            pass
        else:
            break
        if not next_phase(m, g, now):
            return -1, 0, 0
        p = m.S[g, S_WL_PHASE]
    length = m.ph_len[p]
    pat = m.ph_pattern[p]
    pos = m.S[g, S_WL_POS]
    if pat == PAT_SEQ or pat == PAT_READ:
        off = pos
    elif pat == PAT_ZIPF:
        c = m.ph_cdf_start[p]
        off = np.searchsorted(m.zipf_cdf[c:c + length], rand_unit(m, g))
        off = min(off, length - 1)
    else:
        off = rand_u64(m, g) % np.uint64(length)
    pos += 1
    if pos == length:
        pos = 0
        m.S[g, S_WL_PASS] += 1
    m.S[g, S_WL_POS] = pos
    if pat == PAT_READ:
        op = OP_FILE | OP_SYSCALL
    else:
        op = OP_WRITE if rand_unit(m, g) < m.ph_wfrac[p] else 0
    return m.ph_offset[p] + np.int64(off), op, m.ph_think[p]
