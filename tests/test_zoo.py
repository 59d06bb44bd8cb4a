"""The policy zoo: each shipped policy's rule (golden numbers from its source where it has
tests, hand-computed otherwise), a golden target sequence on the FakeMachine, and a behaviour
test of its signature; plus the HostView figures they read."""
import textwrap

import numpy as np
import pytest
from fakes import FakeMachine

from autoballoon import load_scenario
from autoballoon.control.policies import fit_guest_features, make_policy, policy_class
from autoballoon.control.policies.crosvm import BalanceAvailable, cdiv, resourced_available
from autoballoon.control.policies.esx import adjusted_ratio, next_state, refund, revoke
from autoballoon.control.policies.hyperv import balloon_up, compute_balloon_floor, share_targets
from autoballoon.control.policies.proxmox import VMStatus, compute_alg1
from autoballoon.control.policies.virtualbox import balloon_get_delta
from autoballoon.control.policies.xen_selfballoon import selfballoon_floor, selfballoon_target
from autoballoon.errors import SpecError
from autoballoon.results.run import simulate

MIB = 2**20
PAGES_PER_MIB = 256
S = 1_000_000_000

# Two 256 MiB guests on a 400 MiB host: each needs 200 MiB for a minute, then 64 MiB.
FAKE = textwrap.dedent("""\
    [run]
    duration = "DURATION"
    tick = "100ms"
    [host]
    memory = "400MiB"
    swap = "1GiB"
    [[guest]]
    name = "vm"
    count = 2
    memory = "256MiB"
    features = ["stats_vq"]
    workload = { kind = "phases", phases = [ { length = "NEED", duration = "60s" },
                                             { length = "64MiB", duration = "60s" } ] }
    """)


def fake_run(policy, params=None, duration="120s", need="200MiB", extra="", host="400MiB"):
    """Run ``policy`` on the FAKE scenario (fitted to the policy's guest features); returns
    (Results, the policy object)."""
    s = load_scenario(FAKE.replace("DURATION", duration).replace("NEED", need)
                      .replace('memory = "400MiB"', f'memory = "{host}"') + extra)
    s, _ = fit_guest_features(s, policy_class(policy))
    p = make_policy(s, policy, params or {})
    return simulate(s, p, progress=False, machine_factory=FakeMachine), p


