"""Fuzzing the command line with hostile scenarios, trace files and arguments (issue 14).

The property, for every generated invocation of ``autoballoon``: either a clean run — with the
model's invariants checked after every tick (``--debug``) — or exit status 2 and one clear error
line; never another exception, a signal, or a run that does not finish (a watchdog alarm stops it:
the machine returns to Python often, so the alarm is seen). Scenarios and traces start valid and
are then mutated; the real numba machine runs tiny guests (16-32 MiB, 100-500 ms).

``make test`` runs 200 examples, derandomized (the same ones every time); ``make fuzz`` runs 5,000
with a fresh seed (``AUTOBALLOON_FUZZ_EXAMPLES``). A failure prints the example; once fixed it
becomes a regression test in tests/test_reliability.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import signal
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoballoon import cli
from autoballoon.trace import AccessTrace, save, synth
from autoballoon.trace.ops import OP_EXIT, OP_FILE, OP_FREE, OP_SYSCALL, OP_WRITE
from autoballoon.control.policies import POLICIES
from autoballoon.scenario.spec import KERNELS
from autoballoon.uapi import FEATURES

TOTAL = int(os.environ.get("AUTOBALLOON_FUZZ_EXAMPLES", "200"))
CI = TOTAL <= 200                     # make test: derandomized; make fuzz: a fresh seed
WATCHDOG_S = 300                      # a generous bound on one invocation: a hang, not slowness
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def budget(share: float):
    return settings(max_examples=max(1, round(TOTAL * share)), deadline=None, derandomize=CI,
                    database=None, print_blob=True, suppress_health_check=list(HealthCheck))


class NoProgress(Exception):
    """The invocation did not finish within WATCHDOG_S."""


@contextlib.contextmanager
def watchdog(seconds: int = WATCHDOG_S):
    def fire(signum, frame):
        raise NoProgress(f"no result after {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def invoke(argv: list[str]) -> tuple[int, str]:
    """Exit status and stderr; a Python warning from the package counts as stderr output (it
    would print on a user's terminal)."""
    err = io.StringIO()
    with watchdog(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rc = cli.main(argv)
        except SystemExit as e:           # argparse's usage errors
            rc = e.code
    ours = [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in caught
            if f"{os.sep}autoballoon{os.sep}" in w.filename]
    return rc, "".join(ours) + err.getvalue()


def check(argv: list[str]) -> int:
    """The property; returns the exit status."""
    rc, err = invoke(argv)
    assert "Traceback" not in err, err
    if rc == 0:
        return rc
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    if lines and lines[0].startswith("usage: "):       # argparse: usage, then one error line
        assert re.match(r"autoballoon.*: error: ", lines[-1]), err
    else:
        assert len(lines) == 1 and lines[0].startswith("autoballoon: error: "), err
    return rc


# --- TOML, written by hand (the package reads TOML; writing it is this test's need only) ----------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)               # TOML basic strings take JSON's escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def to_toml(doc: dict) -> str:
    out = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items()
           if not isinstance(v, dict) and not (isinstance(v, list) and v
                                               and all(isinstance(t, dict) for t in v))]
    for k, v in doc.items():
        tables = [v] if isinstance(v, dict) else v if isinstance(v, list) and v and all(
            isinstance(t, dict) for t in v) else []
        for t in tables:
            out.append(f"[{toml_key(k)}]" if isinstance(v, dict) else f"[[{toml_key(k)}]]")
            out.extend(f"{toml_key(a)} = {toml_value(b)}" for a, b in t.items())
    return "\n".join(out) + "\n"


# --- scenario documents ---------------------------------------------------------------------------

TRACES = ("rand", "zipf", "read", "frees", "zeros", "empty", "far")
POLICY_NAMES = tuple(sorted(POLICIES))      # the policy zoo too: tiny guests, default parameters
HOSTILE = ["", ":", "..x:Y", "1e30GiB", "1e12s", "0", "0ns", "1ns", "4097", "1PiB", "-1s",
           "nan", "host", "vm", "vm-0", "é\u0000", "1e-300s", "/no/such.parquet", "zipf",
           "trace", 0, -1, 1, 2**63 - 1, -2**63, 2**40, 1.5, -0.0, 1e-300, 1e300,
           float("nan"), float("inf"), True, [], [1], {}, {"x": 1}]


@st.composite
def phase(draw, pages: int):
    length = draw(st.integers(1, pages))
    p = {"length": f"{length * 4}KiB", "offset": f"{draw(st.integers(0, pages - length)) * 4}KiB",
         "pattern": draw(st.sampled_from(("seq", "rand", "read", "zipf")))}
    if draw(st.booleans()):
        p["passes"] = draw(st.integers(1, 3))
    else:
        p["duration"] = f"{draw(st.integers(1, 400))}ms"
    p["think"] = f"{draw(st.integers(200, 20_000))}ns"
    if draw(st.booleans()):
        p["write_fraction"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        p["alpha"] = draw(st.floats(0.05, 3))
    return p


@st.composite
def workload(draw):
    if draw(st.integers(0, 3)) == 0:
        w = {"kind": "trace", "path": draw(st.sampled_from(TRACES)) + ".parquet",
             "loop": draw(st.booleans())}
        if draw(st.booleans()):
            w["speed"] = draw(st.sampled_from((0.5, 1.0, 2.0, 1e-6, 1e6)))
    else:
        pages = draw(st.integers(1, 48 * 256))
        w = {"kind": "phases", "mapping": f"{pages * 4}KiB",
             "phases": draw(st.lists(phase(pages), min_size=1, max_size=3)),
             "loop": draw(st.booleans())}
    if draw(st.booleans()):
        w["start"] = f"{draw(st.integers(0, 200))}ms"
    return w


# What a machine keeps at boot: mostly nothing (tiny machines, as tests/machines.py makes them),
# sometimes a little, sometimes the defaults (a real kernel's: too much for a tiny guest).
BOOT = [{"reserved": 0, "kernel_memory": 0, "thp": "never"}] * 3 + [
    {"reserved": "1MiB", "kernel_memory": "2MiB", "thp": "madvise"},
    {"reserved": 0, "kernel_memory": "4MiB", "thp": "always"}, {}]


@st.composite
def guest(draw, name: str):
    memory = draw(st.integers(16, 32))
    g = {"name": name, "memory": f"{memory}MiB", "swap": f"{draw(st.integers(0, 32))}MiB",
         "kernel": draw(st.sampled_from(KERNELS)),
         "features": sorted(draw(st.sets(st.sampled_from(sorted(FEATURES))))),
         "workload": draw(workload()), **draw(st.sampled_from(BOOT))}
    if draw(st.booleans()):
        g["count"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        g["target"] = f"{draw(st.integers(1, memory))}MiB"
    if draw(st.booleans()):
        g["slab"] = f"{draw(st.integers(0, 4))}MiB"
    if draw(st.booleans()):
        g["swappiness"] = draw(st.integers(0, 200))
    return g


@st.composite
def scenario_doc(draw):
    duration = draw(st.integers(100, 500))
    names = draw(st.lists(st.sampled_from(("vm", "db", "web")), min_size=1, max_size=2,
                          unique=True))
    doc = {"description": "fuzz",
           "run": {"duration": f"{duration}ms",
                   "tick": f"{draw(st.sampled_from((50, 100)))}ms",
                   "seed": draw(st.integers(0, 1000))},
           "host": {"memory": f"{draw(st.integers(32, 160))}MiB",
                    "swap": f"{draw(st.integers(0, 64))}MiB",
                    "policy": draw(st.sampled_from(POLICY_NAMES)), **draw(st.sampled_from(BOOT))},
           "guest": [draw(guest(n)) for n in names]}
    if doc["host"]["policy"] == "qemu-auto" and draw(st.booleans()):
        doc["host"]["policy_params"] = {"inflate": f"{draw(st.integers(1, 16))}MiB"}
    if draw(st.booleans()):
        doc["schedule"] = [{"at": f"{draw(st.integers(0, duration))}ms",
                            "guest": draw(st.sampled_from(names)),
                            "target": f"{draw(st.integers(1, 16))}MiB"}
                           for _ in range(draw(st.integers(1, 2)))]
    return doc


def paths(node, prefix=()):
    """Every (path, container) of a document, tables and values."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        yield prefix + (k,)
        if isinstance(v, (dict, list)):
            yield from paths(v, prefix + (k,))


@st.composite
def mutated(draw, doc):
    """1-3 hostile edits: a value replaced, a key deleted, an unknown key added."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(doc))))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        what = draw(st.sampled_from(("value", "value", "delete", "unknown")))
        if what == "value":
            parent[path[-1]] = draw(st.sampled_from(HOSTILE))
        elif what == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(("cuont", "memroy", "x")))] = 1
    return doc


@st.composite
def scenarios(draw):
    """TOML text: a valid document, one with hostile edits, or one with edited characters."""
    doc = draw(scenario_doc())
    how = draw(st.sampled_from(("valid", "mutated", "mutated", "text")))
    text = to_toml(draw(mutated(doc)) if how == "mutated" else doc)
    if how == "text":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(("", "[", "]", "=", '"', "\n", "#", ".",
                                                    "\u00e9", "9"))) + text[i + 1:]
    return text


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    save(synth("rand", 2000, seed=1, accesses=5000, think_ns=1000), d / "rand.parquet")
    save(synth("zipf", 3000, seed=2, accesses=4000, think_ns=500), d / "zipf.parquet")
    save(synth("read", 1000, seed=3, think_ns=2000), d / "read.parquet")
    n = 300
    ops = np.where(np.arange(n) % 7 == 3, OP_FREE, OP_WRITE).astype(np.uint8)
    ops[-1] = OP_EXIT
    save(AccessTrace(np.full(n, 700, np.int64), np.arange(n, dtype=np.int64) % 50, ops),
         d / "frees.parquet")
    save(AccessTrace(np.zeros(20, np.int64), np.arange(20, dtype=np.int64),
                     np.full(20, OP_WRITE, np.uint8)), d / "zeros.parquet")
    save(AccessTrace(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)),
         d / "empty.parquet")
    save(AccessTrace(np.array([1000, 1000]), np.array([0, 2**40]),
                     np.array([OP_WRITE, OP_WRITE], np.uint8)), d / "far.parquet")
    (d / "file").write_text("not a directory\n")
    return d


