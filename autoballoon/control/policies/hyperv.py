"""``hyperv``: Hyper-V Dynamic Memory — the Linux guest's pressure reports and the host balancer.

Mirrors, for the guest half, Linux ``drivers/hv/hv_balloon.c`` (K. Y. Srinivasan, 2012):
``dm_thread_func`` wakes every second and calls ``post_status``, which stays silent for the
first ``pressure_report_delay`` (45) calls and then reports, in 4 KiB pages,
``num_committed = vm_memory_committed() + num_pages_ballooned + compute_balloon_floor()``
(the guest's Committed_AS, the pages the host ballooned, and a floor that grows with the guest:
8 MiB + 1/2 below 128 MiB of totalram, 40 MiB + 1/4 below 512 MiB, 104 MiB + 1/8 below 2 GiB,
232 MiB + 1/16 below 8 GiB, else 488 MiB + 1/32), and ``num_avail`` (MemAvailable). In
``balloon_up`` the guest refuses to go below the floor: it gives at most MemAvailable - floor,
rounded down to 2 MiB (``PAGES_IN_2M``; the newest kernels drop the rounding). The floor is
computed from the current totalram, which the balloon shrinks: each report after an inflation
asks for less, and an idle guest is walked down over a few seconds to where target =
(1 + buffer) x (Committed_AS + floor(target)).

Host half — closed source; reconstructed from Microsoft's documentation (Set-VMMemory ``-Buffer``,
``-Priority``; the "Hyper-V Dynamic Memory" performance counters): after each report the host
computes the VM's demand (the report minus the pages it ballooned itself), its pressure
``100 * demand / assigned`` and its target ``demand * (1 + buffer / 100)`` clamped to
[minimum, maximum]; it adds or removes memory in 2 MiB units. When the targets do not fit in host
memory, each VM keeps its demand and the rest is shared in proportion to priority x buffer
(the documented rule is only "higher priority first").

Inputs: the ``agent`` reading (the hv_balloon status report: Committed_AS, MemAvailable,
MemTotal = totalram_pages), ``actual`` (assigned memory), the host's MemTotal.
Parameters: ``pressure_report_delay`` (seconds of silence, 45), ``buffer`` (percent, 20 —
Hyper-V Manager's default), ``minimum`` (bytes, default 0: only the guest's floor limits it),
``priority`` (0-100, 50); per guest or one value.

Simplifies: guest RAM is fixed, so "maximum" = ``ram_size`` and there is no hot-add (Hyper-V
grows a VM past its startup memory by hot-adding 128 MiB blocks); the host rebalances on each
report (its period is not documented) and moves the whole way at once; the virtio balloon
driver does the allocating (hv_balloon's 2 MiB-then-4 KiB allocation is not modelled).
"""
from __future__ import annotations

from autoballoon.control.policies.base import MIB, MIN_TARGET, Every, HostView, Policy, register
from autoballoon.uapi import PAGE_SHIFT

MB_PAGES = MIB >> PAGE_SHIFT
PAGES_IN_2M = 512
SECOND = 1_000_000_000


def compute_balloon_floor(totalram: int) -> int:
    """hv_balloon.c ``compute_balloon_floor``: pages the guest keeps, from totalram_pages()."""
    if totalram < 128 * MB_PAGES:
        return 8 * MB_PAGES + (totalram >> 1)
    if totalram < 512 * MB_PAGES:
        return 40 * MB_PAGES + (totalram >> 2)
    if totalram < 2048 * MB_PAGES:
        return 104 * MB_PAGES + (totalram >> 3)
    if totalram < 8192 * MB_PAGES:
        return 232 * MB_PAGES + (totalram >> 4)
    return 488 * MB_PAGES + (totalram >> 5)


def balloon_up(num_pages: int, avail: int, floor: int) -> int:
    """hv_balloon.c ``balloon_up``: the pages the guest gives for a request of ``num_pages``,
    refusing to leave less than ``floor`` of MemAvailable (``avail``)."""
    if avail < num_pages or avail - num_pages < floor:
        num_pages = avail - floor if avail > floor else 0
        num_pages -= num_pages % PAGES_IN_2M
    return num_pages


def share_targets(demand: list[int], wanted: list[int], weight: list[int],
                  capacity: int) -> list[int]:
    """Targets when ``wanted`` (demand + buffer) may not fit in ``capacity``: each VM keeps its
    demand; what is left is shared in proportion to ``weight`` x buffer (pages)."""
    if sum(wanted) <= capacity:
        return list(wanted)
    extra = [w - d for w, d in zip(wanted, demand)]
    left = max(0, capacity - sum(demand))
    total = sum(x * w for x, w in zip(extra, weight))
    if total == 0:
        return list(demand)
    return [d + min(x, left * x * w // total) for d, x, w in zip(demand, extra, weight)]


@register("hyperv")
class HyperVPolicy(Policy):
    automatic = True
    guest_features = {"auto_balloon": False}

    def __init__(self, scenario, pressure_report_delay=45, buffer=None, minimum=None,
                 priority=None):
        super().__init__(scenario)
        delay = self.number_param(pressure_report_delay, "pressure_report_delay", 0, 10**6,
                                  integer=True)
        # post_status is called every second; the first `delay` calls only count down
        self.report = Every(SECOND, first_ns=(delay + 1) * SECOND)
        percent = lambda v, k: self.number_param(v, k, 5, 2000, integer=True)  # noqa: E731
        self.buffer = self.per_guest(buffer, "buffer", percent, lambda i: 20)
        self.minimum = self.per_guest(minimum, "minimum", self.size_param, lambda i: 0)
        self.priority = self.per_guest(
            priority, "priority", lambda v, k: self.number_param(v, k, 0, 100, integer=True),
            lambda i: 50)

    def observe(self, view: HostView) -> dict[int, int] | None:
        if not self.report.due(view.now_ns):
            return None
        n = len(view.names)
        demand, wanted, floor, avail = [], [], [], []
        for g in range(n):
            agent = view.agent[g]
            ballooned = (view.ram_size[g] - view.actual[g]) >> PAGE_SHIFT
            floor.append(compute_balloon_floor(agent["MemTotal"] >> PAGE_SHIFT))
            avail.append(agent["MemAvailable"] >> PAGE_SHIFT)
            committed = (agent["Committed_AS"] >> PAGE_SHIFT) + ballooned + floor[g]
            demand.append(committed - ballooned)             # the host knows its balloon
            lo = self.minimum[g] >> PAGE_SHIFT
            hi = view.ram_size[g] >> PAGE_SHIFT
            wanted.append(min(hi, max(lo, demand[g] * (100 + self.buffer[g]) // 100)))
            assigned = view.actual[g] >> PAGE_SHIFT
            self.expose(view.now_ns, g, num_committed=committed << PAGE_SHIFT,
                        pressure=100 * demand[g] / max(1, assigned))
        weight = [p * b for p, b in zip(self.priority, self.buffer)]
        capacity = view.host_meminfo["MemTotal"] >> PAGE_SHIFT
        targets = share_targets(demand, wanted, weight, capacity)
        out = {}
        for g in range(n):
            assigned = view.actual[g] >> PAGE_SHIFT
            step = abs(targets[g] - assigned) // PAGES_IN_2M * PAGES_IN_2M   # 2 MiB units
            if targets[g] < assigned:
                step = -balloon_up(step, avail[g], floor[g])
            if step:
                out[g] = max(MIN_TARGET, (assigned + step) << PAGE_SHIFT)
        return out or None
