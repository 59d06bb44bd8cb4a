"""Bad input never crashes, hangs or prints a traceback (issue 14): each example of the issue, and
each failure `make fuzz` found, is a regression test here. The real numba machine runs where the
check is the machine's own (its boot checks refuse before anything is allocated)."""
from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest

from autoballoon import cli
from autoballoon.machine import Machine
from autoballoon.machine import machine as machine_mod
from autoballoon.machine import state as mmstate
from autoballoon.machine.layout import ALIVE_FINISHED, P_NVPAGES
from autoballoon.scenario.parse import ScenarioError, parse_scenario
from autoballoon.trace import AccessTrace, TraceError, load, save, synth
from autoballoon.trace.ops import OP_EXIT, OP_WRITE

MIB = 2**20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Tiny guests, as tests/machines.py makes them: no boot reservation, kernel memory or THP rule
# (the last keys of the guest table, so the lines of the keys above stay where they were).
BARE = 'reserved = 0\n        kernel_memory = 0\n        thp = "never"'


def scenario_text(workload=None, guest="", run="", host="", name="vm", memory="32MiB",
                  extra=""):
    workload = workload or '{ kind = "phases", phases = [ { length = "8MiB", passes = 2 } ] }'
    return textwrap.dedent(f"""\
        [run]
        duration = "300ms"
        {run}
        [host]
        memory = "256MiB"
        {host}
        [[guest]]
        name = "{name}"
        memory = "{memory}"
        {guest}
        workload = {workload}
        {BARE}
        """) + extra


