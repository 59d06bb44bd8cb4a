"""Memory pressure levels from reclaim efficiency.

Mirrors mm/vmpressure.c: scanned and reclaimed pages accumulate over a window of
``vmpressure_win = SWAP_CLUSTER_MAX * 16`` scanned pages; at the end of a window the pressure is
``100 * (1 - reclaimed / scanned)`` → low (< 60), medium (< 95) or critical; ``vmpressure_prio``
reports critical when reclaim priority has fallen to 3 or below. Guests count events per level
and keep the last; the host also queues its events for the host policies.
Simplification: no memcg hierarchy, one window per guest (the kernel's root memcg).
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import (
    H_NR_EVENTS, H_VMP_RECLAIMED, H_VMP_SCANNED, HOST_EVENTS_MAX, S_VMP_LEVEL, S_VMP_RECLAIMED,
    S_VMP_SCANNED, VMPRESSURE_EVENTS)
from autoballoon.machine.mm.constants import (
    VMPRESSURE_LEVEL_CRITICAL, VMPRESSURE_LEVEL_CRITICAL_PRIO, VMPRESSURE_LEVEL_MED, VMPRESSURE_WIN)
from autoballoon.uapi import VMPRESSURE_CRITICAL, VMPRESSURE_LOW, VMPRESSURE_MEDIUM


@kernel
def vmpressure_calc_level(scanned, reclaimed):
    """vmpressure_calc_level(): the kernel's integer arithmetic, then the level thresholds."""
    pressure = 0
    if reclaimed < scanned:
        scale = scanned + reclaimed
        pressure = scale - (reclaimed * scale // scanned)
        pressure = pressure * 100 // scale
    if pressure >= VMPRESSURE_LEVEL_CRITICAL:
        return VMPRESSURE_CRITICAL
    if pressure >= VMPRESSURE_LEVEL_MED:
        return VMPRESSURE_MEDIUM
    return VMPRESSURE_LOW


@kernel
def vmpressure(m, g, scanned, reclaimed):
    """vmpressure(): account one reclaim pass of guest g; report a level per full window."""
    if scanned == 0:
        return
    m.S[g, S_VMP_SCANNED] += scanned
    m.S[g, S_VMP_RECLAIMED] += reclaimed
    if m.S[g, S_VMP_SCANNED] < VMPRESSURE_WIN:
        return
    level = vmpressure_calc_level(m.S[g, S_VMP_SCANNED], m.S[g, S_VMP_RECLAIMED])
    m.S[g, S_VMP_SCANNED] = 0
    m.S[g, S_VMP_RECLAIMED] = 0
    m.S[g, S_VMP_LEVEL] = level
    m.V[g, VMPRESSURE_EVENTS + level] += 1


@kernel
def vmpressure_prio(m, g, prio):
    """vmpressure_prio(): reclaim at priority <= 3 is reported as a critical window."""
    if prio > VMPRESSURE_LEVEL_CRITICAL_PRIO:
        return
    vmpressure(m, g, VMPRESSURE_WIN, 0)


@kernel
def host_vmpressure(m, scanned, reclaimed, prio):
    """The host's vmpressure, queued as events for the host policies (QEMU's listener)."""
    if prio <= VMPRESSURE_LEVEL_CRITICAL_PRIO:
        scanned, reclaimed = VMPRESSURE_WIN, 0
    if scanned == 0:
        return
    m.H[H_VMP_SCANNED] += scanned
    m.H[H_VMP_RECLAIMED] += reclaimed
    if m.H[H_VMP_SCANNED] < VMPRESSURE_WIN:
        return
    level = vmpressure_calc_level(m.H[H_VMP_SCANNED], m.H[H_VMP_RECLAIMED])
    m.H[H_VMP_SCANNED] = 0
    m.H[H_VMP_RECLAIMED] = 0
    n = m.H[H_NR_EVENTS]
    if n < HOST_EVENTS_MAX:
        m.host_events[n] = level
        m.H[H_NR_EVENTS] = n + 1
