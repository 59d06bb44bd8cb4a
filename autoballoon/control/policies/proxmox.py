"""``proxmox``: Proxmox VE's auto-ballooning in pvestatd — keep host memory use near 80 %.

Mirrors pve-manager ``PVE/Service/pvestatd.pm`` ``auto_balloning`` and ``PVE/AutoBalloon.pm``
``compute_alg1`` (Dietmar Maurer, 2012), the latter ported line by line in :func:`compute_alg1`
(its golden cases are pve-manager's ``test/balloontest.pl``). Every 10 s (``$updatetime``; the
first loop after start-up is skipped):

- ``goal = int(MemTotal * target / 100 - memused)`` bytes, ``target`` = the node option
  ``ballooning-target`` (default 80); memused = MemTotal - MemAvailable (pve-common
  ``read_meminfo`` since 2025; MemTotal - (MemFree + Buffers + Cached) before);
- nothing happens unless ``|goal| > 10 MiB`` (the deadband);
- a VM takes part only with a minimum memory (config ``balloon``, here ``balloon_min``) and
  shares > 0; it is "short" unless its free memory (virtio MEMFREE, Proxmox's ``freemem``)
  exceeds balloon_min / 4 and it is at or above balloon_min;
- growing serves short VMs first, shrinking VMs with free memory first, each set falling back to
  all VMs when it makes no progress; a VM's desired size is ``balloon_min + int((Σ(balloon -
  balloon_min) + goal) / Σshares * shares)``, clamped to [balloon_min, maxmem], reached in steps
  of at most ``maxchange`` (100 MiB) from its current size per round;
- each new size goes to QEMU as ``balloon <bytes>`` (the QEMU target: guest memory).

Inputs: ``actual`` (QMP ``query-balloon`` actual = Proxmox's ``balloon``), ``stats.free_memory``,
``ram_size`` (``maxmem``), the host's meminfo.
Parameters: ``target`` (percent), ``maxchange``, ``balloon_min`` and ``shares`` (one value or a
table by guest or group). Proxmox has no default minimum (a VM without one is not ballooned);
here it defaults to half of each guest's memory. Shares default to 1000, as in Proxmox.

Simplifies: VMs are visited in guest order (Perl's hash order is unspecified; balloontest.pl does
not depend on it); the model's host has no page cache, so both memused definitions are
MemTotal - MemFree; QEMU polls the stats every ``host.stats_poll`` (Proxmox sets 2 s); there
are no migration locks.
"""
from __future__ import annotations

from dataclasses import dataclass

from autoballoon.control.policies.base import (
    MIB, Every, HostView, Policy, host_free_with_cache, register)

DEADBAND = 10 * MIB
DEFAULT_SHARES = 1000


@dataclass
class VMStatus:
    """One VM as ``PVE::QemuServer::vmstatus`` describes it (bytes)."""
    balloon: int                  # current memory (QEMU actual)
    balloon_min: int              # config 'balloon'; 0 = not auto-ballooned
    maxmem: int
    shares: int | None = DEFAULT_SHARES
    freemem: int = 0


def compute_alg1(vmstatus: dict, goal: int, maxchange: int) -> dict:
    """``PVE::AutoBalloon::compute_alg1``: new sizes {vmid: bytes} for a host ``goal`` (bytes to
    give to guests if > 0, to take if < 0)."""
    res: dict = {}

    def change_func(idlist, nbytes):
        rest, repeat, progress, done = nbytes, True, True, set()
        while rest and repeat and progress:
            repeat, progress = False, 0
            shares_total = alloc_old = 0
            for vmid in idlist:
                if vmid not in done:
                    d = vmstatus[vmid]
                    alloc_old += res.get(vmid, d.balloon) - d.balloon_min
                    shares_total += d.shares or DEFAULT_SHARES
            changes = 0
            alloc_new = alloc_old + rest
            for vmid in idlist:
                if vmid in done:
                    continue
                d = vmstatus[vmid]
                desired = d.balloon_min + int(alloc_new / shares_total
                                              * (d.shares or DEFAULT_SHARES))
                if desired > d.maxmem:
                    desired, repeat = d.maxmem, True
                elif desired < d.balloon_min:
                    desired, repeat = d.balloon_min, True
                if nbytes > 0 and desired > d.balloon:                   # grow
                    balloon = min(d.balloon + maxchange, desired)
                elif desired < d.balloon:                                # shrink
                    balloon = max(d.balloon - maxchange, desired)
                else:
                    done.add(vmid)
                    continue
                diff = balloon - d.balloon
                if diff != 0:
                    change = balloon - res.get(vmid, d.balloon)
                    res[vmid] = balloon
                    if change != 0:
                        changes += change
                        progress += abs(diff)
                        repeat = True
            rest -= changes
        return rest

    idlist, short, roomy = [], [], []      # all / under memory pressure / enough free memory
    for vmid in sorted(vmstatus):
        d = vmstatus[vmid]
        if not d.balloon or not d.balloon_min or (d.shares is not None and d.shares == 0):
            continue
        idlist.append(vmid)
        if d.freemem and d.freemem > d.balloon_min * 0.25 and d.balloon >= d.balloon_min:
            roomy.append(vmid)
        else:
            short.append(vmid)
    if goal > DEADBAND:
        rest = change_func(short, goal)
        if rest >= goal:                  # no progress: consider all VMs
            change_func(idlist, rest)
    elif goal < -DEADBAND:
        rest = change_func(roomy, goal)
        if rest <= goal:
            change_func(idlist, rest)
    return res


@register("proxmox")
class ProxmoxPolicy(Policy):
    automatic = True
    guest_features = {"stats_vq": True, "auto_balloon": False}

    def __init__(self, scenario, target=80, maxchange="100MiB", balloon_min=None, shares=None,
                 period="10s"):
        super().__init__(scenario)
        self.target = self.number_param(target, "target", 0, 100, integer=True)
        self.maxchange = self.size_param(maxchange, "maxchange")
        guests = scenario.guests
        self.balloon_min = self.per_guest(balloon_min, "balloon_min", self.size_param,
                                          lambda i: guests[i].memory // 2)
        self.shares = self.per_guest(
            shares, "shares", lambda v, k: self.number_param(v, k, 0, 50000, integer=True),
            lambda i: DEFAULT_SHARES)
        self.clock = Every(self.duration_param(period, "period"))
        self.clock.due(0)                 # pvestatd skips its first loop

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not self.clock.due(view.now_ns):
            return None
        hm = view.host_meminfo
        memused = hm["MemTotal"] - host_free_with_cache(hm)
        goal = int(hm["MemTotal"] * self.target / 100 - memused)
        self.expose(view.now_ns, "host", goal=goal, memused=memused)
        status = {g: VMStatus(balloon=view.actual[g], balloon_min=self.balloon_min[g],
                              maxmem=view.ram_size[g], shares=self.shares[g],
                              freemem=view.stats[g]["free_memory"])
                  for g in range(len(view.names))}
        new = compute_alg1(status, goal, self.maxchange)
        return {g: int(v) for g, v in new.items() if int(v) != view.actual[g]} or None