def cli_error(argv, capsys) -> str:
    """Run the command line; it must fail with exit 2 and exactly one error line."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("autoballoon: error: "), err
    return err


def run_error(tmp_path, capsys, text, *args) -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return cli_error(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", *args], capsys)


def write_trace(path, gap, page, op):
    save(AccessTrace(np.asarray(gap, np.int64), np.asarray(page, np.int64),
                     np.asarray(op, np.uint8)), path)
    return path


# --- crashes and hangs ----------------------------------------------------------------------------

def test_empty_looped_trace_is_refused_not_a_segfault(tmp_path, capsys):
    write_trace(tmp_path / "z.parquet", [], [], [])
    text = scenario_text('{ kind = "trace", path = "z.parquet", loop = true }')
    err = run_error(tmp_path, capsys, text)
    assert re.search(r"s\.toml:11: guest\[0\]\.workload\.path: expected a trace with at least "
                     r"one event", err), err


def test_kernel_does_not_loop_an_empty_trace_into_its_neighbour(tmp_path, monkeypatch):
    """The replay's own guard, with the boot check switched off: an empty looped trace beside
    a second guest's trace ends at once instead of replaying the neighbour's events."""
    write_trace(tmp_path / "z.parquet", [], [], [])
    synth_path = tmp_path / "r.parquet"
    save(synth("rand", 100, accesses=500), synth_path)
    other = textwrap.dedent("""\
        [[guest]]
        name = "other"
        memory = "16MiB"
        workload = { kind = "trace", path = "r.parquet" }
        """) + textwrap.dedent(f"        {BARE}\n")
    text = scenario_text('{ kind = "trace", path = "z.parquet", loop = true }', extra=other)
    sc = parse_scenario(text, base_dir=tmp_path)
    monkeypatch.setattr(Machine, "_check", lambda self: None)
    m = Machine(sc, debug=True)
    m.advance(sc.run.duration_ns)
    assert m.meminfo(0)["alive"] == ALIVE_FINISHED and m.vmstat(0)["progress"] == 0
    assert m.vmstat(1)["progress"] == 500            # the neighbour replayed its own events


@pytest.mark.parametrize("workload, key", [
    ('{ kind = "phases", phases = [ { length = "8MiB", duration = "1s", think = "0ns" } ] }',
     r"workload\.phases\[0\]\.think: expected a duration > 0"),
    ('{ kind = "trace", path = "zero.parquet", loop = true }',
     r"workload\.loop: a looped trace must advance simulated time"),
    ('{ kind = "trace", path = "exits.parquet", loop = true }',
     r"workload\.loop: a looped trace must advance simulated time"),
    ('{ kind = "trace", path = "r.parquet", loop = true, speed = inf }',
     r"workload\.speed: expected a finite number, got inf"),
    ('{ kind = "trace", path = "r.parquet", loop = true, speed = 1e-300 }',
     r"workload\.speed: a gap of 1000 ns replayed at speed 1e-300 lasts 1e\+303 ns"),
    ('{ kind = "trace", path = "zero.parquet", loop = true, speed = 1e-300 }',
     r"workload\.loop: a looped trace must advance"),
])
def test_workloads_that_cannot_advance_time_are_refused(tmp_path, capsys, workload, key):
    write_trace(tmp_path / "zero.parquet", [0] * 10, range(10), [OP_WRITE] * 10)
    write_trace(tmp_path / "exits.parquet", [0, 0], [0, 0], [OP_EXIT, OP_EXIT])
    save(synth("rand", 100, think_ns=1000), tmp_path / "r.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # speed 1e-300 once printed numpy's overflow warning
        err = run_error(tmp_path, capsys, scenario_text(workload))
    assert re.search(r"s\.toml:11: guest\[0\]\." + key, err), err


def test_one_slice_of_unbounded_work_is_refused(tmp_path, capsys):
    """A looped trace of 1 ns in a 1 s slice would replay 10^9 events in one kernel call that
    Ctrl-C cannot stop."""
    write_trace(tmp_path / "fast.parquet", [1], [0], [OP_WRITE])
    text = scenario_text('{ kind = "trace", path = "fast.parquet", loop = true }',
                         run='tick = "1s"\nslice = "1s"').replace('"300ms"', '"2s"')
    err = run_error(tmp_path, capsys, text)
    assert re.search(r"s\.toml:4: run\.slice: one slice \(1000000000 ns\) could hold 1e\+09 "
                     r"events", err), err


def test_a_guest_named_host_is_refused(tmp_path, capsys):
    err = run_error(tmp_path, capsys, scenario_text(name="host"))
    assert re.search(r"s\.toml:8: guest\[0\]\.name: expected a non-empty name other than "
                     r"'host'", err), err


def test_ctrl_c_stops_a_long_run_with_one_line(tmp_path):
    """SIGINT to a run that would take minutes: exit 130, one line, no results directory."""
    path = tmp_path / "long.toml"
    path.write_text(scenario_text(
        '{ kind = "phases", phases = [ { length = "16MiB", duration = "1h", '
        'pattern = "rand" } ] }').replace('"300ms"', '"1h"'))
    out = tmp_path / "out"
    # SIGINT as a terminal's Ctrl-C delivers it, even when these tests run in the background
    # (a shell's background job, and the processes it starts, ignore SIGINT)
    proc = subprocess.Popen([sys.executable, "-m", "autoballoon.cli", "run", str(path),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        proc.stderr.read(1)       # the progress bar's first character: the run is under way
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 130
    finally:
        proc.kill()
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err, err
    assert re.fullmatch(r".*autoballoon: interrupted at [0-9.e+]+ s of 3600 s simulated; no "
                        r"results were written", last), err
    assert not out.exists()


def test_a_one_page_workload_does_not_recompile_the_kernels():
    """numba types a strided view of 0 or 1 records as contiguous: a machine of one virtual
    page would compile every kernel again (minutes; the fuzz's watchdog found it)."""
    import numba
    sc = parse_scenario(scenario_text(
        '{ kind = "phases", phases = [ { length = "4KiB", passes = 2 } ] }'))
    m = Machine(sc)
    assert len(m.m.pte) == 2 and m.m.P[0, P_NVPAGES] == 1
    for name in ("pte", "swp", "shadow", "vflags"):
        assert numba.typeof(getattr(m.m, name)).layout == "A", name
    m.advance(sc.run.duration_ns)
    assert m.vmstat(0)["progress"] == 2


def test_chunked_advance_gives_the_same_numbers(tmp_path, monkeypatch):
    """Machine.advance splits a tick at slice boundaries only: chunks of one slice or of a whole
    tick give identical state."""
    text = scenario_text('{ kind = "phases", phases = [ { length = "40MiB", duration = "1s", '
                         'pattern = "rand" } ] }', run='slice = "1ms"')

    def final(chunk_wall):
        monkeypatch.setattr(machine_mod, "CHUNK_WALL_S", chunk_wall)
        sc = parse_scenario(text)
        m = Machine(sc)
        for t in range(sc.run.tick_ns, sc.run.duration_ns + 1, sc.run.tick_ns):
            m.advance(t)
        return m.vmstat(0), m.m.pte.copy(), m._chunk

    (a, pa, ca), (b, pb, cb) = final(0.0), final(1e9)
    assert ca == 1 and cb > 1             # one slice per call, and many
    assert a == b and np.array_equal(pa, pb) and a["progress"] > 0


# --- clear errors, never tracebacks ---------------------------------------------------------------

@pytest.mark.parametrize("where, line, change", [
    ("guest[0].workload.phases[0].think", 11,
     dict(workload='{ kind = "phases", phases = [ { length = "8MiB", passes = 1, '
                   'think = "1e12s" } ] }')),
    ("guest[0].workload.start", 11,
     dict(workload='{ kind = "phases", start = "1e12s", phases = [ { length = "8MiB", '
                   'passes = 1 } ] }')),
    ("guest[0].fault", 10, dict(guest='fault = "1e12s"')),
    ("guest[0].swap.read_latency", 10,
     dict(guest='swap = { size = "8MiB", read_latency = "1e12s" }')),
    ("host.stats_poll", 6, dict(host='stats_poll = "1e12s"')),
    ("run.tick", 3, dict(run='tick = "1e12s"')),
    ("guest[0].memory", 9, dict(memory="1e30GiB")),
])
def test_values_beyond_int64_are_clear_errors(tmp_path, capsys, where, line, change):
    err = run_error(tmp_path, capsys, scenario_text(**change))
    assert re.search(rf"s\.toml:{line}: {re.escape(where)}: expected .*(below 2\^60|1s\])",
                     err), err


@pytest.mark.parametrize("policy", [":", "..x:Y", "no_such_module_xyz:P"])
def test_bad_policy_names_are_clear_errors(tmp_path, capsys, policy):
    err = run_error(tmp_path, capsys, scenario_text(host=f'policy = "{policy}"'))
    assert re.search(r"s\.toml:6: host\.policy: (expected a registered|cannot load)", err), err
    err = run_error(tmp_path, capsys, scenario_text(), "--policy", policy)
    assert re.search(r"host\.policy: cannot load policy class", err), err


def test_scenario_file_not_utf8(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_bytes(scenario_text().encode() + b"# caf\xe9\n")
    err = cli_error(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert re.search(r"s\.toml:15: expected a UTF-8 text file \(TOML\), got byte 0xe9", err)


@pytest.mark.parametrize("header", [
    [1, 2], "a string", {"format_version": 2, "kind": "access", "meta": 5},
    {"format_version": True, "kind": "access"}, {"format_version": 2, "kind": "access"},
])
def test_trace_metadata_of_the_wrong_type(tmp_path, capsys, header):
    path = write_trace(tmp_path / "t.parquet", [1, 1], [0, 1], [1, 1])
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"autoballoon": json.dumps(header)}), path)
    err = cli_error(["trace", "info", str(path)], capsys)
    assert re.search(r"t\.parquet: (trace metadata|expected trace format version)", err), err