def targets_every(results, seconds=10, guest="vm-0"):
    ts = results.timeseries
    t = ts[(ts["guest"] == guest) & (ts["t_ns"] % (seconds * S) == 0)]
    return [int(v) // MIB for v in t["target"]]


def target_changes(results, guest="vm-0"):
    """[(t_s, old MiB, new MiB)] of every target change."""
    ts = results.timeseries
    t = ts[ts["guest"] == guest][["t_ns", "target"]].to_numpy()
    return [(int(a[0]) / S, int(b[1]) / MIB, int(a[1]) / MIB)
            for b, a in zip(t[:-1], t[1:]) if a[1] != b[1]]


# --- proxmox: pve-manager test/balloontest.pl, every case --------------------------------------
MB, GB = 10**6, 10**9


def status(*vms):
    return {vmid: VMStatus(balloon=b, balloon_min=mn, maxmem=mx, shares=sh, freemem=fr)
            for vmid, mx, sh, b, mn, fr in vms}


STATUS1 = status((100, GB * 2, 2000, GB, GB, 0), (101, GB * 2, 1000, GB, GB, 0))
STATUS2 = status((100, GB * 2, 2000, GB * 2, GB * 2, 0), (101, GB * 2, 1000, GB, GB, 0))
STATUS3 = status((100, GB * 2, 2000, GB * 2, GB * 2, 0), (101, GB * 2, 1000, GB + MB * 7, GB, 0),
                 (102, GB * 2, 1000, GB, GB, MB * 512))


def absim(vms, goal):
    """balloontest.pl's absim: apply compute_alg1 until nothing changes; returns (every size it
    set, the final status)."""
    vms = {k: VMStatus(**v.__dict__) for k, v in vms.items()}
    seen = {}
    while True:
        res = compute_alg1(vms, goal, MB * 100)
        changes = moved = 0
        for vmid, size in res.items():
            diff = size - vms[vmid].balloon
            if diff:
                vms[vmid].freemem = max(0, vms[vmid].freemem + diff)
                vms[vmid].balloon = seen[vmid] = size
                changes += diff
                moved += abs(diff)
        goal -= changes
        if not moved:
            return seen, vms


@pytest.mark.parametrize("vms, goal, expect", [
    (STATUS1, 0, {}),
    (STATUS1, MB * 90, {100: MB * 1060, 101: MB * 1030}),
    (STATUS1, MB * 150, {100: MB * 1100, 101: MB * 1050}),
    (STATUS1, MB * 270, {100: MB * 1100, 101: MB * 1090}),
    (STATUS2, 0, {}),
    (STATUS2, MB * 18, {101: MB * 1018}),
    (STATUS2, MB * 500, {101: MB * 1100}),
    (STATUS3, 0, {}),
    (STATUS3, MB * 11, {101: MB * 1018}),
    (STATUS3, MB * 80, {101: MB * 1087}),
    (STATUS3, MB * 200, {101: MB * 1107}),
])
def test_proxmox_compute_alg1_abtest(vms, goal, expect):
    assert compute_alg1(vms, goal, MB * 100) == expect


@pytest.mark.parametrize("vms, goal, expect", [
    (STATUS1, MB * 180, {100: MB * 1120, 101: MB * 1060}),
    (STATUS1, MB * 270, {100: MB * 1180, 101: MB * 1090}),
    (STATUS1, MB * 600, {100: MB * 1300, 101: MB * 1300}),
    (STATUS1, MB * 900, {100: MB * 1600, 101: MB * 1300}),
])
def test_proxmox_compute_alg1_absim(vms, goal, expect):
    assert absim(vms, goal)[0] == expect


def test_proxmox_compute_alg1_absim_shrink():
    seen, after = absim(STATUS3, MB * 593)
    assert seen == {101: MB * 1300, 102: MB * 1300}
    assert absim(after, -MB * 200)[0] == {101: MB * 1200, 102: MB * 1200}
    assert absim(after, -MB * 400)[0] == {101: MB * 1200, 102: GB}
    assert absim(after, -MB * 593)[0] == {101: MB * 1007, 102: GB}


def test_proxmox_golden_targets():
    r, p = fake_run("proxmox")
    # host 400 MiB full, 80 % = 320: goal -80 MiB, shared by shares above the 128 MiB minimum
    # (desired 128 + (256 - 80) / 2 = 216); the guests still back 200 MiB each, so -80 again
    # (176); then they back 176 each: goal -32 (160), and host use is at 320 MiB
    assert targets_every(r)[:6] == [256, 216, 176, 160, 160, 160]
    assert targets_every(r, guest="vm-1")[:6] == [256, 216, 176, 160, 160, 160]
    goals = p.state_frame()["goal"]
    assert goals.iloc[0] == int(400 * MIB * 0.8 - 400 * MIB)


def test_proxmox_holds_host_use_in_its_deadband():
    r, p = fake_run("proxmox", {"balloon_min": "64MiB"})
    host = r.timeseries[r.timeseries["guest"] == "host"].set_index("time_s")["used"]
    settled = host.loc[40:]
    assert (abs(settled - 0.8 * 400 * MIB) <= 10 * MIB).all()
    assert len(target_changes(r)) >= 2
    # the first change waits for pvestatd's second loop and moves by at most 100 MiB
    first = target_changes(r)[0]
    assert first[0] == 10 and first[1] - first[2] <= 100


# --- mom ------------------------------------------------------------------------------------------
def r_scenario():
    return load_scenario(FAKE.replace("DURATION", "1s").replace("NEED", "8MiB"))


def test_mom_golden_targets():
    r, _ = fake_run("mom")
    assert targets_every(r) == [256, 256, 256, 243, 231, 219, 208, 198, 190, 190, 190, 190, 190]


def test_mom_moves_at_most_its_step_per_10s_under_pressure():
    r, p = fake_run("mom", duration="60s")
    changes = target_changes(r)
    assert len(changes) >= 3
    state = p.state_frame().set_index("time_s")
    # the first samples (free host at t = 0) keep the 50 s average above 20 % until 30 s
    assert list(state["shrinking"]) == [0, 0, 1, 1, 1]
    for t, old, new in changes:
        assert t % 10 == 0 and state.loc[t, "shrinking"] == 1   # the policy engine's period
        assert new < old and old - new <= 0.05 * old + 1 / 1024   # 5 % of balloon_cur (KiB)


def test_mom_grows_back_to_the_free_floor():
    # shrink the guests by hand at 1 s; the host has plenty free, so mom grows them by 5 % of
    # balloon_cur a run (100 -> 105 -> 110.25 -> 115.76 MiB; the floor, 16 MiB used + 20 %,
    # is lower) ...
    extra = '[[schedule]]\nat = "1s"\nguest = "vm"\ntarget = "100MiB"\n'
    r, _ = fake_run("mom", {}, duration="40s", need="16MiB", extra=extra)
    assert targets_every(r) == [256, 105, 110, 115, 115]
    # ... or at once to the floor, used + 20 % of balloon_cur, when that is more (KiB)
    mom = make_policy(r_scenario(), "mom")
    assert mom._grow(100 * 1024, 100 * 1024, 0, 256 * 1024, 0.5) == 120 * 1024
    assert mom._grow(100 * 1024, 10 * 1024, 0, 256 * 1024, 0.5) == 105 * 1024
    assert mom._grow(250 * 1024, 240 * 1024, 0, 256 * 1024, 0.5) == 256 * 1024   # max
    assert mom._grow(256 * 1024, 0, 0, 256 * 1024, 0.5) is None


def test_mom_shrink_rule():
    mom = make_policy(r_scenario(), "mom")
    kib = 1024
    # pressure (host 10 % free): floor = used + 0.2 * 0.10 / 0.20 * cur = 50 + 10 MiB
    assert mom._shrink(100 * kib, 50 * kib, 0, 256 * kib, 0.10) == 95 * kib       # -5 %
    assert mom._shrink(100 * kib, 90 * kib, 0, 256 * kib, 0.10) is None           # floor 100
    assert mom._shrink(100 * kib, 88 * kib, 0, 256 * kib, 0.10) == 98 * kib       # floor 98
    # critical (host 2 % free): free percent -0.03 -> floor below used: "force guest to swap"
    assert mom._shrink(100 * kib, 99 * kib, 0, 256 * kib, 0.02) == 96 * kib
    # balloon_min (min_guarantee) wins; changes of <= 0.25 % are skipped
    assert mom._shrink(100 * kib, 10 * kib, 97 * kib, 256 * kib, 0.10) == 97 * kib
    assert mom._shrink(100 * kib, 10 * kib, 99.8 * kib, 256 * kib, 0.10) is None


# --- xen-selfballoon ------------------------------------------------------------------------------
def test_xen_floor_and_step():
    mb = PAGES_PER_MIB
    assert selfballoon_floor(10 * mb, 0) == 10 * mb                    # < 16 MiB: no ballooning
    assert selfballoon_floor(32 * mb, 0) == 16 * mb + 8 * mb
    assert selfballoon_floor(256 * mb, 1000) == 1000 + 40 * mb + (256 * mb - 1000 - 40 * mb) // 8
    assert selfballoon_floor(4096 * mb, 0) == 99 * mb + (4096 - 99) * mb // 32  # ~224 MiB
    assert selfballoon_floor(4096 * mb, 500, min_usable_mb=300) == 500 + 300 * mb
    # down by 1/8 of the gap, up at once
    goal = 50_000 + 1_000 + 10 * mb
    step = (200_000 - goal) // 8
    assert selfballoon_target(200_000, 50_000, 1_000, 10, 262_144) == 200_000 - step
    assert selfballoon_target(30_000, 50_000, 1_000, 10, 262_144) == goal


def test_xen_selfballoon_golden_and_tracks_committed_plus_reserve():
    r, p = fake_run("xen-selfballoon", duration="60s")
    # goal = Committed_AS 200 MiB (+ the fake's jitter of < 16 pages) + totalreserve (the
    # fake's high watermark, 982 pages) + 25 MiB (10 % of 256 MiB) = 58597 pages; at 5 s:
    # 65536 - (65536 - 58597) // 8 = 64669 pages = 252.6 MiB
    assert targets_every(r, 5) == [256, 252, 249, 247, 244, 242, 241, 239, 238, 237, 236, 235,
                                   235]
    goal = p.state_frame().query("guest == 'vm-0'")["goal"].iloc[-1]
    assert goal == pytest.approx(200 * MIB + 982 * 4096 + 25 * MIB, abs=16 * 4096)
    # every 5 s the target moves by 1/8 of its distance to the goal (to the page)
    t = [v * MIB for v in targets_every(r, 5)[1:]]
    for a, b in zip(t, t[1:]):
        assert abs((a - b) - (a - goal) / 8) <= 2 * MIB


# --- hyperv ---------------------------------------------------------------------------------------
def test_hyperv_floor_matches_the_drivers_table():
    # hv_balloon.c: max MiB -> min MiB: 16->16, 32->24, 128->72, 512->168, 2048->360,
    # 8192->744, 32768->1512
    table = {16: 16, 32: 24, 128: 72, 512: 168, 2048: 360, 8192: 744, 32768: 1512}
    for size, floor in table.items():
        assert compute_balloon_floor(size * PAGES_PER_MIB) == floor * PAGES_PER_MIB


def test_hyperv_share_targets():
    assert share_targets([10, 20], [12, 24], [1, 1], 100) == [12, 24]
    # 6 pages of buffer wanted, 3 left: shared by priority x buffer
    assert share_targets([10, 20], [12, 24], [1, 1], 33) == [11, 22]
    assert share_targets([10, 20], [12, 24], [1, 0], 33) == [12, 20]


def test_hyperv_waits_45s_then_sizes_to_demand_plus_buffer():
    r, p = fake_run("hyperv", need="16MiB")
    changes = target_changes(r)
    assert changes[0][0] == 46                    # post_status is silent for 45 calls
    # Committed_AS 16 MiB (+ the fake's jitter of a few pages) + floor (40 + 256/4 = 104 MiB)
    # = 120 MiB demand; +20 % buffer = 144 MiB, less the jitter; the balloon takes whole
    # 2 MiB units of the 112 MiB gap, so 110 MiB: 146 MiB
    assert changes[0][2] == 146
    assert all((old - new) % 2 == 0 for _, old, new in changes)
    committed = p.state_frame().query("guest == 'vm-0'")["num_committed"].iloc[0]
    assert committed == pytest.approx(120 * MIB, abs=16 * 4096)   # nothing ballooned yet


def test_hyperv_golden_targets():
    # the floor follows totalram, which the balloon shrinks: at 47 s the 146 MiB guest's floor
    # is 40 + 146/4 = 76.5 MiB, so its demand 92.5 MiB and its target 111 (112 in 2 MiB
    # steps), and so on down to where target = 1.2 (16 + 8 + target / 2); at 60 s the guest
    # needs 64 MiB (pressure 145) and gets 1.2 x (64 + its floor)
    r, _ = fake_run("hyperv", need="16MiB")
    assert [c[2] for c in target_changes(r)[:3]] == [146, 112, 98]
    assert targets_every(r) == [256, 256, 256, 256, 256, 82, 76, 176, 176, 176, 176, 176, 176]


def test_hyperv_guest_refuses_below_its_floor():
    # 300 pages asked, 1000 available, floor 800: only 200, rounded down to 2 MiB: none
    assert balloon_up(300, 1000, 800) == 0
    assert balloon_up(2048, 5000, 1000) == 2048                  # room enough: all of it
    assert balloon_up(4096, 5000, 1000) == 3584                  # 4000, in 512-page units
    assert balloon_up(4096, 900, 1000) == 0                      # already below the floor


# --- crosvm --------------------------------------------------------------------------------------
def test_crosvm_delta_halves_the_difference():
    assert cdiv(-7, 2) == -3 and cdiv(7, -2) == -3 and cdiv(7, 2) == 3
    vm = BalanceAvailable(critical_host_available=50 * MIB, bias=0, critical_guest=100 * MIB)
    # guest 300 MiB available (200 above critical), host 150 (100 above): inflate by 50 MiB
    assert vm.delta(0, 200 * MIB, 100 * MIB, 1024 * MIB, 150 * MIB) == 50 * MIB
    # guest 50 MiB above, host 200 above: deflate by 75 MiB, but not below an empty balloon
    assert vm.delta(0, 100 * MIB, 50 * MIB, 1024 * MIB, 250 * MIB) == 0
    assert vm.delta(60 * MIB, 100 * MIB, 50 * MIB, 1024 * MIB, 250 * MIB) == -60 * MIB
    assert vm.delta(80 * MIB, 100 * MIB, 50 * MIB, 1024 * MIB, 250 * MIB) == -75 * MIB
    # capped: the guest may not go more than 10 MiB below its critical level (a host 500 MiB
    # below its own would otherwise take 300 MiB)
    short = BalanceAvailable(critical_host_available=500 * MIB, bias=0, critical_guest=100 * MIB)
    assert short.delta(0, 100 * MIB, 100 * MIB, 1024 * MIB, 0) == 110 * MIB
    # 1 MiB apart: a 512 KiB step is under 1 % of both margins, so nothing
    assert vm.delta(0, 100 * MIB, 101 * MIB, 1024 * MIB, 150 * MIB) == 0


def test_crosvm_learns_the_guest_critical_level():
    vm = BalanceAvailable(0, 0, critical_guest=400 * MIB)
    vm.delta(0, 100 * MIB, 100 * MIB, 256 * MIB, 10 * 1024 * MIB)     # one low reading
    assert vm.critical_guest == 400 * MIB
    vm.delta(0, 90 * MIB, 100 * MIB, 256 * MIB, 10 * 1024 * MIB)      # two in a row
    assert vm.critical_guest == 200 * MIB                             # the previous reading


def test_crosvm_available_from_resourced():
    hm = {"MemTotal": 1000, "MemFree": 300, "Used": 700, "SwapFree": 400}
    assert resourced_available(hm, reserved_free=100) == 200 + 400 // 4
    assert resourced_available(hm, reserved_free=500, ram_swap_weight=0) == 0


def test_crosvm_golden_and_balances_guest_against_host():
    # a 160 MiB host backing 2 x 64 MiB; the guests have 192 MiB free each
    r, p = fake_run("crosvm", {"critical_guest_available": "16MiB"}, need="64MiB",
                    duration="30s", host="160MiB")
    # 1 s: guest 192 - 16 = 176 MiB above critical, host (32 MiB free - 2.4 MiB reserve + 128 /
    # 4 of swappable) - 8.3 MiB critical = 53 above: inflate by half the difference, 61 MiB;
    # each second halves the gap, until it is under 1 % of either margin
    assert targets_every(r, 1)[:3] == [256, 194, 163]
    assert targets_every(r, 5) == [256, 137, 135, 135, 135, 135, 135]
    st = p.state_frame().query("guest == 'vm-0'")
    assert (st["critical_guest_available"] == 16 * MIB).all()
    # at rest the guest's and the host's memory above critical differ by < 2 x 1 %
    last = st.iloc[-1]
    assert abs(last["guest_above"] - last["host_above"]) <= 0.04 * last["host_above"]
    assert st["guest_above"].iloc[0] > 2 * st["host_above"].iloc[0]   # it started far apart


# --- esx ------------------------------------------------------------------------------------------
def test_esx_states_have_hysteresis():
    thr = (0.06, 0.04, 0.02, 0.01)
    assert next_state(0, 0.05, thr) == 0          # below high, above soft: stay high
    assert next_state(0, 0.039, thr) == 1         # below soft
    assert next_state(1, 0.05, thr) == 1          # back above soft is not enough
    assert next_state(1, 0.061, thr) == 0         # above high again
    assert next_state(0, 0.005, thr) == 3
    assert next_state(3, 0.025, thr) == 2


def test_esx_idle_tax():
    # tau = 0.75: an idle page costs 4 active ones
    assert adjusted_ratio(1000, 100, 100, 0.75) == pytest.approx(10)
    assert adjusted_ratio(1000, 100, 0, 0.75) == pytest.approx(2.5)
    assert adjusted_ratio(1000, 100, 0, 0.0) == pytest.approx(10)    # no tax: shares/pages
    # equal shares and pages, one VM 10 % active: revocation takes from the idle VM until its
    # rho = 10 / (4 P - 300) passes the busy one's 10 / 1000 (P < 325 pages): 3 quanta
    taken = revoke([1000, 1000], [1000, 100], [10, 10], 0.75, 256 * 4, [1000, 1000])
    assert taken == [256, 768]
    # without the tax it alternates between equal ratios
    assert revoke([1000, 1000], [1000, 100], [10, 10], 0.0, 256 * 4, [1000, 1000]) == [512, 512]
    # and never takes beyond a VM's room
    assert revoke([1000, 1000], [1000, 100], [10, 10], 0.75, 256 * 4, [1000, 300]) == [768, 256]
    # giving back: whole quanta, to the VM paying most per page — the active one (rho 0.1 vs
    # 0.027), whose new pages are idle and taxed (356 pages, 100 active: rho 0.009), then the
    # other
    assert refund([100, 100], [100, 10], [10, 10], 0.75, 600, [512, 512]) == [256, 256]
    assert refund([100, 100], [100, 10], [10, 10], 0.75, 255, [512, 512]) == [0, 0]
    assert refund([100, 100], [100, 10], [10, 10], 0.75, 600, [0, 512]) == [0, 512]


ESX_PAIR = textwrap.dedent("""\
    [run]
    duration = "120s"
    tick = "100ms"
    [host]
    memory = "400MiB"
    [[guest]]
    name = "busy"
    memory = "256MiB"
    workload = { kind = "phases", phases = [ { length = "200MiB", duration = "120s" } ] }
    [[guest]]
    name = "idle"
    memory = "256MiB"
    workload = { kind = "phases", phases = [ { length = "200MiB", duration = "1s" },
                                             { length = "8MiB", duration = "119s" } ] }
    """)


def test_esx_takes_more_from_an_idle_guest_than_a_busy_one():
    # both hold 200 MiB of a full host and have equal shares; one keeps using it, the other
    # touched it once and now uses 8 MiB
    s = load_scenario(ESX_PAIR)
    r = simulate(s, "esx", progress=False, machine_factory=FakeMachine)
    # until the first 30 s sampling period ends both count as active and lose alike; the idle
    # guest's first period still saw its first second at 200 MiB (f = 0.72), its second one
    # 8 MiB (0.03), which the slow average lets in an eighth at a time
    assert targets_every(r, 15, "busy") == [256, 232, 222, 213, 213, 213, 213, 213, 213]
    assert targets_every(r, 15, "idle") == [256, 232, 218, 203, 179, 175, 175, 175, 175]
    summ = r.guest_summary().set_index("guest")
    assert summ.loc["idle", "final_actual_mib"] < summ.loc["busy", "final_actual_mib"] - 30


# --- virtualbox -----------------------------------------------------------------------------------
def test_virtualbox_balloon_get_delta():
    # inflate 256 when the guest has room, up to the requested size
    assert balloon_get_delta(1000, 0, 512, 2000) == 256
    assert balloon_get_delta(1000, 400, 512, 2000) == 112
    # halving: 200 MiB free, signed arithmetic: 256 -> 128 -> 64 (200 - 64 > 128)
    assert balloon_get_delta(200, 0, 512, 2000, uint32_wrap=False) == 64
    # as written (uint32): 200 - 256 wraps, so the full 256 is taken
    assert balloon_get_delta(200, 0, 512, 2000) == 256
    # low on free memory: deflate by 128, but only if the balloon is that big
    assert balloon_get_delta(100, 300, 512, 2000) == -128
    assert balloon_get_delta(100, 100, 512, 2000) == 0
    # the host's safety margin (1024 MiB) limits or stops deflation
    assert balloon_get_delta(100, 300, 512, 1100) == -76
    assert balloon_get_delta(100, 300, 512, 1000) == 0


def test_virtualbox_golden_inflates_every_30s_and_deflates_when_low():
    r, p = fake_run("virtualbox", {"requested": "200MiB", "safety_margin": "0"}, need="16MiB",
                    duration="150s")
    # 30 s: 239 MiB free; 239 - 256 wraps as uint32, so the whole increment, cut to the
    # requested 200 MiB: 56 MiB left. 60 s: 39 MiB free < 128: deflate 128. From 60 s the
    # guest uses 64 MiB: 119 MiB free < 128 again, but the 72 MiB balloon is smaller than
    # the decrement, so it stays.
    assert targets_every(r, 30) == [256, 56, 184, 184, 184, 184]
    assert list(p.state_frame().query("guest == 'vm-0'")["delta_mib"]) == [200, -128, 0, 0]


# --- presets --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["libvirt-autodeflate", "firecracker", "free-page-reporting"])
def test_presets_golden_targets_are_static(name):
    r, p = fake_run(name, {"targets": {"vm-1": "128MiB"}}, duration="5s")
    assert targets_every(r, 1, "vm-0") == [256] * 6 and targets_every(r, 1, "vm-1") == [128] * 6
    assert p.automatic is False


def test_presets_refuse_guests_without_their_features():
    s = load_scenario(FAKE.replace("DURATION", "1s").replace("NEED", "8MiB"))
    for name, feature in (("libvirt-autodeflate", "deflate_on_oom"),
                          ("firecracker", "deflate_on_oom"),
                          ("free-page-reporting", "free_page_reporting")):
        with pytest.raises(SpecError, match=rf"host\.policy: policy '{name}' needs the guest "
                                            rf"feature\(s\) {feature}.*guest 'vm-0'"):
            make_policy(s, name)
        fitted, note = fit_guest_features(s, policy_class(name))
        assert all(feature in g.features for g in fitted.guests)
        assert feature in note
        make_policy(fitted, name)                   # accepted once fitted


def test_fit_guest_features_turns_off_the_rfc_shrinker():
    s = load_scenario(FAKE.replace("DURATION", "1s").replace("NEED", "8MiB").replace(
        'features = ["stats_vq"]', 'features = ["stats_vq", "auto_balloon"]'))
    fitted, note = fit_guest_features(s, policy_class("mom"))
    assert all(g.features == {"stats_vq"} for g in fitted.guests)
    assert note == "guest features as deployed: auto_balloon off"
    assert fit_guest_features(fitted, policy_class("mom")) == (fitted, "")


def test_compare_plans_presets_on_guests_without_their_features():
    """Each policy runs on its deployed guest features (plan), so its parameters are checked
    on those too: the presets are accepted beside guests that lack them."""
    from autoballoon.results.compare import plan, policy_entries
    s = load_scenario(FAKE.replace("DURATION", "1s").replace("NEED", "8MiB").replace(
        'features = ["stats_vq"]', 'features = ["stats_vq", "auto_balloon"]'))
    entries = policy_entries(s, ["none", "libvirt-autodeflate", "free-page-reporting"])
    assert [e.label for e in entries] == ["none", "libvirt-autodeflate", "free-page-reporting"]
    variant, _, note = plan(s, entries[1])
    assert all(g.features == {"stats_vq", "deflate_on_oom"} for g in variant.guests)
    assert "deflate_on_oom on" in note


def test_firecracker_amount_is_a_balloon_size():
    s, _ = fit_guest_features(load_scenario(FAKE.replace("DURATION", "1s").replace(
        "NEED", "8MiB")), policy_class("firecracker"))
    p = make_policy(s, "firecracker", {"amount": {"vm-1": "56MiB"}})
    assert p.targets == {1: 200 * MIB}
    with pytest.raises(SpecError, match="either targets or amount"):
        make_policy(s, "firecracker", {"amount": "1MiB", "targets": "100MiB"})
    with pytest.raises(SpecError, match=r"amount \(vm-0\): expected a balloon smaller"):
        make_policy(s, "firecracker", {"amount": "256MiB"})


@pytest.mark.parametrize("name, params, message", [
    ("mom", {"pressure_threshold": 2}, r"pressure_threshold: expected a number in \[0, 1\]"),
    ("proxmox", {"shares": {"db": 10}}, r"shares\.db: expected the name of a guest"),
    ("proxmox", {"period": "0s"}, r"period: expected a duration > 0"),
    ("esx", {"thresholds": [0.01, 0.02, 0.04, 0.06]}, r"thresholds: expected four decreasing"),
    ("virtualbox", {"uint32_wrap": "yes"}, r"uint32_wrap: expected true or false"),
    ("hyperv", {"buffer": 1}, r"buffer: expected an integer in \[5, 2000\]"),
])
def test_zoo_bad_params(name, params, message):
    s, _ = fit_guest_features(load_scenario(FAKE.replace("DURATION", "1s").replace(
        "NEED", "8MiB")), policy_class(name))
    with pytest.raises(SpecError, match=r"host\.policy_params\." + message):
        make_policy(s, name, params)


# --- what the policies read -----------------------------------------------------------------------
def test_agent_and_host_usage_are_read_once_per_tick_and_expire():
    class Reader:
        def __init__(self, scenario):
            self.views, self.scenario = [], scenario

        def observe(self, view):
            if not self.views:
                assert view.agent[0]["Committed_AS"] == 0 and view.host_usage[1]["VmRSS"] == 0
            self.views.append(view)

    s = load_scenario(FAKE.replace("DURATION", "300ms").replace("NEED", "8MiB"))
    p = Reader(s)
    simulate(s, p, progress=False, machine_factory=FakeMachine)
    first, last = p.views[0], p.views[-1]
    assert first.agent[0]["Committed_AS"] == 0              # kept: read in its tick
    with pytest.raises(RuntimeError, match=r"HostView\.agent\[1\] was not read in its own tick"):
        first.agent[1]
    assert last.agent[1]["Committed_AS"] >= 8 * MIB          # the current tick reads live
    assert set(last.host_zoneinfo) == {"min", "low", "high"}


def test_test_and_clear_young_on_the_fake():
    s = load_scenario(FAKE.replace("DURATION", "1s").replace("NEED", "8MiB"))
    m = FakeMachine(s)
    m.advance(100_000_000)
    frames = np.array([0, 10, 8 * PAGES_PER_MIB + 100])
    assert list(m.test_and_clear_young(0, frames)) == [True, True, False]
    assert list(m.test_and_clear_young(0, frames)) == [False, False, False]


# --- the machine's new read-backs, on the real model ----------------------------------------------
def test_host_usage_adds_up_to_the_hosts_own_figures():
    from machines import MiB, guest, phases, run, scenario
    w = phases(dict(length=48 * MiB, pattern="seq", passes=4))
    guests = [guest(name=f"vm{i}", memory=64 * MiB, workload=w) for i in range(2)]
    m = run(scenario(*guests, host_memory=64 * MiB, host_swap=128 * MiB, duration=2 * S))
    usage = [m.host_usage(g) for g in range(2)]
    hm = m.host_meminfo()
    assert sum(u["VmRSS"] for u in usage) == hm["Used"]
    assert sum(u["VmSwap"] for u in usage) == hm["SwapTotal"] - hm["SwapFree"] > 0


def test_committed_as_counts_each_anonymous_page_once():
    from machines import MiB, guest, phases, run, scenario
    # 24 MiB of anon writes and 8 MiB of file reads in a 16 MiB guest with swap: the anon
    # pages end up partly in swap, some in the swap cache as well; each counts once
    w = phases(dict(length=24 * MiB, pattern="seq", passes=2),
               dict(offset=24 * MiB, length=8 * MiB, pattern="read", passes=1))
    m = run(scenario(guest(memory=16 * MiB, swap=64 * MiB, workload=w), duration=2 * S))
    assert m.meminfo(0)["SwapTotal"] > m.meminfo(0)["SwapFree"]        # it did swap
    assert m.committed_as(0) == 24 * MiB
    zone = m.zoneinfo(0)
    assert 0 < zone["min"] < zone["low"] < zone["high"] < 16 * MiB
    assert m.host_zoneinfo()["high"] > m.host_zoneinfo()["min"] > 0


def test_test_and_clear_young_is_the_ept_accessed_bit():
    from machines import MiB, guest, phases, run, scenario

    from autoballoon.machine import layout
    from autoballoon.machine.mm.constants import F_HYOUNG
    m = run(scenario(guest(memory=16 * MiB, workload=phases(dict(length=4 * MiB, passes=2))),
                     duration=200_000_000))
    base = int(m.m.P[0, layout.P_FRAME_BASE])
    frames = np.arange(0, 4096, 3)
    before = m.m.fref[base + frames].copy()
    young = m.test_and_clear_young(0, frames)
    assert list(young) == list((before & F_HYOUNG) != 0) and young.sum() > 100
    after = m.m.fref[base + frames]
    assert list(after) == list(before & ~np.uint8(F_HYOUNG))    # only that bit, only there
    assert not m.test_and_clear_young(0, frames).any()


def test_the_costly_figures_are_read_only_when_a_policy_asks():
    calls = []

    class Counting(FakeMachine):
        def committed_as(self, g):
            calls.append(("committed_as", self.now_ns, g))
            return super().committed_as(g)

        def host_usage(self, g):
            calls.append(("host_usage", self.now_ns, g))
            return super().host_usage(g)

    s = load_scenario(FAKE.replace("DURATION", "2s").replace("NEED", "8MiB"))
    simulate(s, "qemu-auto", progress=False, machine_factory=Counting)
    assert calls == []
    # xen-selfballoon reads each guest's agent once per 5 s interval
    s = load_scenario(FAKE.replace("DURATION", "11s").replace("NEED", "8MiB"))
    simulate(s, "xen-selfballoon", progress=False, machine_factory=Counting)
    assert calls == [("committed_as", t * S, g) for t in (5, 10) for g in (0, 1)]