@budget(0.5)
@given(text=scenarios())
def test_scenarios_run_cleanly_or_fail_with_one_line(workdir, text):
    path = workdir / "s.toml"
    path.write_text(text)
    check(["run", str(path), "--out", str(workdir / "out"), "--quiet", "--debug", "--force"])


# --- trace files ----------------------------------------------------------------------------------

VALID_OPS = (0, OP_WRITE, OP_FILE, OP_FILE | OP_WRITE, OP_FILE | OP_SYSCALL,
             OP_FILE | OP_SYSCALL | OP_WRITE, OP_FREE, OP_EXIT)


@st.composite
def trace_arrays(draw):
    n = draw(st.integers(0, 200))
    gap = draw(st.lists(st.one_of(st.integers(0, 10**6), st.sampled_from((0, 2**59, 2**62))),
                        min_size=n, max_size=n))
    page = draw(st.lists(st.one_of(st.integers(0, 5000), st.sampled_from((2**30, 2**40))),
                         min_size=n, max_size=n))
    files = set(draw(st.lists(st.integers(0, 5000), max_size=20)))
    op = [draw(st.sampled_from(VALID_OPS)) for _ in range(n)]
    # a page keeps one kind: file pages only get file ops (most of the time)
    op = [o if o >= OP_FREE or (p in files) == bool(o & OP_FILE) or draw(st.integers(0, 20)) == 0
          else (o ^ OP_FILE) & ~OP_SYSCALL for o, p in zip(op, page)]
    return gap, page, op


