"""``esx``: VMware ESX Server's memory allocation — shares with an idle memory tax.

Mirrors C. A. Waldspurger, "Memory Resource Management in VMware ESX Server", OSDI 2002 (ESX is
closed source; the paper is the reference):

- §5.2 idle memory tax: memory is reclaimed from the VM with the lowest adjusted shares-per-page
  ratio ``rho = S / (P * (f + k * (1 - f)))``, ``k = 1 / (1 - tau)``, tax rate ``tau`` = 0.75
  (``Mem/IdleTax``): an idle page costs its VM k = 4 times an active one (min-funding
  revocation). S = shares (default 10 per MiB of the VM's memory, ESX's "normal"), P = pages
  the VM holds (here its host ``VmRSS``), f = its active fraction;
- §5.3 active memory: each ``sample_period`` (30 s, ``Mem/SamplePeriod``) the host picks
  ``sample_pages`` (100) of the VM's pages at random and watches which are touched; f = t/n.
  Three estimates — a slow and a fast exponentially weighted average and the fast one with the
  current, incomplete period's count — and the largest is used (fast up, slow down);
- §6.3 free memory states: high (6 % of host memory free), soft (4 %), hard (2 %), low (1 %).
  Targets are set to bring free memory back above 6 %: ballooning from the soft state on, host
  swapping from the hard state on, and below 1 % VMs above their targets are blocked. A state is
  entered when free memory falls below its threshold and left for the one above when free
  memory is back above that one's threshold. Rebalancing every ``balance_period`` (15 s,
  ``Mem/BalancePeriod``) and at once on a change of state (a "significant change in free
  memory"); a balloon holds at most ``ctl_max_percent`` (65 %, ``Mem/CtlMaxPercent``) of its VM.

Sampling: ESX invalidates a sampled page's mappings and counts the trap of the next access; here
the host tests and clears the page's EPT accessed bit (``view.test_and_clear_young``) at the start
of the period, at every rebalance in it and at its end, and a page counts once. Pages are drawn
from all of the guest's RAM (ballooned and unbacked ones count as idle), so the active pages are
f x RAM and the tax uses f_P = min(1, f x RAM / P). The model's host reclaim reads the same bit:
a sampled page that was young loses its second chance in host reclaim's CLOCK once per clear —
at most 2 x ``sample_pages`` pages per VM per period (0.3 % of a 256 MiB guest per 30 s).
Before the first period ends every VM counts as fully active; the averages start at the first
period's f.

Simplifies: the paper gives no gains for the averages (``slow_gain`` 1/8 and ``fast_gain`` 1/2
per period are this model's choice), nor the thresholds' exact hysteresis (read from §6.3 as
above; verify against the paper); memory is moved in 1 MiB quanta; in the hard and low states
the host's own reclaim does the swapping (ESX would swap each VM towards its target, the model's
host swaps by its watermarks), and VMs are never blocked; above the high state the surplus is
returned to the VMs that pay most per page (highest rho); transparent page sharing is not
modelled.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from autoballoon.control.policies.base import (
    MIB, MIN_TARGET, Every, HostView, Policy, guard, register)
from autoballoon.uapi import PAGE_SHIFT

STATES = ("high", "soft", "hard", "low")
QUANTUM = MIB >> PAGE_SHIFT               # pages moved per step of the allocator


def next_state(state: int, free: float, thresholds: tuple[float, ...]) -> int:
    """Free-memory state after seeing ``free`` (a fraction of host memory): down to the lowest
    state whose threshold free is below, or up while free is above the next higher state's."""
    while state < len(thresholds) - 1 and free < thresholds[state + 1]:
        state += 1
    while state > 0 and free >= thresholds[state - 1]:
        state -= 1
    return state


def adjusted_ratio(shares: float, pages: float, active_pages: float, tax: float) -> float:
    """rho = S / (P * (f + k (1 - f))), f = active / P, k = 1 / (1 - tax)."""
    if pages <= 0:
        return float("inf")
    f = min(1.0, active_pages / pages)
    k = 1.0 / (1.0 - tax)
    return shares / (pages * (f + k * (1.0 - f)))


def _move(pages: list, active: list, shares: list, tax: float, amount: int, room: list,
          take: bool) -> list:
    """Move ``amount`` pages in quanta, each to or from the VM that ranks first by rho among
    those with ``room`` left: taking, the lowest rho, and a part quantum counts as one;
    giving, the highest rho, and only whole quanta. Returns the pages moved per VM."""
    moved = [0] * len(pages)
    while amount > 0 if take else amount >= QUANTUM:
        best = None
        for i in range(len(pages)):
            if room[i] - moved[i] >= QUANTUM:
                held = pages[i] - moved[i] if take else pages[i] + moved[i]
                rho = adjusted_ratio(shares[i], held, active[i], tax)
                if best is None or (rho < best[0] if take else rho > best[0]):
                    best = (rho, i)
        if best is None:
            break
        moved[best[1]] += QUANTUM
        amount -= QUANTUM
    return moved


def revoke(pages, active, shares, tax, amount, room) -> list:
    """Min-funding revocation: take ``amount`` pages from the VMs paying least per page."""
    return _move(pages, active, shares, tax, amount, room, take=True)


def refund(pages, active, shares, tax, amount, ballooned) -> list:
    """Give ``amount`` pages back to the VMs paying most per page, out of their balloons."""
    return _move(pages, active, shares, tax, amount, ballooned, take=False)


