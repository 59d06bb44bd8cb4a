"""``xen-selfballoon``: the guest-driven self-ballooning of Linux Xen guests (tmem era).

Mirrors Linux ``drivers/xen/xen-selfballoon.c`` ``selfballoon_process`` and
``xen_selfballoon_init`` (Dan Magenheimer, 2011; final form as in Linux 5.2 — the driver was
removed in 5.3 with tmem). Each guest's own delayed work runs every ``selfballoon_interval``
(5 s) from boot, in pages:

- goal = Committed_AS + totalreserve_pages + selfballoon_reserved_mb (default 10 % of the RAM
  the guest booted with, in whole MiB);
- above the goal the guest shrinks by 1/8 of the gap (``selfballoon_downhysteresis``), below it
  it grows by the whole gap (``selfballoon_uphysteresis`` = 1);
- never below a floor that depends on the guest's size: with useful = max_pfn - totalreserve,
  none below 16 MiB useful, else totalreserve + 16 MiB + (useful - 16 MiB)/2 (< 64 MiB),
  + 40 MiB + (useful - 40 MiB)/8 (< 512 MiB), + 99 MiB + (useful - 99 MiB)/32 (the ~3 % slope),
  or totalreserve + ``selfballoon_min_usable_mb`` when that is set.

It runs in the guest, so it reads what the guest kernel knows: ``vm_memory_committed()`` and
``totalreserve_pages`` (the guest's high watermark: one zone, no lowmem_reserve) through the
``agent`` reading; ``totalram_pages()`` is the guest memory the balloon leaves (``actual``).
The target it sets with ``balloon_set_new_target`` reaches the virtio balloon driver here as
the QEMU target: Xen's driver moves towards it just as virtio's does.

Simplifies: ``balloon_set_new_target(tgt + current_pages - totalram_pages)`` adds the pages the
kernel does not manage (kernel image, memblock reserves), which the model does not have, so the
target is ``tgt`` itself; the workload's Committed_AS is its anonymous memory (see
``Machine.committed_as``); frontswap self-shrinking and cleancache (where Xen put the page cache
this pushes out) are not modelled — here evicted page cache refaults from disk.
"""
from __future__ import annotations

from autoballoon.control.policies.base import MIB, MIN_TARGET, Every, HostView, Policy, register
from autoballoon.uapi import PAGE_SHIFT

MB_PAGES = MIB >> PAGE_SHIFT          # MB2PAGES(1)


def selfballoon_floor(max_pfn: int, totalreserve: int, min_usable_mb: int = 0) -> int:
    """The floor of ``selfballoon_process`` in pages: a piecewise linear function of the
    guest's size ending in a ~3 % slope."""
    useful = max_pfn - totalreserve
    if min_usable_mb:
        return totalreserve + min_usable_mb * MB_PAGES
    if useful < 16 * MB_PAGES:
        return max_pfn                                   # not worth ballooning
    if useful < 64 * MB_PAGES:
        return totalreserve + 16 * MB_PAGES + ((useful - 16 * MB_PAGES) >> 1)
    if useful < 512 * MB_PAGES:
        return totalreserve + 40 * MB_PAGES + ((useful - 40 * MB_PAGES) >> 3)
    return totalreserve + 99 * MB_PAGES + ((useful - 99 * MB_PAGES) >> 5)


def selfballoon_target(cur: int, committed: int, totalreserve: int, reserved_mb: int,
                       max_pfn: int, down: int = 8, up: int = 1, min_usable_mb: int = 0) -> int:
    """One ``selfballoon_process`` step, in pages: the new target from ``cur`` =
    totalram_pages()."""
    goal = committed + totalreserve + reserved_mb * MB_PAGES
    tgt = cur
    if cur > goal:
        tgt = cur - (cur - goal) // down
    elif cur < goal:
        tgt = cur + (goal - cur) // up
    return max(tgt, selfballoon_floor(max_pfn, totalreserve, min_usable_mb))


@register("xen-selfballoon")
class XenSelfballoonPolicy(Policy):
    automatic = True
    guest_features = {"auto_balloon": False}

    def __init__(self, scenario, interval="5s", downhysteresis=8, uphysteresis=1,
                 reserved=None, min_usable="0"):
        super().__init__(scenario)
        period = self.duration_param(interval, "interval")
        self.clock = Every(period, first_ns=period)       # schedule_delayed_work at init
        self.down = self.number_param(downhysteresis, "downhysteresis", 1, 2**31, integer=True)
        self.up = self.number_param(uphysteresis, "uphysteresis", 1, 2**31, integer=True)
        # xen_selfballoon_init: PAGES2MB(totalram_pages() / 10) unless set
        self.reserved_mb = self.per_guest(
            reserved, "reserved", lambda v, k: self.size_param(v, k) // MIB,
            lambda i: (scenario.guests[i].memory >> PAGE_SHIFT) // 10 // MB_PAGES)
        self.min_usable_mb = self.size_param(min_usable, "min_usable") // MIB

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not self.clock.due(view.now_ns):
            return None
        out = {}
        for g in range(len(view.names)):
            agent = view.agent[g]
            cur = view.actual[g] >> PAGE_SHIFT
            committed = agent["Committed_AS"] >> PAGE_SHIFT
            reserve = agent["zone_totalreserve"] >> PAGE_SHIFT
            tgt = selfballoon_target(cur, committed, reserve, self.reserved_mb[g],
                                     view.ram_size[g] >> PAGE_SHIFT, self.down, self.up,
                                     self.min_usable_mb)
            self.expose(view.now_ns, g, committed_as=committed << PAGE_SHIFT,
                        goal=(committed + reserve + self.reserved_mb[g] * MB_PAGES)
                        << PAGE_SHIFT)
            out[g] = max(MIN_TARGET, tgt << PAGE_SHIFT)
        return out
