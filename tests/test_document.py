"""A resolved scenario written back as TOML parses to the same scenario; dotted overrides are
checked by the parser and their errors name the override."""
from __future__ import annotations

import dataclasses
import shutil
import tomllib

import pytest
from machines import guest, phases, scenario
from test_loop import TEXT as LOOP_TEXT
from test_policies import SCENARIO as POLICIES_TEXT
from test_results import TEXT as RESULTS_TEXT
from test_scenario import GOOD
from test_sweep import TINY

from autoballoon.errors import SpecError
from autoballoon.scenario.document import (
    apply_overrides, dumps, parse_assignment, parse_document, resolve, to_document)
from autoballoon.scenario.bundled import bundled_path
from autoballoon.scenario.parse import default_scenario_path, load_scenario, package_data_dirs
from autoballoon.scenario.spec import PhaseSpec, ScheduleEntry

MIB = 2**20


def plain(obj):
    """A spec as nested dicts, without where it came from (``where``, ``source``, ``raw``,
    ``text``)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.name not in ("where", "source", "raw", "text")}
    if isinstance(obj, (tuple, list)):
        return [plain(x) for x in obj]
    return obj


def trace_scenario(tmp_path):
    trace = next(d / "traces" / "sqlite.parquet" for d in package_data_dirs()
                 if (d / "traces" / "sqlite.parquet").is_file())
    shutil.copy(trace, tmp_path / "t.parquet")
    (tmp_path / "s.toml").write_text(
        '[run]\nduration = "1s"\n[host]\nmemory = "64MiB"\n[[guest]]\nname = "t"\n'
        'memory = "32MiB"\nworkload = { kind = "trace", path = "t.parquet", speed = 2.5 }\n')
    return load_scenario(tmp_path / "s.toml")


TEXTS = {"default": default_scenario_path().read_text(), "good": GOOD, "tiny": TINY,
         "loop": LOOP_TEXT.replace("DURATION", "2s"), "results": RESULTS_TEXT,
         "policies": POLICIES_TEXT, "rfc-v2": bundled_path("rfc-v2").read_text()}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_round_trip_of_parsed_scenarios(name):
    s = load_scenario(TEXTS[name])
    doc = to_document(s)
    back = parse_document(doc)
    assert plain(back) == plain(s)
    assert to_document(back) == doc
    assert tomllib.loads(dumps(doc)) == doc                    # the text says what the dict says
    # every default is written out: the guests' tables hold every setting
    for table in doc["guest"]:
        assert {"swappiness", "kernel", "features", "swap", "fault"} <= set(table)


def test_round_trip_of_a_scenario_built_in_code(tmp_path):
    s = scenario(guest("a", workload=phases(dict(length=4 * MIB, passes=1, pattern="zipf",
                                                 alpha=1.2))),
                 guest("b", target=12 * MIB), seed=9, policy="static")
    assert plain(parse_document(to_document(s))) == plain(s)
    t = trace_scenario(tmp_path)
    doc = to_document(t)
    assert doc["guest"][0]["workload"]["path"] == str(tmp_path / "t.parquet")   # absolute
    assert plain(parse_document(doc)) == plain(t)


def test_replicas_changed_in_code_become_one_table_each():
    s = load_scenario(GOOD)
    guests = list(s.guests)
    guests[1] = dataclasses.replace(guests[1], target=700 * MIB)
    changed = dataclasses.replace(s, guests=tuple(guests))
    doc = to_document(changed)
    assert [t["name"] for t in doc["guest"]] == ["vm-0", "vm-1", "vm-2", "vm-3", "db"]
    assert "count" not in doc["guest"][0]
    # the schedule entry naming the group now names each guest, at the same time
    assert [(e["at"], e["guest"]) for e in doc["schedule"]] == [
        ("30s", "vm-0"), ("30s", "vm-1"), ("30s", "vm-2"), ("30s", "vm-3"), ("50s", "db")]
    back = parse_document(doc)
    assert [g.target for g in back.guests] == [g.target for g in changed.guests]
    assert [plain(dataclasses.replace(g, group=None)) for g in back.guests] == \
        [plain(dataclasses.replace(g, group=None)) for g in changed.guests]
    assert plain(back.schedule) == [plain(ScheduleEntry(at_ns=30 * 10**9, guest=n,
                                                        target=512 * MIB))
                                    for n in ("vm-0", "vm-1", "vm-2", "vm-3")] + \
        [plain(changed.schedule[1])]


def test_staggered_replicas_stay_one_table_and_take_overrides():
    s = load_scenario(bundled_path("rfc-v2"))
    doc = to_document(s)
    assert len(doc["guest"]) == 1 and doc["guest"][0]["count"] == 35
    assert doc["guest"][0]["stagger"] == "1s"
    back = resolve(doc, {"guest.vm.kernel": "3.7", "guest.vm.count": 3})
    assert [(g.name, g.kernel, g.workload.start_ns) for g in back.guests] == [
        (f"vm-{k}", "3.7", k * 10**9) for k in range(3)]
    # replicas whose starts are not evenly spaced any more are one table each
    guests = list(s.guests[:3])
    guests[2] = dataclasses.replace(guests[2], workload=dataclasses.replace(
        guests[2].workload, start_ns=7 * 10**9))
    doc = to_document(dataclasses.replace(s, guests=tuple(guests)))
    assert [t["name"] for t in doc["guest"]] == ["vm-0", "vm-1", "vm-2"]
    assert [t["workload"]["start"] for t in doc["guest"]] == ["0ns", "1s", "7s"]


def test_overrides_reach_every_replica_and_nested_keys():
    doc = to_document(load_scenario(GOOD))
    s = resolve(doc, {"guest.vm.swappiness": 0, "host.policy_params.inflate": "64MiB",
                      "guest.db.workload.phases[1].length": "20MiB", "host.swap.size": "1GiB",
                      "guest.vm.swap.read_latency": "1ms", "run.duration": "60s",
                      "schedule[1].target": "128MiB"})
    assert [g.swappiness for g in s.guests] == [0, 0, 0, 0, 60]
    assert s.host.policy_params == {"inflate": "64MiB"} and s.host.swap.size == 2**30
    assert s.guests[4].workload.phases[1] == PhaseSpec(
        offset=100 * MIB, length=20 * MIB, duration_ns=10 * 10**9, pattern="read",
        where="guest[1].workload.phases[1]")
    assert {g.swap.read_latency_ns for g in s.guests[:4]} == {10**6}
    assert s.run.duration_ns == 60 * 10**9 and s.schedule[1].target == 128 * MIB
    assert doc == to_document(load_scenario(GOOD))            # the base is not changed
    # a swap written as a size becomes a table when one of its keys is set
    raw = tomllib.loads(GOOD)
    assert apply_overrides(raw, {"host.swap.size": "8GiB"})["host"]["swap"] == {"size": "8GiB"}


@pytest.mark.parametrize("overrides, message", [
    ({"guest.vm.swappiness": 300},
     r"^guest\.vm\.swappiness = 300: guest\[0\]\.swappiness: expected an integer in \[0, 200\]"),
    ({"host.memroy": "1GiB"}, r"host\.memroy = '1GiB': .*unknown key \(did you mean 'memory'"),
    ({"guest.vx.memory": "1GiB"}, r"override 'guest\.vx\.memory': no \[\[guest\]\] named 'vx' "
                                  r"\(guests: vm, db\)"),
    ({"guest.vm-1.memory": "1GiB"}, r"'vm-1' is a replica of the group 'vm'"),
    ({"guest.db.workload.phases[7].length": "1MiB"}, r"no element \[7\] \(the list has 2\)"),
    ({"run.duration": "10s"}, r"run\.duration = '10s': schedule\[0\]\.at: expected a time "
                              r"within run\.duration"),
    ({"host..memory": 1}, r"override 'host\.\.memory': expected a dotted key"),
])
def test_bad_overrides_name_the_override(overrides, message):
    doc = to_document(load_scenario(GOOD))
    with pytest.raises(SpecError, match=message):
        resolve(doc, overrides)


def test_an_error_only_the_combination_makes_names_all_of_it():
    doc = to_document(load_scenario(GOOD))
    with pytest.raises(SpecError, match=r"^guest\.db\.memory = '384MiB', guest\.db\.slab = "
                                        r"'400MiB': guest\[1\]\.slab"):
        resolve(doc, {"guest.db.memory": "384MiB", "guest.db.slab": "400MiB"})


def test_set_values_from_the_command_line():
    assert parse_assignment("host.memory=512MiB") == ("host.memory", "512MiB")
    assert parse_assignment("guest.vm.swappiness = 0") == ("guest.vm.swappiness", 0)
    assert parse_assignment('guest.vm.features=["stats_vq"]') == ("guest.vm.features",
                                                                 ["stats_vq"])
    assert parse_assignment("guest.vm.workload.loop=true")[1] is True
    with pytest.raises(SpecError, match=r"--set 'memory': expected KEY=VALUE"):
        parse_assignment("memory")
