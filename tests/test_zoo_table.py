"""The policy zoo's table and Pareto points (results/zoo.py), from hand-made sweep frames."""
import pandas as pd
import pytest

from autoballoon.results.zoo import metric_names, pareto_points, wide, zoo_runs, zoo_table

MIB = 2**20


def _frame(policies: dict[str, dict], seeds=(1, 2)) -> pd.DataFrame:
    """A sweep frame: two guests and the host per run; ``policies`` {label: dict(baseline_of,
    progress per guest, balloon per guest, host swap-ins, stall_fault_ns per guest)}."""
    rows = []
    for seed in seeds:
        for label, p in policies.items():
            front = dict(point="p0", seed=seed, policy=label, baseline_of=p.get("of"),
                         run_id=f"{label}-{seed}")
            for g in ("a", "b"):
                rows.append({**front, "guest": g, "mean_balloon_mib": p["balloon"],
                             "pswpin": 1, "pswpout": 2, "stall_seconds": 0.5,
                             "stall_fault_ns": 2 * 10**8, "stall_host_ns": 3 * 10**8,
                             "progress": p["progress"] * seed, "balloon_reversals": 1,
                             "balloon_inflate": 256, "balloon_deflate": 0,
                             "mean_used_mib": 100.0})
            rows.append({**front, "guest": "host", "mean_balloon_mib": None,
                         "pswpin": p["host_in"] + seed, "pswpout": 0, "stall_seconds": None,
                         "stall_fault_ns": None, "stall_host_ns": None, "progress": None,
                         "balloon_reversals": None, "balloon_inflate": None,
                         "balloon_deflate": None, "mean_used_mib": 500.0})
    return pd.DataFrame(rows)


POLICIES = {"none": dict(balloon=0.0, progress=1000, host_in=100),      # (a sweep's order)
            "static": dict(balloon=40.0, progress=950, host_in=20, of="qemu-auto"),
            "qemu-auto": dict(balloon=40.0, progress=900, host_in=10),
            "free-page-reporting": dict(balloon=0.0, progress=1100, host_in=50)}


@pytest.fixture
def runs():
    return zoo_runs({"s1": _frame(POLICIES), "s2": _frame(POLICIES, seeds=(1, 2, 3))})


def test_runs_sum_guests_take_the_host_row_and_measure_work_against_none(runs):
    assert len(runs) == 4 * 2 + 4 * 3
    r = runs[(runs["scenario"] == "s1") & (runs["policy"] == "qemu-auto") & (runs["seed"] == 2)]
    r = r.iloc[0]
    assert r["balloon_mib"] == 80.0 and r["progress"] == 2 * 900 * 2
    assert r["host_pswpin"] == 12 and r["guest_pswpin"] == 2 and r["host_used_mib"] == 500.0
    assert r["stall_fault_s"] == pytest.approx(0.4) and r["stall_host_s"] == pytest.approx(0.6)
    assert r["balloon_moved_mib"] == 2.0                     # 2 x 256 pages
    lost = runs.set_index(["scenario", "seed", "policy"])["work_lost_pct"]
    assert lost[("s1", 2, "qemu-auto")] == pytest.approx(10.0)
    assert lost[("s1", 1, "free-page-reporting")] == pytest.approx(-10.0)
    assert lost[("s2", 3, "none")] == 0.0


def test_table_means_over_seeds_in_run_order_with_stall_causes_after_the_total(runs):
    names = metric_names(runs)
    assert names.index("stall_fault_s") == names.index("stall_s") + 1
    table = zoo_table(runs, n_boot=200)
    host_in = table[(table["metric"] == "host_pswpin") & (table["scenario"] == "s2")]
    # the runs' order, each baseline after its automatic policy
    assert list(host_in["policy"]) == ["none", "qemu-auto", "static", "free-page-reporting"]
    row = host_in.set_index("policy").loc["static"]
    assert row["n"] == 3 and row["mean"] == 22.0                 # 21, 22, 23
    assert 21.0 <= row["ci_low"] < 22.0 < row["ci_high"] <= 23.0
    cells = wide(table)
    low, high = row["ci_low"], row["ci_high"]
    assert cells.loc[("s2", "static"), "host_pswpin"] == f"22.0 [{low:.1f}, {high:.1f}]"
    assert cells.loc[("s1", "none"), "work_lost_pct"].startswith("0.0 [0.0, 0.0]")
    assert list(cells.columns) == names


def test_pareto_points_pair_each_automatic_policy_with_its_baseline(runs):
    pts = pareto_points(zoo_table(runs, n_boot=200)).set_index(["scenario", "policy"])
    assert pts.loc[("s1", "qemu-auto"), "kind"] == "automatic"
    assert pts.loc[("s1", "static"), "kind"] == "baseline"
    assert pts.loc[("s1", "static"), "baseline_of"] == "qemu-auto"
    assert pts.loc[("s1", "none"), "kind"] == pts.loc[("s1", "free-page-reporting"),
                                                      "kind"] == "other"
    # equal inflate: the same x; the harm differs
    assert pts.loc[("s1", "static"), "x"] == pts.loc[("s1", "qemu-auto"), "x"] == 80.0
    assert pts.loc[("s1", "qemu-auto"), "y"] == pytest.approx(10.0)
    assert pts.loc[("s1", "static"), "y"] == pytest.approx(5.0)