@st.composite
def corruption(draw):
    kind = draw(st.sampled_from(("none", "flip", "truncate", "metadata", "junk")))
    if kind == "flip":
        return kind, draw(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)),
                                   min_size=1, max_size=16))
    if kind == "truncate":
        return kind, draw(st.floats(0, 1))
    if kind == "metadata":
        return kind, draw(st.sampled_from((
            "[]", "5", '"x"', "{", '{"format_version": 2, "kind": "access"}',
            '{"format_version": 3, "kind": "access"}', '{"format_version": 1, "kind": "nope"}',
            '{"format_version": 1, "kind": "access", "meta": []}',
            '{"format_version": 1, "kind": "access"}',
            '{"format_version": 2, "kind": "access", "checksum": "blake2b:00"}',
            '{"format_version": 1, "kind": "envelope", "end_ns": "x"}', "[" * 100000)))
    if kind == "junk":
        return kind, draw(st.binary(max_size=200))
    return kind, None


def corrupt(path, how) -> None:
    kind, arg = how
    if kind == "flip":
        data = bytearray(path.read_bytes())
        for where, mask in arg:
            data[min(int(where * len(data)), len(data) - 1)] ^= mask
        path.write_bytes(bytes(data))
    elif kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[:int(arg * len(data))])
    elif kind == "metadata":
        table = pq.read_table(path)
        pq.write_table(table.replace_schema_metadata({b"autoballoon": arg}), path)
    elif kind == "junk":
        path.write_bytes(arg)


