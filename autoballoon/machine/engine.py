"""The numba side of the control loop: advance the whole machine by one control tick.

Within a tick, guests run in slices of ``slice_ns`` so that they contend for host memory at a
fine grain; the guest that goes first rotates every slice, so no guest is favoured by its
position in the scenario. Per slice and guest: the stats timer, the balloon work and free page
reporting run, then the workload replays to the slice's end, then kswapd catches up;
host kswapd catches up after every slice. A VM the host OOM killer killed runs no more.
"""
from autoballoon.machine import callbacks  # noqa: F401  (binds mm's hooks before compiling)
from autoballoon.machine.host import memory as host
from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import ALIVE_VM_KILLED, S_ALIVE
from autoballoon.machine.mm import vmscan
from autoballoon.machine.virtio import balloon
from autoballoon.machine.workload import replay


@kernel
def advance_machine(m, now, until, slice_ns, poll_ns, slice_no):
    """Run every guest and the host from ``now`` to ``until``; returns the slice counter."""
    G = m.P.shape[0]
    t = now
    while t < until:
        end = min(t + slice_ns, until)
        first = slice_no % G
        for k in range(G):
            g = (first + k) % G
            if m.S[g, S_ALIVE] == ALIVE_VM_KILLED:     # its QEMU process is gone
                continue
            balloon.stats_poll(m, g, t, poll_ns)
            balloon.balloon_work(m, g, t)
            balloon.page_reporting_process(m, g, t)
            replay.run_guest(m, g, end)
            vmscan.kswapd(m, g, end)
        host.host_kswapd(m, end)
        t = end
        slice_no += 1
    return slice_no
