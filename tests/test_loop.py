"""The control loop and the comparison, against the FakeMachine."""
import textwrap

import numpy as np
import pytest
from fakes import FakeMachine, RecordingPolicy, Spy
from pandas.testing import assert_frame_equal

from autoballoon.control.loop import PolicyError
from autoballoon.control.recorder import SUMMARY_FIRST as GUEST_COUNTERS
from autoballoon.control.view import STATS_TAGS, VMPRESSURE_MEDIUM
from autoballoon.results.compare import compare
from autoballoon.results.run import simulate
from autoballoon.scenario.parse import parse_scenario

MIB = 2**20
TICK = 100_000_000

TEXT = textwrap.dedent("""\
    [run]
    duration = "DURATION"
    tick = "100ms"
    seed = 7
    [host]
    memory = "400MiB"
    swap = "1GiB"
    policy = "qemu-auto"
    [[guest]]
    name = "a"
    count = 2
    memory = "256MiB"
    swap = "256MiB"
    features = ["stats_vq", "auto_balloon"]
    workload = { kind = "phases", phases = [ { length = "200MiB", duration = "1s" },
                                             { length = "40MiB", duration = "1s" } ] }
    [[guest]]
    name = "b"
    memory = "256MiB"
    swap = "256MiB"
    features = ["stats_vq", "auto_balloon"]
    workload = { kind = "phases", mapping = "200MiB", phases = [
      { length = "40MiB", duration = "1s" }, { length = "200MiB", duration = "1s" } ] }
    """)


def scenario(duration="2s", seed=None):
    text = TEXT.replace("DURATION", duration)
    if seed is not None:
        text = text.replace("seed = 7", f"seed = {seed}")
    return parse_scenario(text)


def test_ticks_rows_and_partial_last_tick():
    spy = Spy()
    r = simulate(scenario("250ms"), progress=False, machine_factory=spy)
    assert spy.machine.advance_calls == [TICK, 2 * TICK, 250_000_000]
    ts = r.timeseries
    assert list(ts["t_ns"].unique()) == [0, TICK, 2 * TICK, 250_000_000]
    assert len(ts) == 4 * 4                               # 3 guests + host per sample
    assert list(ts["guest"].iloc[:4]) == ["a-0", "a-1", "b", "host"]
    assert ts["time_s"].iloc[-1] == pytest.approx(0.25)


def test_view_matches_the_machine():
    s = scenario("300ms")
    spy = Spy(host_events={TICK: [VMPRESSURE_MEDIUM]})
    policy = RecordingPolicy(s)
    simulate(s, policy, progress=False, machine_factory=spy)
    views = policy.views
    assert [v.now_ns for v in views] == [0, TICK, 2 * TICK]          # none after the end
    v = views[1]
    assert v.names == ("a-0", "a-1", "b") and v.tick_ns == TICK
    assert v.ram_size == (256 * MIB,) * 3 and v.target == (256 * MIB,) * 3
    assert v.host_events == (VMPRESSURE_MEDIUM,) and views[2].host_events == ()
    assert set(v.stats[0]) == set(STATS_TAGS)
    assert v.meminfo[0]["AnonPages"] > 0 and "Used" in v.host_meminfo
    assert v.actual[0] == 256 * MIB - v.meminfo[0]["balloon_actual"]