class ActiveMemory:
    """One VM's active-memory estimate from sampled accessed bits (paper §5.3)."""

    def __init__(self, rng, ram_pages: int, n: int, slow_gain: float, fast_gain: float):
        self.rng, self.ram_pages, self.n = rng, ram_pages, n
        self.slow_gain, self.fast_gain = slow_gain, fast_gain
        self.slow = self.fast = None
        self.frames = np.zeros(0, np.int64)
        self.touched = np.zeros(0, bool)

    def start(self, clear) -> None:
        self.frames = self.rng.integers(0, self.ram_pages, self.n)
        clear(self.frames)
        self.touched = np.zeros(self.n, bool)

    def look(self, clear) -> None:
        self.touched |= np.asarray(clear(self.frames), bool)

    def finish(self) -> None:
        f = float(self.touched.mean())
        if self.slow is None:
            self.slow = self.fast = f
        else:
            self.slow += self.slow_gain * (f - self.slow)
            self.fast += self.fast_gain * (f - self.fast)

    def estimate(self) -> float:
        """max(slow, fast, fast with the current period's count); 1 before any period ends."""
        if self.slow is None:
            return 1.0
        current = self.fast + self.fast_gain * (float(self.touched.mean()) - self.fast)
        return max(self.slow, self.fast, current)


@register("esx")
class EsxPolicy(Policy):
    automatic = True
    guest_features = {"auto_balloon": False}

    def __init__(self, scenario, tax_rate=0.75, shares=None, minimum=None, sample_pages=100,
                 sample_period="30s", balance_period="15s", thresholds=(0.06, 0.04, 0.02, 0.01),
                 ctl_max_percent=65, slow_gain=0.125, fast_gain=0.5):
        super().__init__(scenario)
        self.tax = self.number_param(tax_rate, "tax_rate", 0, 0.99)
        guests = scenario.guests
        self.shares = self.per_guest(
            shares, "shares", lambda v, k: self.number_param(v, k, 0, 10**9, integer=True),
            lambda i: 10 * guests[i].memory // MIB)
        self.minimum = [m >> PAGE_SHIFT for m in self.per_guest(
            minimum, "minimum", self.size_param, lambda i: 0)]
        ok = (isinstance(thresholds, (list, tuple)) and len(thresholds) == 4
              and all(isinstance(t, (int, float)) and 0 <= t <= 1 for t in thresholds)
              and list(thresholds) == sorted(thresholds, reverse=True))
        guard("host.policy_params.thresholds", ok,
              "four decreasing fractions of host memory (high, soft, hard, low)", thresholds)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.ctl_max = self.number_param(ctl_max_percent, "ctl_max_percent", 0, 100) / 100
        n = self.number_param(sample_pages, "sample_pages", 1, 10**6, integer=True)
        gains = [self.number_param(g, k, 0, 1) for g, k in ((slow_gain, "slow_gain"),
                                                            (fast_gain, "fast_gain"))]
        self.active = [ActiveMemory(np.random.default_rng([scenario.run.seed, i, 0xE5]),
                                    g.memory >> PAGE_SHIFT, n, *gains)
                       for i, g in enumerate(guests)]
        self.sampling = Every(self.duration_param(sample_period, "sample_period"))
        period = self.duration_param(balance_period, "balance_period")
        self.balancing = Every(period, first_ns=period)
        self.state = 0

    def observe(self, view: HostView) -> dict[int, int] | None:
        clear = view.test_and_clear_young
        new_period = self.sampling.due(view.now_ns)
        for g, am in enumerate(self.active):
            if new_period:
                if view.now_ns > 0:
                    am.look(partial(clear, g))
                    am.finish()
                am.start(partial(clear, g))
        hm = view.host_meminfo
        state = next_state(self.state, hm["MemFree"] / hm["MemTotal"], self.thresholds)
        due = self.balancing.due(view.now_ns)
        if not due and state == self.state:
            return None
        self.state = state
        for g, am in enumerate(self.active):
            am.look(partial(clear, g))
        return self._balance(view) or None

    def _balance(self, view: HostView) -> dict[int, int]:
        hm = view.host_meminfo
        n = len(view.names)
        ram = [r >> PAGE_SHIFT for r in view.ram_size]
        pending = [max(0, (a - t) >> PAGE_SHIFT) for a, t in zip(view.actual, view.target)]
        pages = [max(0, (view.host_usage[g]["VmRSS"] >> PAGE_SHIFT) - pending[g])
                 for g in range(n)]
        balloon = [(r - t) >> PAGE_SHIFT for r, t in zip(view.ram_size, view.target)]
        active = [am.estimate() * ram[g] for g, am in enumerate(self.active)]
        high = int(self.thresholds[0] * hm["MemTotal"]) >> PAGE_SHIFT
        free = (hm["MemFree"] >> PAGE_SHIFT) + sum(pending)
        if self.state > 0:          # soft and below: reclaim until free is back above high
            room = [max(0, min(pages[g] - self.minimum[g], int(self.ctl_max * ram[g])
                               - balloon[g])) for g in range(n)]
            moved = revoke(pages, active, self.shares, self.tax, high - free, room)
            balloon = [b + m for b, m in zip(balloon, moved)]
        else:                       # high: hand back what is above the high threshold
            moved = refund(pages, active, self.shares, self.tax, free - high, balloon)
            balloon = [b - m for b, m in zip(balloon, moved)]
        self.expose(view.now_ns, "host", state=self.state, free=hm["MemFree"])
        for g in range(n):
            self.expose(view.now_ns, g, active_fraction=self.active[g].estimate(),
                        rho=adjusted_ratio(self.shares[g], pages[g], active[g], self.tax))
        return {g: max(MIN_TARGET, view.ram_size[g] - (balloon[g] << PAGE_SHIFT))
                for g in range(n) if moved[g]}