@budget(0.25)
@given(arrays=trace_arrays(), how=corruption(), loop=st.booleans(),
       speed=st.sampled_from((1.0, 0.5, 3.0, 1e-300, 1e300)),
       window=st.sampled_from((None, "1ns", "1us", "1ms", "0", "1e12s")))
def test_trace_files_load_cleanly_or_fail_with_one_line(workdir, arrays, how, loop, speed,
                                                        window):
    path = workdir / "t.parquet"
    try:
        trace = AccessTrace(*(np.asarray(a, t) for a, t in zip(arrays, (np.int64, np.int64,
                                                                         np.uint8))))
    except ValueError:                     # a TraceError: not a valid trace; write any way
        trace = None
    if trace is not None:
        save(trace, path)
    else:
        save(synth("rand", 10), path)
        how = ("junk", bytes(np.asarray(arrays[1], np.int64).tobytes()[:300]))
    corrupt(path, how)
    check(["trace", "info", str(path)] + (["--window", window] if window else []))
    text = to_toml({"run": {"duration": "200ms"}, "host": {"memory": "64MiB", **BOOT[0]},
                    "guest": [{"name": "vm", "memory": "16MiB", "swap": "16MiB", **BOOT[0],
                               "workload": {"kind": "trace", "path": "t.parquet", "loop": loop,
                                            "speed": speed}}]})
    (workdir / "t.toml").write_text(text)
    check(["run", str(workdir / "t.toml"), "--out", str(workdir / "tout"), "--quiet", "--debug",
           "--force"])


# --- argument lists -------------------------------------------------------------------------------

# Each option's values: mostly plausible ones (so that the checks behind argparse's are
# reached), then hostile ones.
COUNTS = ("1", "10", "100", "2000", "0", "-1", "1000000000000", "9" * 30, "x", "")
SEEDS = ("0", "1", "7", "-1", "99999999999999999999")
FRACTIONS = ("0", "0.5", "1", "1.5", "-0.1", "nan", "inf")
ALPHAS = ("0.9", "0.5", "2", "0", "-1", "nan", "inf", "1e-300", "1e300")
SCALES = ("0.001", "0.01", "1e-9", "0", "-1", "nan", "inf", "1e300")
DURATIONS = ("1us", "2ms", "1ns", "0", "0ns", "1e12s", "-1s", "nan", "1")
COLUMNS = ("1", "2", "3", "4", "5", "0", "-1", "9")
BLOCKS = ("512", "4096", "1", "1073741824", "0", "-1", "1e3")
NS_PER = ("1", "10", "0", "-1", "1000000000000000000")
SETS = ("run.seed=5", "host.memory=96MiB", "host.memory=1e30GiB", "guest.vm.swappiness=0",
        "guest.vm.memory=17MiB", "guest.vm-0.memory=20MiB", "guest.nope.memory=20MiB",
        "host.policy_params.inflate=2MiB", "host.policy=mom", "guest.vm.kernel_memory=8MiB",
        "guest.vm.workload.phases[0].think=0ns", "guest.vm.workload.phases[3].length=4MiB",
        "schedule[0].target=8MiB", "run.tick=1h", "x", "=1", "run..seed=1", "run.seed=[",
        "guest.vm.tell_host=2s", "host.reserved=auto")


def option(name, values):
    return st.one_of(st.just([]), st.sampled_from(values).map(lambda v: [name, v]))