def test_targets_from_policy_reach_the_machine_and_are_clamped():
    s = scenario("300ms")
    spy = Spy(host_events={})
    policy = RecordingPolicy(s, script={TICK: {0: 100 * MIB, 2: 10 * 2**30}})
    r = simulate(s, policy, progress=False, machine_factory=spy)
    # every command reaches the machine (QEMU notifies the guest even for an unchanged
    # target); the one above ram_size is clamped to ram_size, as QEMU does
    assert [(t, g, v // MIB) for t, g, v in spy.machine.set_target_calls] == [(TICK, 0, 100),
                                                                            (TICK, 2, 256)]
    ts = r.timeseries
    assert list(ts[ts["guest"] == "a-0"]["target"] // MIB) == [256, 100, 100, 100]


@pytest.mark.parametrize("bad", [0, -4096, 1.5e8, "100MiB", None])
def test_bad_target_from_policy_is_an_error(bad):
    s = scenario("300ms")
    policy = RecordingPolicy(s, script={TICK: {1: bad}})
    with pytest.raises(PolicyError, match=r"at t=0\.100s returned target .* for guest 1"):
        simulate(s, policy, progress=False, machine_factory=FakeMachine)


def test_counter_deltas_add_up_to_the_summary():
    r = simulate(scenario(), "qemu-auto", progress=False, machine_factory=FakeMachine)
    ts, summary = r.timeseries, r.summary.set_index("guest")
    assert list(summary.index) == ["a-0", "a-1", "b", "host"]
    for guest in ("a-0", "b"):
        rows = ts[ts["guest"] == guest]
        for k in GUEST_COUNTERS:
            assert rows[k].sum() == summary.loc[guest, k], (guest, k)
        assert rows["stall_ns"].sum() / 1e9 == pytest.approx(summary.loc[guest, "stall_seconds"])
        assert rows["progress"].sum() == summary.loc[guest, "progress"]
    host = ts[ts["guest"] == "host"]
    assert host["pswpout"].sum() == summary.loc["host", "pswpout"] > 0    # the fake host swaps
    assert (summary.loc[["a-0", "b"], "balloon_inflate"] > 0).all()       # qemu-auto inflated


def test_same_seed_same_results():
    runs = [simulate(scenario(seed=3), progress=False, machine_factory=FakeMachine)
            for _ in range(2)]
    assert_frame_equal(runs[0].timeseries, runs[1].timeseries)
    assert_frame_equal(runs[0].summary, runs[1].summary)


def test_no_progress_output_when_disabled(capsys):
    simulate(scenario("300ms"), progress=False, machine_factory=FakeMachine)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_policy_by_name_uses_scenario_params_only_for_its_own_policy():
    s = parse_scenario(TEXT.replace("DURATION", "1s").replace(
        'policy = "qemu-auto"', 'policy = "qemu-auto"\npolicy_params = { inflate = "32MiB" }'))
    r = simulate(s, "qemu-auto", progress=False, machine_factory=FakeMachine)
    assert r.manifest["policy"] == {"name": "qemu-auto", "ref": "qemu-auto",
                                    "params": {"inflate": "32MiB"}}
    r = simulate(s, "none", progress=False, machine_factory=FakeMachine)
    assert r.manifest["policy"] == {"name": "none", "ref": "none", "params": {}}


# --- compare ---------------------------------------------------------------------------------

def test_compare_equal_inflate_baseline():
    s = scenario()
    table, results = compare(s, ["none", "static", "qemu-auto"], progress=False,
                             machine_factory=FakeMachine)
    assert list(results) == ["none", "static", "qemu-auto"] == list(table.index)
    auto, static, none = results["qemu-auto"], results["static"], results["none"]
    # static holds each guest's balloon at its time-average under qemu-auto, from t = 0: each
    # sample of the qemu-auto run stands for the tick that ends at it
    targets = {}
    for name in ("a-0", "a-1", "b"):
        rows = auto.timeseries[auto.timeseries["guest"] == name]
        t, balloon = rows["t_ns"].to_numpy(), rows["balloon"].to_numpy(dtype=float)
        assert t[0] == 0 and t[-1] == 2 * 10**9 and balloon[1:].std() > 0   # the balloon moved
        mean = float((balloon[1:] * np.diff(t)).sum() / (t[-1] - t[0]))
        assert auto.summary.set_index("guest").loc[name, "mean_balloon_mib"] == \
            pytest.approx(mean / MIB)
        targets[name] = 256 * MIB - int(mean) // 4096 * 4096
    assert static.manifest["policy"]["params"] == {"targets": targets}
    assert any(t < 256 * MIB for t in targets.values())
    ts = static.timeseries
    for name, t in targets.items():
        assert set(ts[ts["guest"] == name]["target"]) == {t}
    # the baseline balloon stays put: no AUTO_BALLOON shrinker in the guests
    assert static.guest_summary()["balloon_shrinker_calls"].sum() == 0
    assert auto.guest_summary()["balloon_shrinker_calls"].sum() > 0
    # none: no balloon at all
    assert none.guest_summary()["balloon_inflate"].sum() == 0
    assert "equal-inflate" in table.loc["static", "note"]
    assert "no ballooning" in table.loc["none", "note"]
    assert "equal-inflate" in table.attrs["caption"]
    for col in ("guest_pswpin", "guest_pswpout", "guest_pgmajfault", "guest_oom_kill",
                "host_pswpin", "host_pswpout", "host_oom_kill", "stall_s", "progress",
                "mean_host_used_mib"):
        assert col in table.columns
    assert table.loc["qemu-auto", "guest_pswpin"] == auto.guest_summary()["pswpin"].sum()
    # in the fake, no ballooning makes the host swap more than qemu-auto does
    assert table.loc["none", "host_pswpout"] > table.loc["qemu-auto", "host_pswpout"]


def test_compare_without_automatic_policy_uses_scenario_targets():
    s = parse_scenario(TEXT.replace("DURATION", "500ms").replace(
        'count = 2', 'count = 2\ntarget = "200MiB"'))
    table, results = compare(s, ["static"], progress=False, machine_factory=FakeMachine)
    ts = results["static"].timeseries
    assert set(ts[ts["guest"] == "a-0"]["target"]) == {200 * MIB}
    assert table.loc["static", "note"] == "fixed targets from the scenario"


def test_compare_in_processes_gives_identical_results():
    s = scenario("1s")
    _, serial = compare(s, progress=False, machine_factory=FakeMachine)
    _, parallel = compare(s, progress=False, workers=2, machine_factory=FakeMachine)
    for name in serial:
        assert_frame_equal(serial[name].timeseries, parallel[name].timeseries)
        assert_frame_equal(serial[name].summary, parallel[name].summary)