def test_corrupted_gz_lackey(tmp_path, capsys):
    path = tmp_path / "x.lackey.gz"
    data = gzip.compress(b"I  0400d7d4,8\n S 7ff000398,8\n" * 1000)
    path.write_bytes(data[:40] + b"\x00" * 64 + data[104:])
    err = cli_error(["trace", "convert", "--from", "lackey", str(path),
                     str(tmp_path / "o.parquet")], capsys)
    assert re.search(r"x\.lackey\.gz(: cannot read| line \d+: expected)", err), err


@pytest.mark.parametrize("argv, message", [
    (["--block-size", "0"], r"block_size: expected an integer in \[1, 2\^30\]"),
    (["--block-size", "-4"], r"block_size: expected an integer in \[1, 2\^30\]"),
])
def test_csv_conversion_arguments(tmp_path, capsys, argv, message):
    (tmp_path / "in.csv").write_text("a,b,c,d,e\n1,2,r,512,7\n")
    err = cli_error(["trace", "convert", "--from", "csv", str(tmp_path / "in.csv"),
                     str(tmp_path / "o.parquet"), *argv], capsys)
    assert re.search(message, err), err


def test_vm_csv_numbers_that_overflow_are_one_line_not_a_warning(tmp_path, capsys):
    (tmp_path / "vm.csv").write_text("Timestamp [ms];Memory capacity provisioned [KB];"
                                     "Memory usage [%]\n0;1e300;1e300\n1e300;0;1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a RuntimeWarning would print on the terminal
        err = cli_error(["trace", "convert", "--from", "vmcsv", str(tmp_path / "vm.csv"),
                         str(tmp_path / "o.parquet")], capsys)
    assert "expected a value that fits int64" in err


def test_library_messages_with_newlines_stay_on_one_line(tmp_path, capsys):
    """Found by make fuzz: pyarrow's and pandas' messages end in a newline."""
    path = write_trace(tmp_path / "t.parquet", [], [], [])
    data = bytearray(path.read_bytes())
    data[len(data) // 8] ^= 1
    path.write_bytes(bytes(data))
    err = cli_error(["trace", "info", str(path)], capsys)
    assert "t.parquet: not a readable Parquet trace file" in err
    (tmp_path / "bad.csv").write_text("x\n\x00\x01,,\n")
    err = cli_error(["trace", "convert", "--from", "csv", str(tmp_path / "bad.csv"),
                     str(tmp_path / "o.parquet"), "--no-header"], capsys)
    assert "bad.csv: not a ','-separated csv trace" in err


def test_csv_page_numbers_beyond_int64(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("a,b,c,d,e\n1,2,r,512,7\n1,3,r,512,"
                                     "99999999999999999999999\n")
    err = cli_error(["trace", "convert", "--from", "csv", str(tmp_path / "in.csv"),
                     str(tmp_path / "o.parquet")], capsys)
    assert "line 3: column 5 (obj-id): expected an integer >= 0" in err


def test_objects_too_big_to_count_in_int64(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("a,b,c,d,e\n" + "".join(
        f"1,{i},r,4000000000000000000,{i}\n" for i in range(8)))
    err = cli_error(["trace", "convert", "--from", "csv", str(tmp_path / "in.csv"),
                     str(tmp_path / "o.parquet"), "--ids", "objects"], capsys)
    assert "requests cover more than" in err


def test_converting_into_a_missing_directory(tmp_path, capsys):
    err = cli_error(["trace", "synth", "rand", str(tmp_path / "nodir" / "a.parquet"),
                     "--pages", "10"], capsys)
    assert "a.parquet: cannot write: directory" in err and "does not exist" in err
    err = cli_error(["trace", "synth", "rand", str(tmp_path), "--pages", "10"], capsys)
    assert "cannot write" in err                     # onto a directory


@pytest.mark.parametrize("argv, message", [
    (["trace", "synth", "rand", "A", "--pages", "10", "--accesses", "-1"],
     r"synth: accesses: expected an integer >= 1, got -1"),
    (["trace", "synth", "zipf", "A", "--pages", "10", "--alpha", "nan"],
     r"synth: alpha: expected a finite number > 0"),
    (["trace", "synth", "seq", "A", "--pages", "1000000000000"],
     r"synth: pages x passes: 1,000,000,000,000 events"),
    (["trace", "expand", "ENV", "A", "--seed", "1", "--scale", "nan"],
     r"expand: scale: expected a number > 0, got nan"),
    (["trace", "expand", "ENV", "A", "--seed", "1", "--scale", "1e300"],
     r"expand: one sample would make"),
    (["trace", "expand", "ENV", "A", "--seed", "-1"], r"expand: seed: expected an integer >= 0"),
])
def test_trace_tool_arguments(tmp_path, capsys, argv, message):
    env = os.path.join(ROOT, "data/envelopes/azure_v2-day0-1GiB.parquet")
    argv = [str(tmp_path / "a.parquet") if a == "A" else env if a == "ENV" else a for a in argv]
    assert re.search(message, cli_error(argv, capsys))


def test_compare_with_no_policies(tmp_path, capsys):
    err = cli_error(["compare", "--policies", "", "--out", str(tmp_path / "o")], capsys)
    assert "--policies: expected comma-separated policy names, got ''" in err
    assert not (tmp_path / "o").exists()


def test_every_policy_name_is_checked_before_the_first_run(tmp_path, capsys, monkeypatch):
    from autoballoon.results import compare as results_compare
    monkeypatch.setattr(results_compare, "simulate", lambda *a, **k: pytest.fail("simulated"))
    err = cli_error(["compare", "--policies", "none,static,magic", "--out",
                     str(tmp_path / "o")], capsys)
    assert "--policies: expected one of" in err


@pytest.mark.parametrize("make_out, message", [
    (lambda d: "", r"--out: expected a directory path, got ''"),
    (lambda d: (d / "f").write_text("x") and str(d / "f"), r"--out: expected a directory, got"),
    (lambda d: str(d / "f" / "sub"), r"--out: expected a directory this user can write"),
])
def test_out_is_checked_before_simulating(tmp_path, capsys, monkeypatch, make_out, message):
    from autoballoon.results import compare as results_compare
    from autoballoon.results import run as results_run
    from autoballoon.results import sweep as results_sweep
    (tmp_path / "f").write_text("x")
    for module in (results_run, results_compare):
        monkeypatch.setattr(module, "simulate", lambda *a, **k: pytest.fail("simulated"))
    monkeypatch.setattr(results_sweep, "sweep", lambda *a, **k: pytest.fail("swept"))
    (tmp_path / "s.toml").write_text(scenario_text())
    (tmp_path / "sweep.toml").write_text('scenario = "s.toml"\nseeds = 2\n')
    for cmd in (["run", str(tmp_path / "s.toml")], ["compare", str(tmp_path / "s.toml")],
                ["sweep", str(tmp_path / "sweep.toml")]):
        err = cli_error(cmd + ["--out", make_out(tmp_path), "--quiet"], capsys)
        assert re.search(message, err), err


def test_sweep_file_not_utf8(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_bytes(b'seeds = 2\n# caf\xe9\n')
    err = cli_error(["sweep", str(path), "--out", str(tmp_path / "o")], capsys)
    assert re.search(r"sweep\.toml: expected a UTF-8 text file \(TOML\), got byte 0xe9", err)
    assert not (tmp_path / "o").exists()


def test_sweep_workers_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "o"),
                  "--workers", "0"])
    assert e.value.code == 2
    assert "--workers: invalid positive integer value: '0'" in capsys.readouterr().err


def test_interrupted_compare_says_its_finished_runs_are_kept(tmp_path, capsys, monkeypatch):
    """Ctrl-C in compare: one line saying that the policies that finished are saved (a rerun
    resumes them; tests/test_provenance.py checks the resuming)."""
    from autoballoon.control.loop import Interrupted
    from autoballoon.results import compare as results_compare

    def interrupted(*a, **k):
        raise Interrupted("at 0.1 s of 0.3 s simulated")
    monkeypatch.setattr(results_compare, "simulate", interrupted)
    (tmp_path / "s.toml").write_text(scenario_text())
    assert cli.main(["compare", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"),
                     "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err == ("autoballoon: interrupted at 0.1 s of 0.3 s simulated; the policies that "
                   "finished are saved in --out, and the same command resumes\n"), err


# --- work that cannot fit is refused before it starts, with the key and the estimate --------------

@pytest.fixture
def eight_gib(monkeypatch):
    monkeypatch.setattr(mmstate, "available_memory", lambda: 8 * 2**30)


def test_a_pebibyte_guest_is_refused_with_the_estimate(tmp_path, capsys, eight_gib):
    err = run_error(tmp_path, capsys, scenario_text(memory="1PiB"))
    assert re.search(r"s\.toml:9: guest\[0\]\.memory: the machine's state would need 9\.0 TiB "
                     r"\(estimate; .*\), more than the 8\.0 GiB of memory available", err), err


def test_replicas_are_bounded_before_they_are_made(tmp_path, capsys, eight_gib):
    err = run_error(tmp_path, capsys, scenario_text(guest="count = 1099511627776"))
    assert re.search(r"s\.toml:10: guest\[0\]\.count: expected an integer in \[1, 4096\]", err)
    err = run_error(tmp_path, capsys, scenario_text(guest="count = 4096", memory="1GiB"))
    assert re.search(r"guest\[0\]\.memory: the machine's state would need 36\.\d GiB .*"
                     r"for 4096 replicas", err), err


def test_a_trace_page_at_2_40_is_refused_with_the_estimate(tmp_path, capsys, eight_gib):
    write_trace(tmp_path / "far.parquet", [1000, 1000], [0, 2**40], [OP_WRITE, OP_WRITE])
    assert load(tmp_path / "far.parquet").footprint == 2**40 + 1     # loads: no dense arrays
    err = run_error(tmp_path, capsys,
                    scenario_text('{ kind = "trace", path = "far.parquet" }'))
    assert re.search(r"guest\[0\]\.workload\.path: the machine's state would need 16\.0 TiB",
                     err), err


def test_a_record_too_big_for_memory_is_refused(tmp_path, capsys, eight_gib):
    text = scenario_text(run='tick = "10us"\nslice = "10us"').replace('"300ms"', '"1h"')
    err = run_error(tmp_path, capsys, text)
    assert re.search(r"s\.toml:3: run\.tick: 360,000,000 ticks of 2 rows would take", err), err


def test_a_one_ns_window_over_a_long_gap(tmp_path, capsys):
    write_trace(tmp_path / "big.parquet", [0, 10**15], [0, 1], [1, 1])
    err = cli_error(["trace", "info", str(tmp_path / "big.parquet"), "--window", "1ns"], capsys)
    assert "window: 1 ns cuts the trace's 1000000000000000 ns into 1e+15 windows" in err


def test_estimate_matches_allocation():
    for args in (([4096], [100], [50], 10, 2, 7), ([5000, 9000, 1], [0, 3, 4], [0, 0, 9]),
                 ([1], [0], [0])):
        m = mmstate.allocate(*args)
        buffers = {id(a.base if a.base is not None else a): (a.base if a.base is not None
                                                            else a).nbytes for a in m}
        assert mmstate.estimate_bytes(*args) == sum(buffers.values())


def test_recorder_rows_fit_their_estimate():
    """control.loop.ROW_BYTES bounds what the recorder keeps per row (measured)."""
    import tracemalloc

    from autoballoon.control.loop import ROW_BYTES
    from autoballoon.control.recorder import Recorder
    sc = parse_scenario(scenario_text(guest="count = 3"))
    m = Machine(sc)
    rec = Recorder(m, sc)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for t in range(200):
        rec.record(t, [32 * MIB] * 3, ())
    rows = tracemalloc.get_traced_memory()[0] - before
    ts, summary = rec.frames("none")
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    assert 0 < rows / 800 and peak / 800 < ROW_BYTES, (rows / 800, peak / 800)


# --- nonsense accepted no more --------------------------------------------------------------------

def test_flipped_bytes_in_a_trace_are_caught_by_its_checksum(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    save(synth("rand", 20_000, seed=3), path)
    table = pq.read_table(path)
    # change the data, keep the metadata: what flipped bytes that still decode do
    page = table.column("page").to_numpy().copy()
    page[:16] ^= 1
    pq.write_table(table.set_column(1, "page", [page]).replace_schema_metadata(
        table.schema.metadata), path)
    err = cli_error(["trace", "info", str(path)], capsys)
    assert "t.parquet: the data does not match its checksum" in err


def test_old_traces_without_a_checksum_still_load():
    for path in ("data/traces/sort.parquet", "data/lackey/tiny.parquet"):
        full = os.path.join(ROOT, path)
        assert pq.read_schema(full).metadata[b"autoballoon"].startswith(b'{"format_version": 1')
        assert len(load(full)) > 0


@pytest.mark.parametrize("change, message", [
    (dict(workload='{ kind = "phases", phases = [ { length = "8MiB", passes = 1, '
                   'pattern = "zipf", alpha = nan } ] }'),
     r"s\.toml:11: guest\[0\]\.workload\.phases\[0\]\.alpha: expected a finite number"),
    (dict(host='policy = "qemu-auto"\npolicy_params = { floor = "1GiB" }'),
     r"s\.toml:7: host\.policy_params\.floor: expected a size below the smallest guest's"),
    (dict(extra="", run="", host="", guest="", name="vm", memory="33554433"),
     r"s\.toml:9: guest\[0\]\.memory: expected .* a whole number of pages"),
    (dict(guest='swap = "1000000"'),
     r"s\.toml:10: guest\[0\]\.swap\.size: expected .* a whole number of pages"),
    (dict(name="", guest="count = 2"),
     r"s\.toml:8: guest\[0\]\.name: expected a non-empty name"),
    (dict(run='tick = "1s"'), r"s\.toml:3: run\.tick: expected a duration in \(0, run\.duration"),
    (dict(guest="count = 2", extra='[[guest]]\nname = "vm-0"\nmemory = "16MiB"\n'
                                   'workload = { kind = "phases", phases = [ { length = "1MiB", '
                                   'passes = 1 } ] }\n'),
     r"guest\.name: expected unique guest names"),
    (dict(guest="count = 2", extra='[[guest]]\nname = "vm"\nmemory = "16MiB"\n'
                                   'workload = { kind = "phases", phases = [ { length = "1MiB", '
                                   'passes = 1 } ] }\n'),
     r"s\.toml:\d+: guest\[1\]\.name: expected a name that is not also the replica group of "
     r"guest\[0\]"),
])
def test_nonsense_is_refused_naming_the_key(tmp_path, capsys, change, message):
    err = run_error(tmp_path, capsys, scenario_text(**change))
    assert re.search(message, err), err


def test_description_must_be_text():
    with pytest.raises(ScenarioError, match=r":1: description: expected a string"):
        parse_scenario("description = 5\n" + scenario_text())


def test_a_short_run_gets_a_short_tick():
    sc = parse_scenario(scenario_text().replace('"300ms"', '"50ms"'))
    assert sc.run.tick_ns == sc.run.duration_ns == 50_000_000


def test_trace_window_must_be_positive(tmp_path, capsys):
    write_trace(tmp_path / "t.parquet", [1, 1], [0, 1], [1, 1])
    with pytest.raises(SystemExit):
        cli.main(["trace", "info", str(tmp_path / "t.parquet"), "--window", "0"])
    assert "expected a duration > 0" in capsys.readouterr().err


def test_gap_beyond_2_60_is_refused():
    with pytest.raises(TraceError, match=r"row 0: column 'gap_ns': expected an integer in "
                                         r"\[0, 2\^60\)"):
        AccessTrace(np.array([2**62]), np.array([0]), np.array([1], np.uint8))
