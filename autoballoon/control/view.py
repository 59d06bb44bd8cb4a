"""What a host policy sees: the :class:`HostView`, and the names of what is in it.

One home for the vocabulary policies use: the virtio_balloon stats keys (``STATS_TAGS``, in tag
order), the host vmpressure levels (``VMPRESSURE_LOW/MEDIUM/CRITICAL``), both from
:mod:`autoballoon.uapi`, and the keys of a guest agent's reading (``AGENT_KEYS``) and of the
host's per-guest process figures (``HOST_USAGE_KEYS``). Importing this module loads no numba.

Every size is in bytes. :class:`ViewBuilder` makes one view per control tick from the machine;
the figures that cost a pass over a guest's pages are read only when a policy first asks for
them in that tick.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable

from autoballoon.uapi import (
    STATS_TAGS, VMPRESSURE_CRITICAL, VMPRESSURE_LEVEL, VMPRESSURE_LEVELS, VMPRESSURE_LOW,
    VMPRESSURE_MEDIUM)

__all__ = ["HostView", "ViewBuilder", "STATS_TAGS", "AGENT_KEYS", "HOST_USAGE_KEYS",
           "VMPRESSURE_LEVEL", "VMPRESSURE_LEVELS", "VMPRESSURE_LOW", "VMPRESSURE_MEDIUM",
           "VMPRESSURE_CRITICAL"]

# A guest agent's reading: the guest's /proc/meminfo lines policies use, Committed_AS, and the sum
# of its zones' watermarks from /proc/zoneinfo (``zone_min/low/high``) and the kernel's
# totalreserve_pages (``zone_totalreserve``: high + lowmem reserve, summed over zones). ``Buffers`` is always 0: the model keeps every
# file page in ``Cached``.
_MEMINFO_KEYS = ("MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "AnonPages",
                 "SwapTotal", "SwapFree")
_ZONE_KEYS = ("min", "low", "high", "totalreserve")
AGENT_KEYS = _MEMINFO_KEYS + ("Committed_AS",) + tuple(f"zone_{k}" for k in _ZONE_KEYS)
# The host kernel's figures for a guest's QEMU process (/proc/<pid>/status), guest RAM only.
HOST_USAGE_KEYS = ("VmRSS", "VmSwap")


@dataclass(frozen=True)
class HostView:
    """What the host knows at ``now_ns``. Per-guest sequences are indexed like ``names``.

    Real host sources (what a daemon on a Linux/KVM host can read):

    - ``target``, ``actual``: the QEMU balloon device (``query-balloon``): the target the host
      set and ``actual`` = ``ram_size`` − pages the guest has put in the balloon.
    - ``stats``: the virtio_balloon stats virtqueue as QEMU last polled it (``STATS_TAGS`` keys,
      QEMU's ``guest-stats`` names; at most ``host.stats_poll`` old; all zero without the
      ``stats_vq`` feature).
    - ``agent``: the guest's own figures read through a guest agent (``AGENT_KEYS``): qemu-guest-
      agent ``guest-file-read`` of /proc/meminfo as oVirt MOM's GuestQemuAgent collector does,
      VirtualBox's Guest Additions statistics, Hyper-V's hv_balloon status report. Read when the
      policy asks, so a daemon's own cadence sets its staleness. Costs a pass over the guest's
      virtual pages (Committed_AS): read it on the policy's period, not every tick.
    - ``host_usage``: per guest, ``VmRSS`` (guest frames the host backs) and ``VmSwap`` (guest
      frames in host swap), as /proc/<QEMU pid>/status shows them for guest RAM.
    - ``host_meminfo``: the host's /proc/meminfo (MemTotal, MemFree, Used, SwapTotal, SwapFree;
      the model's host has no page cache, so MemFree + Buffers + Cached = MemFree).
    - ``host_zoneinfo``: the host's watermarks (min, low, high).
    - ``host_events``: host memory-cgroup vmpressure notifications since the last tick.
    - ``test_and_clear_young(g, frames)``: test and clear the EPT accessed bit of frames (offsets
      into guest g's RAM) and return which were set — KVM's page aging as the host's idle page
      tracking uses it. The one call that changes the machine; host reclaim reads the same bit.

    Oracle (no real host has it; for studies of ideal policies):

    - ``meminfo``: the guest's /proc/meminfo right now plus the simulation's figures
      (``balloon_actual``, ``balloon_target``, ``alive``, ``pressure``), without asking an agent.
    """
    now_ns: int
    tick_ns: int
    names: tuple[str, ...]
    ram_size: tuple[int, ...]               # bytes
    target: tuple[int, ...]                 # current QEMU target: guest memory after ballooning
    actual: tuple[int, ...]                 # QEMU 'actual': ram_size - pages in the balloon
    stats: tuple[Mapping[str, int], ...]
    meminfo: tuple[Mapping[str, int], ...]  # oracle
    host_meminfo: Mapping[str, int]
    host_events: tuple[int, ...]            # host vmpressure levels since the last tick
    agent: Sequence[Mapping[str, int]] = ()
    host_usage: Sequence[Mapping[str, int]] = ()
    host_zoneinfo: Mapping[str, int] = field(default_factory=dict)
    test_and_clear_young: Callable | None = None


class _PerGuest(Sequence):
    """``read(g)`` for each guest, called on first access and kept. Once the next tick's view
    exists the machine has moved on: an item not read in its own tick can no longer be read."""

    def __init__(self, n: int, read: Callable[[int], Mapping[str, int]], what: str):
        self._read, self._got, self._what = read, [None] * n, what

    def __len__(self) -> int:
        return len(self._got)

    def __getitem__(self, g):
        if isinstance(g, slice):
            return [self[i] for i in range(len(self))[g]]
        if self._got[g] is None:
            if self._read is None:
                raise RuntimeError(f"HostView.{self._what}[{g}] was not read in its own tick; "
                                   "read it in observe()")
            self._got[g] = self._read(g)
        return self._got[g]

    def expire(self) -> None:
        self._read = None


def agent_reading(machine, g: int) -> dict[str, int]:
    """What a guest agent reads in guest g now (``AGENT_KEYS``, bytes)."""
    mi = machine.meminfo(g)
    zone = machine.zoneinfo(g)
    reading = {k: mi.get(k, 0) for k in _MEMINFO_KEYS}
    reading["Committed_AS"] = machine.committed_as(g)
    reading.update({f"zone_{k}": zone[k] for k in _ZONE_KEYS})
    return reading


class ViewBuilder:
    """Makes the :class:`HostView` of each control tick from a machine (``MachineAPI``)."""

    def __init__(self, machine, ram: list[int]):
        self.machine, self.ram = machine, ram
        self.names = tuple(machine.names)
        self.host_zoneinfo = machine.host_zoneinfo()         # fixed at boot
        self._lazy: tuple[_PerGuest, ...] = ()

    def __call__(self, now: int, tick: int, target: list[int],
                 events: tuple[int, ...]) -> HostView:
        m, n = self.machine, len(self.ram)
        for old in self._lazy:
            old.expire()
        agent = _PerGuest(n, lambda g: agent_reading(m, g), "agent")
        usage = _PerGuest(n, m.host_usage, "host_usage")
        self._lazy = (agent, usage)
        meminfo = tuple(m.meminfo(g) for g in range(n))
        return HostView(
            now_ns=now, tick_ns=tick, names=self.names, ram_size=tuple(self.ram),
            target=tuple(target),
            actual=tuple(self.ram[g] - meminfo[g]["balloon_actual"] for g in range(n)),
            stats=tuple(m.balloon_stats(g) for g in range(n)), meminfo=meminfo,
            host_meminfo=m.host_meminfo(), host_events=events,
            agent=agent, host_usage=usage, host_zoneinfo=self.host_zoneinfo,
            test_and_clear_young=m.test_and_clear_young)
