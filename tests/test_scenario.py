import textwrap
from pathlib import Path

import pytest

from autoballoon import load_scenario  # parses, and checks the policy (control layer)
from autoballoon.scenario.parse import ScenarioError, default_scenario_path, locate, parse_scenario
from autoballoon.scenario.spec import SpecError

MIB, GIB = 2**20, 2**30

# The example of issue 3, with a schedule.
GOOD = textwrap.dedent("""\
    [run]          # duration, tick, seed
    duration = "70s"
    tick = "100ms"
    seed = 1
    [host]         # memory, swap, policy name and params
    memory = "4GiB"
    swap = "4GiB"
    policy = "qemu-auto"
    policy_params = { inflate = "16MiB" }
    [[guest]]
    name = "vm"
    count = 4
    memory = "1GiB"
    swap = "1GiB"
    features = ["stats_vq", "auto_balloon"]
    target = "768MiB"
    workload = { kind = "phases", phases = [ { length = "600MiB", duration = "40s", pattern = "seq" } ] }
    [[guest]]
    name = "db"
    memory = "512MiB"
    kernel = "3.7"
    swap = { size = "256MiB", read_latency = "1ms", bandwidth = "100MiB/s" }
    workload = { kind = "phases", phases = [
      { length = "100MiB", passes = 2, pattern = "rand" },
      { offset = "100MiB", length = "50MiB", duration = "10s", pattern = "read" },
    ] }
    [[schedule]]
    at = "30s"
    guest = "vm"
    target = "512MiB"
    [[schedule]]
    at = "50s"
    guest = "db"
    target = "256MiB"
    """)


def test_stagger_starts_replica_k_k_times_later():
    text = _replace('count = 4', 'count = 4\nstagger = "1.5s"').replace(
        'workload = { kind = "phases", phases = [ { length = "600MiB"',
        'workload = { kind = "phases", start = "2s", phases = [ { length = "600MiB"')
    s = load_scenario(text)
    assert [g.workload.start_ns for g in s.guests] == [2 * 10**9 + k * 15 * 10**8
                                                       for k in range(4)] + [0]
    assert [g.group for g in s.guests] == ["vm"] * 4 + [None]