def test_the_zoo_needs_the_no_balloon_run():
    with pytest.raises(ValueError, match="'none' policy"):
        zoo_runs({"s": _frame({k: v for k, v in POLICIES.items() if k != "none"})})


def _varied(seeds):
    """POLICIES with qemu-auto's progress 1 % more per seed: its work lost varies over seeds
    (9.1, 8.2, 7.3 %), its baseline's does not (5 %)."""
    df = _frame(POLICIES, seeds=seeds)
    auto = (df["policy"] == "qemu-auto") & (df["guest"] != "host")
    df.loc[auto, "progress"] = df.loc[auto, "progress"] * (1 + 0.01 * df.loc[auto, "seed"])
    return df


def test_verdicts_and_findings_read_the_points():
    from autoballoon.results.zoo import describe_zoo, verdicts
    runs = zoo_runs({"s1": _varied((1, 2)), "s2": _varied((1, 2, 3))})
    pts = pareto_points(zoo_table(runs, n_boot=200))
    v = verdicts(pts)
    assert list(v["policy"]) == ["qemu-auto", "qemu-auto"]
    assert set(v["verdict"]) == {"more harm"}            # 7-9 % lost vs 5 % in every seed
    text = describe_zoo(pts)
    assert "**`s1`**: the balloons reclaimed most under `qemu-auto` (80 MiB" in text
    assert "`static` harmed least (5.0 % at 80 MiB)" in text
    assert "more harm: `qemu-auto`" in text


def test_baselines_that_share_a_run_are_each_one_row():
    # two automatic policies that inflate nothing have the same equal-inflate baseline: one
    # run id for static@a and static@b (the sweep runs it once and stores it for each label)
    pols = {"none": dict(balloon=0.0, progress=1000, host_in=100),
            "static@a": dict(balloon=0.0, progress=1000, host_in=100, of="a"),
            "static@b": dict(balloon=0.0, progress=1000, host_in=100, of="b"),
            "a": dict(balloon=0.0, progress=1000, host_in=100),
            "b": dict(balloon=0.0, progress=1000, host_in=100)}
    df = _frame(pols)
    shared = df["policy"].isin(["static@a", "static@b"])
    df.loc[shared, "run_id"] = "same-" + df.loc[shared, "seed"].astype(str)
    runs = zoo_runs({"s": df})
    assert len(runs) == 5 * 2
    assert runs.groupby(["seed", "policy"]).size().eq(1).all()
    assert (runs["host_pswpin"] == 100 + runs["seed"]).all()


def test_findings_name_the_automatic_policies_that_never_inflated():
    from autoballoon.results.zoo import describe_zoo
    pols = {**POLICIES, "static@mom": dict(balloon=0.0, progress=1000, host_in=100, of="mom"),
            "mom": dict(balloon=0.0, progress=1000, host_in=100)}
    pts = pareto_points(zoo_table(zoo_runs({"s": _frame(pols)}), n_boot=200))
    text = describe_zoo(pts)
    assert "no balloon at all under `mom` (nor under their equal-inflate statics)" in text
    assert "`qemu-auto`, " not in text.split("no balloon at all under")[1].split(".")[0]


def test_zoo_policies_and_their_timers():
    from autoballoon import load_scenario
    from autoballoon.control.policies import POLICIES as REGISTRY
    from autoballoon.results.zoo import policy_timers, zoo_policies
    from autoballoon.scenario.bundled import scenario_path
    names = zoo_policies(REGISTRY)
    assert names[:3] == ["none", "static", "qemu-auto"] and len(set(names)) == len(names)
    assert "firecracker" not in names and "libvirt-autodeflate" not in names
    assert {"mom", "proxmox", "hyperv", "virtualbox", "free-page-reporting"} <= set(names)
    t = policy_timers(load_scenario(scenario_path("staggered")), ["hyperv", "virtualbox", "mom"])
    first = t.set_index(["policy", "timer"])["first_s"]
    assert first[("hyperv", "report")] == 46.0            # silent for 45 reports, 1 s apart
    assert first[("virtualbox", "clock")] == 30.0 and first[("mom", "engine")] == 10.0


def test_a_run_that_seeds_do_not_vary_gets_no_verdict():
    # a replayed trace: every seed gives the same run, so the intervals have no width and
    # would call a 0.5-point difference certain
    from autoballoon.results.zoo import verdicts
    flat = {k: dict(v, progress=v["progress"]) for k, v in POLICIES.items()}
    df = _frame(flat)
    df["progress"] = df["progress"] / df["seed"]             # the same progress every seed
    v = verdicts(pareto_points(zoo_table(zoo_runs({"s": df}), n_boot=200)))
    assert list(v["verdict"]) == ["seeds do not vary it"]