@st.composite
def arguments(draw, workdir):
    d = str(workdir)
    out = draw(st.sampled_from((f"{d}/a.parquet", f"{d}/nodir/a.parquet", d, "",
                                f"{d}/file")))
    which = draw(st.sampled_from(("synth", "expand", "convert", "info", "run", "compare")))
    if which == "synth":
        argv = ["trace", "synth", draw(st.sampled_from(("seq", "rand", "read", "zipf", "x"))),
                out]
        for name, values in (("--pages", COUNTS), ("--accesses", COUNTS),
                             ("--passes", COUNTS[:5]), ("--seed", SEEDS), ("--think", DURATIONS),
                             ("--write-fraction", FRACTIONS), ("--alpha", ALPHAS)):
            argv += draw(option(name, values))
        if "--pages" not in argv:
            argv += ["--pages", "10"]
    elif which == "expand":
        env = draw(st.sampled_from((f"{ROOT}/data/envelopes/azure_v2-day0-1GiB.parquet",
                                    f"{d}/rand.parquet", f"{d}/missing.parquet")))
        argv = ["trace", "expand", env, out, "--seed", draw(st.sampled_from(SEEDS))]
        for name, values in (("--scale", SCALES), ("--reuse", FRACTIONS), ("--alpha", ALPHAS),
                             ("--write-fraction", FRACTIONS), ("--max-events", COUNTS)):
            argv += draw(option(name, values))
        if "--scale" not in argv:
            argv += ["--scale", "0.001"]
    elif which == "convert":
        fmt, src = draw(st.sampled_from((
            ("csv", "in.csv"), ("csv", "bad.csv"), ("oracleGeneral", "in.csv"),
            ("lackey", "in.lackey"), ("lackey", "bad.lackey.gz"), ("vmcsv", "vm.csv"),
            ("vmcsv", "in.csv"), ("vmcsv", "vmbig.csv"), ("csv", "missing.csv"))))
        argv = ["trace", "convert", "--from", fmt, f"{d}/{src}", out]
        for name, values in (("--block-size", BLOCKS), ("--time-col", COLUMNS),
                             ("--obj-id-col", COLUMNS), ("--op-col", COLUMNS),
                             ("--obj-size-col", COLUMNS),
                             ("--ns-per-access", NS_PER), ("--ids", ("blocks", "objects")),
                             ("--time-unit", ("s", "ns", "h"))):
            argv += draw(option(name, values))
        argv += draw(st.sampled_from(([], ["--no-header"])))
    elif which == "info":
        argv = ["trace", "info", draw(st.sampled_from((f"{d}/rand.parquet", f"{d}/far.parquet",
                                                       f"{d}/in.csv", d, "")))]
        argv += draw(option("--window", DURATIONS))
    else:
        argv = [which, f"{d}/tiny.toml", "--out", draw(st.sampled_from((f"{d}/r", "", d + "/file",
                                                                        f"{d}/file/x")))]
        argv.append("--quiet")
        if which == "run":
            argv += draw(option("--policy", ("none", "static", "qemu-auto", "mom", "esx",
                                             "proxmox", ":", "x", "")))
        else:
            argv += draw(option("--policies", ("", ",", "none", "none,static", "none,x",
                                               "qemu-auto,none", "mom,static", "hyperv,crosvm")))
            argv += draw(option("--jobs", ("1", "0", "-1", "x")))
        for _ in range(draw(st.integers(0, 2))):
            argv += ["--set", draw(st.sampled_from(SETS))]
        argv += draw(option("--seed", SEEDS))
        argv += draw(st.sampled_from(([], ["--force"])))
    return argv


@pytest.fixture(scope="module")
def argdir(workdir):
    d = workdir
    (d / "in.csv").write_text("a,b,c,d,e\n1,2,r,512,7\n1,3,w,4096,99999999999999999\n"
                              "2,4,2a,0,8\n")
    (d / "bad.csv").write_text("x\n\x00\x01,,\n")
    (d / "in.lackey").write_text("==1== x\nI  0400d7d4,8\n S 7ff000398,8\n L 7ff000398,4\n")
    (d / "bad.lackey.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(60)))
    (d / "vm.csv").write_text("Timestamp [ms];Memory capacity provisioned [KB];"
                              "Memory usage [KB]\n0;1048576;1000\n300;1048576;nan\n")
    (d / "vmbig.csv").write_text("Timestamp [ms];Memory capacity provisioned [KB];"
                                 "Memory usage [%]\n0;1e300;1e300\n1e300;0;1\n")
    (d / "tiny.toml").write_text(to_toml({
        "run": {"duration": "100ms"},
        "host": {"memory": "64MiB", "policy": "qemu-auto", **BOOT[0]},
        "guest": [{"name": "vm", "memory": "16MiB", "swap": "8MiB", **BOOT[0],
                   "features": ["stats_vq", "auto_balloon"],
                   "workload": {"kind": "phases",
                                "phases": [{"length": "4MiB", "passes": 2}]}}]}))
    return d


@budget(0.25)
@given(data=st.data())
def test_arguments_run_cleanly_or_fail_clearly(argdir, data):
    check(data.draw(arguments(argdir)))