def test_good_file_parses(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    s = load_scenario(path)
    assert s.run.duration_ns == 70 * 10**9 and s.run.tick_ns == 10**8 and s.run.seed == 1
    assert s.host.memory == 4 * GIB and s.host.swap.size == 4 * GIB
    assert s.host.policy == "qemu-auto" and s.host.policy_params == {"inflate": "16MiB"}
    assert [g.name for g in s.guests] == ["vm-0", "vm-1", "vm-2", "vm-3", "db"]
    assert [g.group for g in s.guests] == ["vm"] * 4 + [None]
    vm = s.guests[0]
    assert vm.memory == GIB and vm.target == 768 * MIB and vm.swap.size == GIB
    assert vm.features == frozenset({"stats_vq", "auto_balloon"}) and vm.kernel == "6.1"
    assert vm.workload.phases[0].length == 600 * MIB
    assert vm.workload.phases[0].duration_ns == 40 * 10**9
    db = s.guests[4]
    assert db.kernel == "3.7" and db.swap.read_latency_ns == 10**6
    assert db.swap.bandwidth == 100 * MIB and db.swap.size == 256 * MIB
    assert [p.pattern for p in db.workload.phases] == ["rand", "read"]
    assert db.workload.phases[1].offset == 100 * MIB and db.workload.phases[0].passes == 2
    assert [(e.at_ns, e.guest, e.target) for e in s.schedule] == [
        (30 * 10**9, "vm", 512 * MIB), (50 * 10**9, "db", 256 * MIB)]
    assert s.source == str(path) and s.raw["host"]["memory"] == "4GiB"


def test_text_and_path_give_the_same_scenario(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    a, b = load_scenario(path), load_scenario(GOOD)
    assert a.guests == b.guests and a.run == b.run and a.schedule == b.schedule


def test_default_scenario_is_bundled_and_valid():
    path = default_scenario_path()
    assert path.is_file()
    s = load_scenario(path)
    assert s.host.policy == "qemu-auto"
    assert len(s.guests) >= 2
    assert sum(g.memory for g in s.guests) > s.host.memory      # overcommitted, or no story
    assert s.run.duration_ns <= 60 * 10**9


def _replace(old, new, count=1):
    assert old in GOOD
    return GOOD.replace(old, new, count)


def line_of(text, needle):
    """1-based line of ``needle``; ``"last:..."`` takes the last occurrence."""
    last = needle.startswith("last:")
    hits = [i for i, l in enumerate(text.splitlines(), 1) if needle.removeprefix("last:") in l]
    return hits[-1] if last else hits[0]


# (change to GOOD, key named in the error, text on the line the error must point at)
BAD = [
    (('memory = "4GiB"', 'memroy = "4GiB"'), r"host\.memroy: unknown key \(did you mean 'memory'",
     'memroy = "4GiB"'),
    (('memory = "1GiB"', 'memory = "0"'), r"guest\[0\]\.memory: expected a size of at least",
     'memory = "0"'),
    (('memory = "1GiB"', 'memory = "-1GiB"'), r"guest\[0\]\.memory: expected a size",
     'memory = "-1GiB"'),
    (('memory = "512MiB"', 'memory = 512.5'), r"guest\[1\]\.memory: expected a size",
     "memory = 512.5"),
    (('kernel = "3.7"', 'kernel = "5.4"'), r"guest\[1\]\.kernel: expected one of 6\.1, 6\.12, 3\.7",
     'kernel = "5.4"'),
    (('kernel = "3.7"', 'kernel = 3.7'), r"guest\[1\]\.kernel: expected a string",
     "kernel = 3.7"),
    (('pattern = "seq"', 'pattern = "zigzag"'),
     r"guest\[0\]\.workload\.phases\[0\]\.pattern: expected one of seq", 'pattern = "zigzag"'),
    (('pattern = "read"', 'pattern = "write"'),
     r"guest\[1\]\.workload\.phases\[1\]\.pattern: expected one of", 'pattern = "write"'),
    (('duration = "70s"', 'duration = "70"'), r"run\.duration: expected a duration with a unit",
     'duration = "70"'),
    (('duration = "70s"', 'duration = "0s"'), r"run\.duration: expected a duration > 0",
     'duration = "0s"'),
    (('tick = "100ms"', 'tick = "100ms"\nspeed = 2'), r"run\.speed: unknown key", "speed = 2"),
    (('target = "768MiB"', 'target = "2GiB"'), r"guest\[0\]\.target: expected a size in",
     'target = "2GiB"'),
    (('count = 4', 'count = 0'), r"guest\[0\]\.count: expected an integer in \[1, 4096\]",
     "count = 0"),
    (('count = 4', 'count = 4\nstagger = "soon"'), r"guest\[0\]\.stagger: expected a duration",
     'stagger = "soon"'),
    (('kernel = "3.7"', 'kernel = "3.7"\nstagger = "1s"'),
     r"guest\[1\]\.stagger: expected a `count` of replicas", 'stagger = "1s"'),
    (('features = ["stats_vq", "auto_balloon"]', 'features = ["stats_vq", "autoballoon"]'),
     r"guest\[0\]\.features: expected features among", 'features = ["stats_vq", "autoballoon"]'),
    (('policy = "qemu-auto"', 'policy = "qemu-magic"'), r"host\.policy: expected one of",
     'policy = "qemu-magic"'),
    (('{ inflate = "16MiB" }', '{ inflate = "16MiB", deflate = "1MiB" }'),
     r"host\.policy_params\.deflate: unknown parameter for policy 'qemu-auto'",
     "policy_params ="),
    (('{ inflate = "16MiB" }', '{ inflate = "lots" }'), r"host\.policy_params\.inflate: expected",
     "policy_params ="),
    (('guest = "db"', 'guest = "dc"'), r"schedule\[1\]\.guest: expected a guest or group name",
     'guest = "dc"'),
    (('at = "50s"', 'at = "80s"'), r"schedule\[1\]\.at: expected a time within run\.duration",
     'at = "80s"'),
    (('target = "256MiB"', 'target = "1GiB"'), r"schedule\[1\]\.target: expected a size in",
     'target = "1GiB"'),
    (('{ offset = "100MiB", length = "50MiB", duration = "10s"',
      '{ offset = "100MiB", length = "50MiB", passes = 1, duration = "10s"'),
     r"guest\[1\]\.workload\.phases\[1\]: expected exactly one of 'duration' or 'passes'",
     "last:phases = ["),
    (('kind = "phases", phases = [ { length',
      'kind = "phases", path = "x.bin", phases = [ { length'),
     r"guest\[0\]\.workload\.path: unknown key", "path ="),
    (('kind = "phases", phases = [ { length', 'kind = "movie", phases = [ { length'),
     r"guest\[0\]\.workload\.kind: expected 'phases' or 'trace'", 'kind = "movie"'),
]


@pytest.mark.parametrize("change, message, line_text", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_names_key_and_line(tmp_path, change, message, line_text):
    text = _replace(*change)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(path)
    expected_line = line_of(text, line_text)
    assert err.value.line == expected_line, (str(err.value), expected_line)
    assert str(err.value).startswith(f"{path}:{expected_line}: ")
    assert isinstance(err.value, SpecError)          # the CLI catches SpecError


def test_missing_required_keys():
    with pytest.raises(ScenarioError, match=r"scenario\.guest: missing"):
        parse_scenario('[run]\nduration = "1s"\n[host]\nmemory = "1GiB"\n')
    with pytest.raises(ScenarioError, match=r"guest\[0\]\.workload: missing") as err:
        parse_scenario('[run]\nduration = "1s"\n[host]\nmemory = "1GiB"\n'
                       '[[guest]]\nname = "a"\nmemory = "64MiB"\n')
    assert err.value.line == 5                      # the [[guest]] header


def test_single_guest_table_is_refused():
    with pytest.raises(ScenarioError, match=r"write \[\[guest\]\]"):
        parse_scenario('[run]\nduration = "1s"\n[host]\nmemory = "1GiB"\n[guest]\nname = "a"\n')


def test_duplicate_names_after_expansion():
    text = GOOD.replace('name = "db"', 'name = "vm-1"').replace('guest = "db"', 'guest = "vm"')
    with pytest.raises(ScenarioError, match="unique guest names"):
        parse_scenario(text)


def test_toml_syntax_error_has_line():
    with pytest.raises(ScenarioError, match="not valid TOML") as err:
        parse_scenario(GOOD.replace('seed = 1', 'seed = = 1'))
    assert err.value.line == 4


def test_missing_file():
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(Path("/nonexistent/scenario.toml"))


TRACE = textwrap.dedent("""\
    [run]
    duration = "1s"
    [host]
    memory = "1GiB"
    [[guest]]
    name = "t"
    memory = "64MiB"
    workload = { kind = "trace", path = "PATH", speed = 2.0, loop = true }
    """)


def _write_access_trace(path):
    from autoballoon.trace import store
    from autoballoon.trace.format import AccessTrace
    store.save(AccessTrace([0, 10, 10], [0, 1, 2], [1, 1, 0]), path)


def _write_envelope(path):
    from autoballoon.trace import store
    from autoballoon.trace.format import Envelope
    store.save(Envelope(time_ns=[0, 10**9], wss_bytes=[4096, 8192], end_ns=2 * 10**9), path)


def test_trace_paths_resolve_against_the_scenario_directory(tmp_path):
    (tmp_path / "traces").mkdir()
    trace = tmp_path / "traces" / "a.parquet"
    _write_access_trace(trace)
    path = tmp_path / "s.toml"
    path.write_text(TRACE.replace("PATH", "traces/a.parquet"))
    w = load_scenario(path).guests[0].workload
    assert w.kind == "trace" and w.path == str(trace.resolve())
    assert w.speed == 2.0 and w.loop is True


def test_trace_paths_fall_back_to_package_data(tmp_path, monkeypatch):
    import autoballoon.scenario.parse as sc
    data = tmp_path / "pkgdata"
    data.mkdir()
    _write_access_trace(data / "b.parquet")
    monkeypatch.setattr(sc, "package_data_dirs", lambda: [data])
    path = tmp_path / "elsewhere" / "s.toml"
    path.parent.mkdir()
    path.write_text(TRACE.replace("PATH", "b.parquet"))
    assert load_scenario(path).guests[0].workload.path == str((data / "b.parquet").resolve())


def test_missing_trace_is_an_error_with_line(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TRACE.replace("PATH", "nope.npz"))
    with pytest.raises(ScenarioError, match=r"guest\[0\]\.workload\.path: expected an existing "
                                            r"trace file") as err:
        load_scenario(path)
    assert err.value.line == 8


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_bytes(b"x"), r"expected a page-access trace file: .*not a readable "
                                    r"Parquet trace file"),
    (_write_envelope, r"expected a page-access trace, not a demand envelope .*autoballoon trace expand"),
], ids=["not-parquet", "envelope"])
def test_trace_that_is_not_an_access_trace_is_an_error_with_line(tmp_path, write, message):
    write(tmp_path / "t.parquet")
    path = tmp_path / "s.toml"
    path.write_text(TRACE.replace("PATH", "t.parquet"))
    with pytest.raises(ScenarioError, match=r"guest\[0\]\.workload\.path: " + message) as err:
        load_scenario(path)
    assert err.value.line == 8
    assert "Traceback" not in str(err.value)


def test_workload_kind_must_be_a_string():
    text = TRACE.replace('kind = "trace", path = "PATH", speed = 2.0, loop = true',
                         'kind = ["phases"]')
    with pytest.raises(ScenarioError, match=r"guest\[0\]\.workload\.kind: expected a string "
                                            r"\(in quotes\), got \['phases'\]") as err:
        parse_scenario(text)
    assert err.value.line == 8


def test_locate_handles_sub_tables_and_dotted_keys():
    text = textwrap.dedent("""\
        run.duration = "1s"
        [[guest]]
        name = "a"
        [[guest]]
        name = "b"
        [guest.workload]
        kind = "phases"
        """)
    assert locate(text, "run.duration") == 1
    assert locate(text, "guest[1].name") == 5
    assert locate(text, "guest[1].workload.kind") == 7
    assert locate(text, "guest[0].name") == 3
    assert locate(text, "host.memory") is None
