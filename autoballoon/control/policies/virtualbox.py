"""``virtualbox``: VirtualBox's balloon control service (VBoxBalloonCtrl).

Mirrors VirtualBox ``src/VBox/Frontends/VBoxBalloonCtrl/VBoxModBallooning.cpp``
(``balloonGetDelta``, ``balloonMachineUpdate``, ``VBoxModBallooningMain``; file revision
106320, 2024). Every ``--balloon-interval`` (30 s), for each running VM, in MiB (IPRT's _1M):

- free = the guest's MemFree + Buffers + Cached (the Linux Guest Additions' figure,
  ``VBoxServiceStats.cpp`` ``vgsvcVMStatsReport``; skipped while it is 0);
- if free < ``--balloon-lower-limit`` (128) the balloon deflates by ``--balloon-dec`` (128),
  or not at all if it is smaller than that;
- else, while the balloon is below the VM's requested size (``BalloonSizeMax``), it inflates by
  ``--balloon-inc`` (256) halved while free - inc would fall below the lower limit (down to
  < 16), only if free - inc stays above the limit, and never past the requested size;
- a requested size below the balloon deflates it by at most the decrement;
- a deflation is cut to what the host can give while keeping ``--balloon-safety-margin``
  (1024) of its available RAM free (``RTSystemQueryAvailableRam``), or dropped.

The arithmetic ``free - inc`` is uint32 in the source: with the lower limit <= free < inc it
wraps and the full increment is taken although the guest has less free memory than that.
``uint32_wrap = true`` (default) keeps this; false computes it signed.

Inputs: the ``agent`` reading (the Guest Additions' statistics), the balloon size
(``ram_size - actual``), the host's MemAvailable (its MemFree: no host page cache here).
Parameters: ``requested`` (one size or per guest; VirtualBox's default is 0 = off, here half of
each guest's memory), ``increment``, ``decrement``, ``lower_limit``, ``safety_margin``,
``interval``, ``uint32_wrap``.

Simplifies: the first round is one interval after start (VirtualBox also runs it when a VM is
registered, before the Guest Additions report anything, which skips); there is no global
``--balloon-max``; the Guest Additions' statistics interval is not modelled (the agent is read
when the service runs).
"""
from __future__ import annotations

from autoballoon.control.policies.base import (
    MIB, MIN_TARGET, Every, HostView, Policy, guard, host_free_with_cache, register)


def balloon_get_delta(free: int, old: int, new: int, host_available_mib: int,
                      increment: int = 256, decrement: int = 128, lower_limit: int = 128,
                      safety: int = 1024, uint32_wrap: bool = True) -> int:
    """``balloonGetDelta`` in MiB: > 0 inflates; ``new`` = the requested size."""
    def minus(a, b):
        return (a - b) & 0xFFFFFFFF if uint32_wrap else a - b

    delta = 0
    if free < lower_limit:                          # the guest runs low: deflate
        delta = -decrement
        if old + delta < 0:
            delta = 0
    elif new > old:                                 # inflate if there is room
        inc = increment
        while inc >= 16 and minus(free, inc) < lower_limit:
            inc //= 2
        if minus(free, inc) > lower_limit:
            delta = inc
        if old + delta > new:
            delta = min(increment, new - old)
    elif new < old:
        delta = -min(decrement, old - new)
    if delta < 0:                                   # keep the host's safety margin free
        if host_available_mib < safety:
            delta = 0
        elif -delta > host_available_mib - safety:
            delta = -(host_available_mib - safety)
    return delta


@register("virtualbox")
class VirtualBoxPolicy(Policy):
    automatic = True
    guest_features = {"auto_balloon": False}

    def __init__(self, scenario, requested=None, increment="256MiB", decrement="128MiB",
                 lower_limit="128MiB", safety_margin="1024MiB", interval="30s",
                 uint32_wrap=True):
        super().__init__(scenario)
        mib = lambda v, k: self.size_param(v, k) // MIB               # noqa: E731
        self.requested = self.per_guest(requested, "requested", mib,
                                        lambda i: scenario.guests[i].memory // 2 // MIB)
        self.increment, self.decrement = mib(increment, "increment"), mib(decrement, "decrement")
        self.lower_limit = mib(lower_limit, "lower_limit")
        self.safety = mib(safety_margin, "safety_margin")
        guard("host.policy_params.uint32_wrap", isinstance(uint32_wrap, bool), "true or false",
              uint32_wrap)
        self.uint32_wrap = uint32_wrap
        period = self.duration_param(interval, "interval")
        self.clock = Every(period, first_ns=period)

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not self.clock.due(view.now_ns):
            return None
        host_mib = host_free_with_cache(view.host_meminfo) // MIB
        out = {}
        for g in range(len(view.names)):
            a = view.agent[g]
            free = (a["MemFree"] + a["Buffers"] + a["Cached"]) // MIB
            if free <= 0:
                continue                            # no statistics yet
            cur = (view.ram_size[g] - view.actual[g]) // MIB
            delta = balloon_get_delta(free, cur, self.requested[g], host_mib, self.increment,
                                      self.decrement, self.lower_limit, self.safety,
                                      self.uint32_wrap)
            self.expose(view.now_ns, g, free_mib=free, balloon_mib=cur, delta_mib=delta)
            if delta:
                out[g] = max(MIN_TARGET, view.ram_size[g] - (cur + delta) * MIB)
        return out or None
