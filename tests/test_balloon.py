"""virtio_balloon driver and host behaviour: tests that fail if the model is wrong."""
import numpy as np
import pytest
from machines import MS, MiB, S, guest, phases, run, scenario

from autoballoon import uapi
from autoballoon.machine import Machine
from autoballoon.machine import layout as L
from autoballoon.machine.mm.constants import BALLOON_PUFF_SLEEP_NS
from autoballoon.scenario.spec import WorkloadSpec
from autoballoon.trace import AccessTrace
from autoballoon.trace.ops import OP_EXIT, OP_WRITE

PAGE = 4096


def stream(pages, gap_ns=1000, exit_after=False, idle_ns=0):
    pages = np.asarray(pages, np.int64)
    ops = np.full(len(pages), OP_WRITE, np.uint8)
    gaps = np.full(len(pages), gap_ns, np.int64)
    if exit_after:
        pages = np.append(pages, 0)
        ops = np.append(ops, np.uint8(OP_EXIT))
        gaps = np.append(gaps, gap_ns)
        pages, ops, gaps = np.append(pages, 0), np.append(ops, np.uint8(OP_WRITE)), \
            np.append(gaps, idle_ns)
    return AccessTrace(gaps, pages, ops, where="test stream")


def test_driver_moves_towards_target_256_pages_per_batch():
    """One batch of at most 256 pages at a time, each a tell_host round trip long (40 us +
    2.2 us per page madvised), the first at t = 0; the work runs at the start of each 1 ms
    slice while a batch is due, until actual == target."""
    g = guest(memory=32 * MiB, target=32 * MiB - 1000 * PAGE,
              workload=phases(dict(length=1 * MiB, passes=1)))
    m = Machine(scenario(g, duration=10 * MS), debug=True)
    batch = g.tell_host_ns + 256 * g.madvise_dontneed_ns
    seen = []
    for k in range(1, 5):
        m.advance(k * MS)
        seen.append(m.meminfo(0)["balloon_actual"] // PAGE)
    # batches start at 0, 603 us, 1206 us, 1810 us: by the slice starting at (k-1) ms
    assert seen == [min(1000, 256 * ((k - 1) * MS // batch + 1)) for k in range(1, 5)]
    assert seen == [256, 512, 1000, 1000]
    m.set_target(0, 32 * MiB)                         # deflate completely
    m.advance(10 * MS)
    v = m.vmstat(0)
    assert m.meminfo(0)["balloon_actual"] == 0
    assert v["balloon_inflate"] == v["balloon_deflate"] == 1000
    assert v["balloon_reversals"] == 1
    # balloon_lock was held for each batch's round trip, no longer (no allocation stalled)
    assert v["balloon_lock_ns"] == (8 * g.tell_host_ns + 1000 * g.madvise_dontneed_ns
                                    + 1000 * g.madvise_willneed_ns)


def test_inflate_without_deflate_on_oom_lowers_memtotal_with_it_does_not():
    def memtotal(features):
        g = guest(memory=32 * MiB, target=24 * MiB, features=frozenset(features))
        return run(scenario(g, duration=100 * MS)).meminfo(0)["MemTotal"]
    assert memtotal({"stats_vq"}) == 24 * MiB
    assert memtotal({"stats_vq", "deflate_on_oom"}) == 32 * MiB


def test_static_balloon_too_large_makes_the_guest_swap():
    w = phases(dict(length=40 * MiB, pattern="seq", passes=3))
    free = run(scenario(guest(memory=64 * MiB, workload=w), duration=3 * S)).vmstat(0)
    tight = run(scenario(guest(memory=64 * MiB, target=32 * MiB, workload=w),
                         duration=3 * S)).vmstat(0)
    assert free["pswpout"] == 0 and tight["pswpout"] > 1000


def test_overcommitted_host_without_balloon_swaps_on_the_host():
    w = phases(dict(length=48 * MiB, pattern="seq", passes=4))
    guests = [guest(name=f"vm{i}", memory=64 * MiB, workload=w) for i in range(2)]
    m = run(scenario(*guests, host_memory=64 * MiB, host_swap=128 * MiB, duration=3 * S))
    h = m.host_vmstat()
    assert h["pswpout"] > 1000 and h["pswpin"] > 0
    assert all(m.vmstat(g)["pswpout"] == 0 for g in range(2))       # guests see nothing
    assert sum(m.vmstat(g)["host_swapin_stalls"] for g in range(2)) == h["pswpin"]



def test_host_oom_kills_one_vm_and_frees_all_its_host_memory():
    """Without host swap, two 64 MiB guests cannot both fit a 64 MiB host: the host OOM killer
    kills one VM (its QEMU process), which frees every host page behind it, and the other VM
    runs on with the memory that came back."""
    from autoballoon.machine import layout as L
    from autoballoon.machine.mm import constants as c
    w = phases(dict(length=48 * MiB, pattern="seq", passes=4))
    guests = [guest(name=f"vm{i}", memory=64 * MiB, workload=w) for i in range(2)]
    m = run(scenario(*guests, host_memory=64 * MiB, duration=3 * S))
    alive = [m.meminfo(g)["alive"] for g in range(2)]
    assert m.host_vmstat()["oom_kill"] == 1 and sorted(alive) == [L.ALIVE_VM_KILLED, 0]
    dead = alive.index(L.ALIVE_VM_KILLED)
    base = m.m.P[dead, L.P_FRAME_BASE]
    frames = slice(base, base + m.m.P[dead, L.P_NFRAMES])
    assert not (m.m.fref[frames] & (c.F_PRESENT | c.F_HSWAPPED)).any()
    assert m.vmstat(1 - dead)["progress"] == 4 * 48 * 256          # the survivor finished


def auto_guest(variant="rfc", target=16 * MiB, length=28 * MiB, kernel="6.1", swap=32 * MiB):
    w = phases(dict(length=length, pattern="rand", duration_ns=2 * S))
    return guest(memory=32 * MiB, target=target, swap=swap, kernel=kernel,
                 features=frozenset({"stats_vq", "auto_balloon"}), auto_balloon_variant=variant,
                 workload=w)


def test_auto_balloon_shrinker_deflates_6_1_stays_deflated_3_7_reinflates_at_stats_polls():
    """The shrinker deflates under guest pressure and leaves the target alone. In 6.1 nothing
    restarts the balloon work but a config change, so the balloon stays deflated; the 3.x
    kthread is woken by every stats request (1 s polls) and inflates again."""
    new = run(scenario(auto_guest(kernel="6.1"), duration=2 * S)).vmstat(0)
    assert new["balloon_shrinker_calls"] > 0 and new["balloon_deflate"] > 0
    assert new["balloon_inflate"] == 4096 and new["balloon_reversals"] == 1   # boot inflation
    old = run(scenario(auto_guest(kernel="3.7"), duration=2 * S)).vmstat(0)
    assert old["balloon_deflate"] > 0 and old["balloon_inflate"] > 4096
    assert old["balloon_reversals"] >= 3


def test_rfc_lock_across_out_of_puff_refuses_every_shrinker_call():
    """No swap and a balloon asking for more than the workload leaves: inflation runs out of
    puff. The RFC holds balloon_lock across its allocations and the 200 ms sleep, so every
    shrinker call fails and nothing is given back; corrected, the lock is held only while a
    batch tells the host, the shrinker gives memory back, and the still-kicked balloon work
    takes it again: churn, the balloon fighting the guest."""
    def counters(variant):
        g = auto_guest(variant=variant, target=8 * MiB, length=20 * MiB, swap=0)
        return run(scenario(g, duration=2 * S)).vmstat(0)
    rfc, fixed = counters("rfc"), counters("fixed")
    assert rfc["balloon_out_of_puff"] > 0
    assert rfc["balloon_shrinker_busy"] == rfc["balloon_shrinker_calls"] > 0
    assert rfc["balloon_deflate"] == 0 and rfc["oom_kill"] == 1
    assert fixed["balloon_deflate"] > 2048
    assert fixed["balloon_shrinker_busy"] < fixed["balloon_shrinker_calls"]
    assert fixed["balloon_inflate"] > 6144 + 2048          # inflated what it gave back again
    # the RFC holds the lock through every 200 ms out-of-puff sleep (balloon_lock_ns)
    assert rfc["balloon_lock_ns"] >= rfc["balloon_out_of_puff"] * BALLOON_PUFF_SLEEP_NS


def test_6_1_deflate_on_oom_stays_until_the_host_writes_the_target_again():
    w = phases(dict(length=26 * MiB, pattern="seq", passes=2))
    g = guest(memory=32 * MiB, swap=0, target=16 * MiB, workload=w,
              features=frozenset({"stats_vq", "deflate_on_oom"}))
    m = Machine(scenario(g, duration=3 * S), debug=True)
    m.advance(2 * S)
    after_oom = m.meminfo(0)["balloon_actual"]
    assert m.vmstat(0)["balloon_oom_deflate"] > 0 and after_oom < 16 * MiB
    m.advance(2500 * MS)
    assert m.meminfo(0)["balloon_actual"] == after_oom        # stats polls do not restart it
    m.set_target(0, 16 * MiB)                                 # the same target, again
    m.advance(3 * S)
    assert m.meminfo(0)["balloon_actual"] > after_oom


def test_rfc_leaks_more_than_asked_then_nothing_when_balloon_is_small():
    from autoballoon.machine.virtio import balloon
    g = auto_guest(target=32 * MiB - 300 * PAGE)
    m = Machine(scenario(g, duration=10 * MS))
    m.advance(5 * MS)
    assert m.meminfo(0)["balloon_actual"] == 300 * PAGE
    # the last inflate batch may still be telling the host: the shrinker waits for the lock
    wait = max(0, int(m.m.S[0, L.S_BALLOON_LOCK_UNTIL]) - m.now_ns)
    assert balloon.shrinker_leak(m.m, 0, 128, m.now_ns) == 172   # target 172 read as a count
    assert balloon.shrinker_leak(m.m, 0, 128, m.now_ns) == 0     # 128 <= nr_to_scan: nothing
    # the reclaiming task paid the wait and one deflate round trip; reclaim collects it
    assert m.m.S[0, L.S_CALLBACK_NS] == wait + g.tell_host_ns + 172 * g.madvise_willneed_ns


def test_deflate_on_oom_frees_256_pages_per_oom_only_after_reclaim_fails():
    def counters(swap):
        w = phases(dict(length=26 * MiB, pattern="seq", passes=2))
        g = guest(memory=32 * MiB, swap=swap, target=16 * MiB, workload=w,
                  features=frozenset({"stats_vq", "deflate_on_oom"}))
        return run(scenario(g, duration=2 * S)).vmstat(0)
    noswap, withswap = counters(0), counters(32 * MiB)
    assert noswap["balloon_oom_deflate"] > 0 and noswap["balloon_oom_deflate"] % 256 == 0
    assert noswap["oom_kill"] == 0                     # the balloon gave the memory back
    assert withswap["balloon_oom_deflate"] == 0        # reclaim (swap) succeeded first
    assert withswap["pswpout"] > 0


def test_free_page_reporting_lowers_host_usage_above_its_gate_only():
    """Whole free 2 MiB blocks are reported (and unbacked by the host) in a pass 2 s after the
    first one appears, but only while free memory exceeds the low watermark + 64 MiB
    (page_reporting_process_zone): a 96 MiB guest that freed 32 MiB reports, a 64 MiB one
    cannot."""
    def host_used(memory, features):
        st = stream(np.arange(8192), exit_after=True, idle_ns=4 * S)   # 32 MiB, exit, idle
        g = guest(memory=memory, features=frozenset(features),
                  workload=WorkloadSpec(kind="trace", path="s"))
        m = Machine(scenario(g, duration=5 * S), traces={"s": st}, debug=True)
        m.advance(4 * S)
        return m.host_meminfo()["Used"], m.vmstat(0)["free_page_reported"]
    used_off, rep_off = host_used(96 * MiB, {"stats_vq"})
    used_on, rep_on = host_used(96 * MiB, {"stats_vq", "free_page_reporting"})
    assert rep_off == 0 and rep_on >= 96 * 256 - 512
    assert used_off >= 32 * MiB and used_on < 4 * MiB
    _, rep_small = host_used(64 * MiB, {"stats_vq", "free_page_reporting"})
    assert rep_small == 0                               # 64 MiB free < low + 64 MiB


def test_stats_vq_is_refreshed_only_when_the_host_polls():
    g = guest(memory=32 * MiB, workload=phases(dict(length=8 * MiB, passes=1)))
    sc = scenario(g, duration=1500 * MS)
    m = Machine(sc)
    m.advance(500 * MS)
    polled = m.balloon_stats(0)
    assert polled["total_memory"] == 32 * MiB
    assert polled["free_memory"] == 32 * MiB        # polled at t = 0, before the first fault
    m.advance(900 * MS)
    assert m.balloon_stats(0) == polled                  # not polled again before 1 s
    m.advance(1100 * MS)
    assert m.balloon_stats(0)["free_memory"] < polled["free_memory"]
    # the poll at 1 s: VIRTIO_BALLOON_S_MINFLT is the kernel's pgfault (major faults included)
    assert m.balloon_stats(0)["minor_faults"] == 2048 == m.vmstat(0)["pgfault"]


@pytest.mark.parametrize("kernel, sent", [
    ("3.7", {"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory",
             "total_memory"}),
    ("6.1", {"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory",
             "total_memory", "available_memory", "disk_caches", "hugetlb_allocations",
             "hugetlb_failures"}),
    ("6.12", set(uapi.STATS_TAGS))])
def test_stats_tags_are_those_the_guest_kernel_sends(kernel, sent):
    w = phases(dict(length=24 * MiB, pattern="seq", passes=2))
    m = run(scenario(guest(memory=16 * MiB, kernel=kernel, workload=w), duration=1500 * MS))
    stats = m.balloon_stats(0)
    assert {k for k, v in stats.items() if v >= 0} == sent      # absent: -1, as QEMU shows
    if kernel == "6.12":
        assert stats["async_scans"] == m.vmstat(0)["pgscan_kswapd"] * PAGE > 0   # bytes


@pytest.mark.parametrize("free", [0, 10_000])
def test_double_paging_readback_takes_a_host_page_like_a_fault(free):
    """The guest writing out a frame the host swapped makes the host read it back: that needs
    a host page, allocated as for a fault (with none free and nothing to reclaim, the host
    OOM killer kills the guest), so host free memory never goes below zero."""
    from autoballoon.machine.host import memory as host
    from autoballoon.machine.mm import constants as c
    m = Machine(scenario(guest(memory=32 * MiB, workload=phases(dict(length=MiB, passes=1))),
                         duration=10 * MS))
    st = m.m
    st.fref[0] |= c.F_HSWAPPED
    st.H[L.H_SWAP_USED] += 1
    st.H[L.H_NR_FREE] = free
    cost = host.host_readback(st, 0, 0, 0)
    if free:
        assert cost == st.H[L.H_SWAP_READ_NS] + st.H[L.H_SWAP_NS_PER_PAGE]
        assert st.H[L.H_NR_FREE] == free - 1 and st.fref[0] & c.F_PRESENT
        assert st.H[L.H_PSWPIN] == 1 and st.H[L.H_OOM_KILL] == 0
    else:
        assert cost == 0 and st.H[L.H_OOM_KILL] == 1 and st.S[0, L.S_ALIVE] == L.ALIVE_VM_KILLED
        assert st.H[L.H_SWAP_USED] == 0 and not st.fref[0] & c.F_HSWAPPED   # freed with the VM
