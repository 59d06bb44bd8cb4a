"""Trace format, readers, expansion model, recorder and CLI (issue 4)."""
from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoballoon.trace import (

    AccessTrace, Envelope, TraceError, cli, expand, info, load, load_envelope, read_csv,

    read_lackey, read_oracle_general, read_vm_csv, save, synth, validate)
from autoballoon.trace.cachesim import ORACLE_GENERAL
from autoballoon.trace.expand import window_pages
from autoballoon.trace.ops import OP_EXIT, OP_FILE, OP_FREE, OP_SYSCALL, OP_WRITE
from autoballoon.trace.stats import working_set_sizes

DATA = Path(__file__).resolve().parent.parent / "data"
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def small_trace(**meta):
    return AccessTrace([0, 5, 5, 10], [0, 3, 1, 3], [OP_WRITE, OP_FILE | OP_SYSCALL, 0, OP_FREE],
                       meta={"source": "test", **meta})


# --- format and storage -------------------------------------------------------------------
def test_access_trace_dtypes_and_footprint():
    t = small_trace()
    assert (t.gap_ns.dtype, t.page.dtype, t.op.dtype) == (np.int64, np.int64, np.uint8)
    assert all(a.flags.c_contiguous and not a.flags.writeable for a in (t.gap_ns, t.page, t.op))
    assert t.footprint == 4 and len(t) == 4 and t.duration_ns == 20


def test_round_trip_access(tmp_path):
    t = synth("zipf", 500, seed=3, accesses=2000, write_fraction=0.3)
    path = save(t, tmp_path / "z.parquet")
    back = load(path)
    assert back.equals(t) and back.footprint == t.footprint
    assert back.meta["params"]["seed"] == 3 and back.meta["licence"]
    assert back.meta["units"]["gap_ns"].startswith("ns")
    assert os.listdir(tmp_path) == ["z.parquet"]          # no temporary file left


def test_round_trip_envelope_and_load_refuses_it(tmp_path):
    env = Envelope([0, 10, 20], [4096, 8192, 0], end_ns=30, provisioned_bytes=[1 << 20] * 3,
                   meta={"source": "test"})
    path = save(env, tmp_path / "e.parquet")
    back = load_envelope(path)
    assert np.array_equal(back.wss_bytes, env.wss_bytes) and back.end_ns == 30
    assert back.rss_bytes is None and back.provisioned_bytes[0] == 1 << 20
    with pytest.raises(TraceError, match="demand envelope.*expand"):
        load(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    save(small_trace(), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(TraceError, match="t.parquet: cannot write .disk full."):
        save(synth("seq", 10), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["t.parquet"]


@pytest.mark.parametrize("gap,page,op,match", [
    ([0, -1], [0, 1], [0, 0],
     r"row 1: column 'gap_ns': expected an integer in \[0, 2\^60\) \(nanoseconds\), got -1"),
    ([0, 0], [0, -2], [0, 0], "row 1: column 'page'"),
    ([0, 0], [0, 1], [0, 9], "row 1: column 'op'"),
    ([0, 0], [0, 1], [0, OP_SYSCALL], "SYSCALL only together with FILE"),
    ([0, 0], [2, 2], [0, OP_FILE], "row 1: column 'op': expected page 2 to keep the kind"),
    ([0], [0, 1], [0, 0], "different lengths"),
    ([0.5], [0], [0], "expected integers"),
])
def test_invalid_traces(gap, page, op, match):
    with pytest.raises(TraceError, match=match):
        AccessTrace(gap, page, op)


def test_validate_and_free_keeps_no_kind():
    t = AccessTrace([0, 0, 0], [1, 1, 1], [OP_FILE, OP_FREE, OP_FILE])
    assert validate(t).equals(t)
    # a trace whose arrays were swapped behind the constructor's back is re-checked
    bad = small_trace()
    op = np.array(bad.op)
    op[2] = 9
    object.__setattr__(bad, "op", op)
    with pytest.raises(TraceError, match=r"row 2: column 'op': expected an access .*got 9"):
        validate(bad)


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(TraceError, match="bad.parquet: not a readable Parquet"):
        load(bad)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"gap_ns": [1]}), plain)
    with pytest.raises(TraceError, match="without autoballoon trace metadata"):
        load(plain)
    # right metadata, wrong column type
    good = save(small_trace(), tmp_path / "g.parquet")
    table = pq.read_table(good)
    table = table.set_column(1, "page", pa.array(["a", "b", "c", "d"]))
    pq.write_table(table, tmp_path / "w.parquet")
    with pytest.raises(TraceError, match="column 'page': expected int64, got string"):
        load(tmp_path / "w.parquet")


# --- synthetic generators -----------------------------------------------------------------
@pytest.mark.parametrize("pattern", ["seq", "rand", "read", "zipf"])
def test_synth_deterministic(pattern):
    a, b = synth(pattern, 300, seed=7, passes=2), synth(pattern, 300, seed=7, passes=2)
    assert a.equals(b) and a.footprint <= 300
    if pattern == "read":
        assert set(np.unique(a.op)) == {OP_FILE | OP_SYSCALL}


# --- libCacheSim readers -----------------------------------------------------------------
def test_oracle_general_blocks_and_objects(tmp_path):
    rec = np.zeros(3, ORACLE_GENERAL)
    rec["time"] = [10, 10, 12]
    rec["obj_id"] = [8, 9, 1000]         # 512-byte sectors: 8,9 share page 1; 1000 -> page 125
    rec["obj_size"] = [512, 8192, 100]
    path = tmp_path / "t.oracleGeneral.bin"
    rec.tofile(path)
    t = read_oracle_general(path)
    # sector 9 + 8192 bytes spans pages 1..3; dense renumbering keeps address order
    assert t.page.tolist() == [0, 0, 1, 2, 3]
    assert t.gap_ns.tolist() == [0, 0, 0, 0, 2 * 10**9]
    assert set(t.op.tolist()) == {OP_FILE | OP_SYSCALL}
    o = read_oracle_general(path, ids="objects")
    assert o.page.tolist() == [0, 1, 2, 3]                  # objects 8 (1 p), 9 (2 p), 1000
    with open(path, "ab") as f:
        f.write(b"\0" * 5)
    with pytest.raises(TraceError, match="truncated oracleGeneral.*record 3"):
        read_oracle_general(path)


def test_csv_reader_and_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("version,time,op,size,lbn\n1,5,28,4096,0\n1,6,2a,512,8\n")
    t = read_csv(p)
    assert t.page.tolist() == [0, 1] and t.gap_ns.tolist() == [0, 10**9]
    assert t.op.tolist() == [OP_FILE | OP_SYSCALL, OP_FILE | OP_SYSCALL | OP_WRITE]
    p.write_text("version,time,op,size,lbn\n1,5,28,4096,0\n1,6,2a,abc,8\n")
    with pytest.raises(TraceError, match=r"t.csv line 3: column 4 \(obj-size\): expected an "
                                         r"integer >= 0, got 'abc'"):
        read_csv(p)
    p.write_text("version,time,op,size,lbn\n1,5,28,4096,0\n1,4,2a,512,8\n")
    with pytest.raises(TraceError, match="line 3: time: expected a time >= the previous"):
        read_csv(p)
    p.write_text("a,b\n1,2\n")
    with pytest.raises(TraceError, match="time-col=2|obj-id-col=5"):
        read_csv(p)


def test_csv_reader_op_col_and_missing_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("version,time,op,size,lbn\n1,5,28,4096,0\n1,6,2a,512,8\n")
    for bad in (-1, 6):
        with pytest.raises(TraceError, match=rf"t.csv: op-col={bad}: expected a column number "
                                             r"in 1\.\.5"):
            read_csv(p, op_col=bad)
    assert read_csv(p, op_col=None).op.tolist() != read_csv(p).op.tolist()   # no writes
    assert read_csv(p, op_col=0).equals(read_csv(p, op_col=None))     # 0: no op column
    with pytest.raises(TraceError, match=r"nope.csv: cannot read"):
        read_csv(tmp_path / "nope.csv")


def test_cloudphysics_csv_and_binary_agree():
    """The two shipped encodings of the same 113,872 requests (sizes differ in 12 % of
    records between them, so page sets differ slightly; request times agree)."""
    base = Path(__file__).resolve().parents[1] / "data" / "cloudphysics"
    if not (base / "cloudPhysicsIO.oracleGeneral.bin").exists():
        pytest.skip("the oracleGeneral encoding of the CloudPhysics sample (libCacheSim's data) "
                    "is not shipped: put it in data/cloudphysics/ to run this")
    c = read_csv(base / "cloudPhysicsIO.csv.gz")
    b = read_oracle_general(base / "cloudPhysicsIO.oracleGeneral.bin")
    assert c.meta["requests"] == b.meta["requests"] == 113_872
    assert c.duration_ns == b.duration_ns == 7200 * 10**9
    # the same request times: every event is stamped with its request's time
    assert np.array_equal(np.unique(np.cumsum(c.gap_ns)), np.unique(np.cumsum(b.gap_ns)))
    # per request: without the size column every 512-byte sector request is one page event,
    # so the csv gives one time per request, and they are the binary's times, in order
    one = read_csv(base / "cloudPhysicsIO.csv.gz", obj_size_col=None)
    per_request = np.cumsum(one.gap_ns)
    assert len(one) == b.meta["requests"] and np.all(np.diff(per_request) >= 0)
    assert np.array_equal(np.unique(per_request), np.unique(np.cumsum(b.gap_ns)))


# --- lackey --------------------------------------------------------------------------------
LACKEY = """==1== Lackey, an example Valgrind tool
I  00401000,3
 L 7ff000ff8,8
 S 00402ffc,8
 M 7ff000ff8,4
I  00401003,2
==1== Counted 1 call to main()
"""


def test_lackey_reader(tmp_path):
    p = tmp_path / "t.lackey"
    p.write_text(LACKEY)
    t = read_lackey(p)
    # pages: code 0x401 (file), stack 0x7ff000ff (anon), 0x402 and 0x403 (store straddles)
    assert t.page.tolist() == [0, 3, 1, 2, 3, 0, 0]
    assert t.op.tolist()[:6] == [OP_FILE, 0, OP_WRITE, OP_WRITE, OP_WRITE, OP_FILE]
    assert t.op[-1] == OP_EXIT and t.gap_ns.tolist()[:6] == [0, 1, 1, 0, 1, 1]
    gz = tmp_path / "t.lackey.gz"
    gz.write_bytes(gzip.compress(LACKEY.encode()))
    assert read_lackey(gz).equals(t)
    p.write_text(LACKEY.replace(" S 00402ffc,8", " X zz"))
    with pytest.raises(TraceError, match=r"t.lackey line 4: expected 'I  ADDR,SIZE'.*got ' X zz'"):
        read_lackey(p)


def test_bundled_lackey_trace_matches_its_source():
    t = read_lackey(DATA / "lackey" / "tiny.lackey.gz")
    assert t.equals(load(DATA / "lackey" / "tiny.parquet"))


# --- per-VM memory CSV and datacenter envelopes ---------------------------------------------
BITBRAINS = ("Timestamp [ms];\tCPU cores;\tMemory capacity provisioned [KB];\tMemory usage [KB]\n"
             "1376314846;\t4;\t1048576;\t524288\n1376315146;\t4;\t1048576;\t262144.5\n")


def test_vm_csv(tmp_path):
    p = tmp_path / "vm.csv"
    p.write_text(BITBRAINS)
    e = read_vm_csv(p)
    assert e.time_ns.tolist() == [0, 300 * 10**9] and e.end_ns == 600 * 10**9
    assert e.wss_bytes.tolist() == [2**29, 2**28 + 512]
    assert e.provisioned_bytes.tolist() == [2**30, 2**30]
    p.write_text(BITBRAINS.replace("262144.5", "lots"))
    with pytest.raises(TraceError, match=r"vm.csv line 3: column 'Memory usage \[KB\]': "
                                         r"expected a number >= 0, got 'lots'"):
        read_vm_csv(p)
    p.write_text("when,cpu\n1,2\n")
    with pytest.raises(TraceError, match="no time column: expected a header naming one"):
        read_vm_csv(p)


def test_bundled_envelopes_golden():
    """Golden working-set summaries (pages) of the day-0 envelopes on a 1 GiB VM."""
    golden = {"alibaba2018": (210327, 239016), "google2019": (75811, 99831),
              "azure_v2": (230858, 240172)}
    for source, (lo, hi) in golden.items():
        d = info(load_envelope(DATA / "envelopes" / f"{source}-day0-1GiB.parquet"))
        assert d["samples"] == 288 and d["median_step_ns"] == 300 * 10**9
        assert (d["wss_pages"]["min"], d["wss_pages"]["max"]) == (lo, hi)


# --- expansion model ----------------------------------------------------------------------
def test_expansion_working_set_matches_envelope():
    """Stated tolerance: each window's distinct pages = the envelope's WSS to within one page
    (rounding bytes to pages); here it is exact, on a real envelope scaled to 1/64: exactly
    the page counts the expansion rounds to (``window_pages``)."""
    env = load_envelope(DATA / "envelopes" / "google2019-day0-1GiB.parquet")
    scale = 1 / 64
    t = expand(env, seed=5, scale=scale)
    ws = working_set_sizes(t, 300 * 10**9)
    want = env.wss_bytes * scale / 4096
    assert len(ws) == len(env)
    assert np.abs(ws - want).max() <= 1.0
    assert np.array_equal(ws, window_pages(env, scale))
    assert t.meta["expansion"]["seed"] == 5 and t.meta["expansion"]["alpha"] == 0.9
    assert expand(env, seed=5, scale=scale).equals(t)
    assert not expand(env, seed=6, scale=scale).equals(t)


def test_working_set_sizes_keep_empty_windows():
    # accesses in windows 0 and 2 of 10 ns; then nothing but a free and the exit up to 50 ns
    t = AccessTrace([1, 2, 20, 20, 7], [0, 1, 0, 1, 0], [OP_WRITE, 0, 0, OP_FREE, OP_EXIT])
    assert t.duration_ns == 50
    assert working_set_sizes(t, 10).tolist() == [2, 0, 1, 0, 0]
    assert working_set_sizes(t, 50).tolist() == [2]


def test_expansion_frees_on_shrink_and_guards_size():
    env = Envelope([0, 10**9, 2 * 10**9], [40960, 8192, 20480], end_ns=3 * 10**9)
    t = expand(env, seed=1, reuse=0.5)
    assert (t.op == OP_FREE).sum() == 8 and set(t.page[t.op == OP_FREE]) == set(range(2, 10))
    kept = expand(env, seed=1, reuse=0.5, free_on_shrink=False)
    assert (kept.op == OP_FREE).sum() == 0
    with pytest.raises(TraceError, match="max_events"):
        expand(env, seed=1, max_events=10)
    with pytest.raises(TraceError, match="unknown parameter"):
        expand(env, seed=1, hotness=3)


# --- golden statistics of the bundled traces ------------------------------------------------
GOLDEN = {  # path: (events, footprint pages, distinct pages)
    "cloudphysics/cloudphysics-io.parquet": (1141869, 269210, 269210),
    "lackey/tiny.parquet": (124692, 123, 123),
    "traces/make-j2.parquet": (123127, 16616, 16616),
    "traces/python-unittest.parquet": (39628, 8267, 8267),
    "traces/sqlite.parquet": (34147, 8250, 8250),
    "traces/sort.parquet": (45289, 18605, 18605),
    "traces/xz.parquet": (3484469, 33252, 33252),
    "traces/python-startup.parquet": (28436, 15090, 15090),
    "traces/kbuild-tiny.parquet": (5747058, 66030, 64530),
    "traces/kbuild-defconfig-mm.parquet": (6248790, 70452, 70447),
}


@pytest.mark.parametrize("rel", sorted(GOLDEN))
def test_bundled_trace_golden_info(rel):
    t = load(DATA / rel)
    d = info(t)
    assert (d["events"], d["footprint_pages"], d["distinct_pages"]) == GOLDEN[rel]
    assert t.meta.get("source") and t.meta.get("licence") and t.meta.get("how")
    if rel.startswith("traces/"):
        assert t.op[-1] == OP_EXIT and t.meta["exact"] and t.meta["modelled"]


@pytest.mark.parametrize("name", ["kbuild-tiny", "kbuild-defconfig-mm"])
def test_kbuild_traces_say_what_they_missed(name):
    m = load(DATA / "traces" / f"{name}.parquet").meta
    blind, reads = m["blind_spots"], m["file_reads"]
    assert blind["processes_exited"] == blind["processes_seen"] + blind["processes_missed"]
    assert blind["census_overruns"] == 0 and reads["events_lost"] == 0
    assert reads["bytes"] > 0.99 * blind["read_bytes_all"]      # tracefs saw the read()s
    assert m["versions"]["linux-source-6.1"].startswith("6.1.") and "GPL-2.0" in m["licence"]


def test_cloudphysics_golden_mix():
    d = info(load(DATA / "cloudphysics" / "cloudphysics-io.parquet"))
    assert d["write_fraction"] == 0.5746 and d["file_fraction"] == 1.0
    assert d["duration_ns"] == 7200 * 10**9


# --- repeat ---------------------------------------------------------------------------------
def test_repeat_with_fresh_files_renames_only_read_write_file_pages():
    """Pages 0 (anon), 1 (mapped file: a program), 2 and 3 (read()/write() files), 3 times:
    repetitions 2 and 3 reach the read()/write() pages under new numbers 4, 5 and 6, 7."""
    from autoballoon.trace.repeat import repeat
    t = AccessTrace([1, 2, 3, 4, 5], [0, 1, 2, 3, 0],
                    [OP_WRITE, OP_FILE, OP_FILE | OP_SYSCALL,
                     OP_FILE | OP_SYSCALL | OP_WRITE, OP_EXIT])
    r = repeat(t, 3, fresh_files=True)
    assert r.page.tolist() == [0, 1, 2, 3, 0, 0, 1, 4, 5, 0, 0, 1, 6, 7, 0]
    assert r.op.tolist() == t.op.tolist() * 3 and r.gap_ns.tolist() == [1, 2, 3, 4, 5] * 3
    assert r.footprint == 8 and r.meta["repeat"] == 3
    assert repeat(t, 3).page.tolist() == t.page.tolist() * 3     # same files every time
    assert repeat(t, 1) is t
    with pytest.raises(TraceError, match="repeat expected an integer >= 1"):
        repeat(t, 0)


# --- recorder ------------------------------------------------------------------------------
def test_record_real_program():
    from autoballoon.trace import record
    code = ("import time; a = bytearray(16 << 20)\n"
            "for i in range(0, len(a), 4096): a[i] = 1\n"
            "time.sleep(0.25); del a; time.sleep(0.15)")
    t, status = record([sys.executable, "-c", code], interval_ns=50_000_000)
    assert status == 0 and t.op[-1] == OP_EXIT
    assert t.footprint >= 4096                    # the 16 MiB buffer, at least
    assert (t.op == OP_FREE).sum() >= 4000        # ... freed by `del a`
    assert 0.3e9 < t.duration_ns < 5e9


def test_recorder_picks_new_then_recent_pages_and_reuses_freed_numbers(monkeypatch):
    """One process, one anonymous rw mapping, four rounds fed through fake /proc reads: all
    pages new (all emitted); 3 referenced of 10 old (the lowest addresses, all equally recent);
    the mapping shrinks to 5 pages (5 frees) with 1 referenced (the most recent, lowest);
    it grows back with 6 referenced: the 5 new pages (taking the freed numbers, the last freed
    first) and the most recent old one."""
    import autoballoon.trace.record  # noqa: F401  (the module, not the function)
    rec_mod = sys.modules["autoballoon.trace.record"]
    monkeypatch.setattr(rec_mod, "cpu_ns", lambda pid: None)
    rec = rec_mod.Recorder()
    state = {}

    def smaps(pid):
        m = rec_mod.Mapping(16, 16 + state["n"], "rw-p", 0, None)
        m.rss_kb, m.referenced_kb = 4 * state["n"], 4 * state["ref"]
        return [m]
    rec.read_smaps = smaps
    rec.read_pagemap = lambda pid, vmas: [np.full(state["n"], rec_mod.PRESENT, np.uint64)]
    rec.clear_refs = lambda pid: None
    rec.sample_fds = lambda pid, out: None
    seen = []
    for n, ref in ((10, 10), (10, 3), (5, 1), (10, 6)):
        state.update(n=n, ref=ref)
        iv = rec.sample([100])
        rec_mod.mark(iv, rec)
        _, pages, ops = rec_mod.events_of(iv, 0, 10)
        seen.append((pages[ops == OP_FREE].tolist(), pages[ops == OP_WRITE].tolist()))
    assert seen == [([], list(range(10))), ([], [0, 1, 2]), ([5, 6, 7, 8, 9], [0]),
                    ([], [0, 5, 6, 7, 8, 9])]
    assert rec.table[(100 << 36) | 21] == 9 and rec.table[(100 << 36) | 25] == 5


def test_census_summary_tree_pid_reuse_and_orphans():
    """Exit records (receipt time, tid, tgid, ppid, comm, elapsed us, rss KiB, rchar, wchar,
    read calls, faults) in exit order. Recorder 10, root 20, recording from 40 s. Pid 30 is
    used twice: by a child of an unrelated process 5, minutes later by the root's child (a sh,
    whose child 31 exits first). 40 is an orphan re-parented to the recorder, 50 the recorder's
    own other child, 60 a thread of 21, 70 a child of the recorder from before the recording.
    A runner 90 and its bash 91, unrelated, killed together (the parent's record comes first);
    pid 90 is later reused by the root's child mkdir."""
    from autoballoon.trace.record import census_summary
    s = 10**9
    recs = [(100 * s, 30, 30, 5, "other", 1_000_000, 400, 0, 0, 0, 9),
            (400 * s, 31, 31, 30, "cc1", 2000, 8000, 4096, 0, 1, 500),
            (401 * s, 30, 30, 20, "sh", 5_000_000, 800, 0, 0, 0, 50),
            (500 * s, 60, 21, 20, "make", 100_000_000, 0, 0, 0, 0, 0),
            (501 * s, 21, 21, 20, "make", 150_000_000, 2000, 10, 0, 1, 90),
            (600 * s, 40, 40, 10, "sleep", 300_000_000, 1000, 0, 0, 0, 10),
            (650 * s, 50, 50, 10, "tracker", 400_000_000, 1000, 0, 0, 0, 10),
            (700 * s, 70, 70, 10, "old", 690_000_000, 1000, 0, 0, 0, 10),
            (700 * s, 90, 90, 1, "runner", 4_000_000_000, 5000, 0, 0, 0, 10),
            (700 * s + 1000, 91, 91, 90, "bash", 3_999_000_000, 5000, 0, 0, 0, 10),
            (850 * s, 90, 90, 20, "mkdir", 10_000, 400, 0, 0, 0, 5),
            (900 * s, 20, 20, 10, "make", 850_000_000, 3000, 0, 0, 0, 100)]
    seen = {20: [60 * s, 450 * s], 21: [360 * s], 40: [350 * s], 30: [99 * s + s // 2]}
    d = census_summary(recs, seen, root=20, recorder=10, others={50}, t0=40 * s)
    assert d["processes_exited"] == 6 and d["threads_exited"] == 1
    assert d["processes_missed"] == 3 and d["processes_seen"] == 3     # the pid 30 seen at
    assert d["missed_by_command"] == {"cc1": 1, "sh": 1, "mkdir": 1}   # 99.5 s was "other"
    assert d["missed_rss_pages_max"] == 2000 and d["missed_rss_pages_sum"] == 2300
    assert d["missed_largest"][0] == ["cc1", 2.0, 2000] and d["missed_rss_pages_median"] == 200
    assert d["missed_read_bytes"] == 4096 and d["read_bytes_all"] == 4106
    assert d["missed_elapsed_ms_max"] == 5000.0 and d["missed_faults_sum"] == 555


def test_record_counts_processes_it_missed():
    """Five 1 ms processes under a 200 ms interval: the census (taskstats, root only) sees them
    exit, the sampling never does."""
    from autoballoon.trace import record
    t, _ = record(["sh", "-c", "for i in 1 2 3 4 5; do /bin/true; done; sleep 0.3"],
                  interval_ns=200_000_000)
    assert t.meta["pids_sampled"] >= 1
    blind = t.meta["blind_spots"]
    if isinstance(blind, str):
        pytest.skip(f"no exit census here: {blind}")
    assert blind["missed_by_command"].get("true") == 5
    assert blind["processes_exited"] == blind["processes_seen"] + blind["processes_missed"]
    assert blind["processes_seen"] >= 1 and blind["census_overruns"] == 0


def test_file_read_trace_parse_pairs_batches_with_read_returns():
    from autoballoon.trace.record import FileReadTrace
    lines = [
        b"  head-15165   [000] .....  7452.615400: mm_filemap_get_pages: dev=254:0 ino=3f922 ofs=0-4095",
        b"  head-15165   [000] .....  7452.615774: sched_process_exec: filename=/usr/bin/head pid=15165",
        b"  head-15165   [000] .....  7452.621130: mm_filemap_get_pages: dev=254:0 ino=20d2f1 ofs=0-8191",
        b"  cc1-15170    [001] .....  7452.621131: mm_filemap_get_pages: dev=254:0 ino=a ofs=0-1048575",
        b"  head-15165   [000] .....  7452.621133: sys_read -> 0x1388",
        b"  cc1-15170    [001] .....  7452.621140: mm_filemap_get_pages: dev=254:0 ino=a ofs=126976-1048575",
        b"  cc1-15170    [001] .....  7452.621150: sys_read -> 0x20000",
        b"  check-local-exp-99 [000] .....  7452.700000: sys_read -> 0x10",
        b"  dd-7         [000] .....  7452.800000: mm_filemap_get_pages: dev=8:1 ino=ff ofs=40960-81919",
        b"  dd-7         [000] .....  7452.900000: sys_pread64 -> 0x9c40",
        b"  sh-8         [000] .....  7453.000000: mm_filemap_get_pages: dev=8:1 ino=ee ofs=0-131071",
    ]
    reads = FileReadTrace.parse(lines)
    ns = 7452 * 10**9
    assert reads == [
        (ns + 615400000, (254, 0), 0x3f922, 0, 0, False, 0),    # exec's header read: as asked
        (ns + 621133000, (254, 0), 0x20d2f1, 0, 1, True, 5000),  # 5000 bytes: pages 0-1
        (ns + 621150000, (254, 0), 0xa, 0, 31, True, 131072),    # two batches, 32 pages
        (ns + 900000000, (8, 1), 0xff, 10, 19, True, 40000),     # pread of 40000 bytes at 40960
        (7453 * 10**9, (8, 1), 0xee, 0, 31, False, 0)]           # never returned: as asked


def test_record_trace_reads_sees_short_lived_readers(tmp_path):
    """Twenty 1 ms cat processes read a 40 KiB file: the sampling never sees them, tracefs
    reads do (root with tracefs only)."""
    from autoballoon.trace import record
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(40960))
    cmd = f"for i in $(seq 20); do cat {data} > /dev/null; done; sleep 0.3"
    try:
        t, _ = record(["sh", "-c", cmd], interval_ns=200_000_000, trace_reads=True)
    except TraceError as e:
        pytest.skip(str(e))
    reads = t.meta["file_reads"]
    assert reads["events_lost"] == 0 and reads["bytes"] >= 20 * 40960
    file_pages = np.unique(t.page[(t.op & OP_SYSCALL) != 0])
    assert len(file_pages) >= 10                  # the file's 10 pages (and cat's libraries)
    assert not any(d.startswith("autoballoon-") for d in os.listdir("/sys/kernel/tracing/instances"))


def test_record_needs_a_command():
    from autoballoon.trace import record
    with pytest.raises(TraceError, match="expected a command"):
        record([])


# --- CLI -----------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, meaning", [([], None), (["--trace-reads"], True),
                                           (["--no-trace-reads"], False)])
def test_cli_record_passes_trace_reads(tmp_path, monkeypatch, flag, meaning):
    """`trace record --trace-reads` requires tracefs, `--no-trace-reads` never uses it, and
    without either the recorder decides (tracefs when usable)."""
    import autoballoon.trace.record  # noqa: F401  (the module, not the function)
    rec_mod = sys.modules["autoballoon.trace.record"]
    seen = {}

    def fake_record(command, interval_ns, trace_reads):
        seen.update(command=command, trace_reads=trace_reads)
        return AccessTrace(np.array([0], np.int64), np.array([0], np.int64),
                           np.array([OP_EXIT], np.uint8)), 0
    monkeypatch.setattr(rec_mod, "record", fake_record)
    out = tmp_path / "t.parquet"
    assert cli.main(["trace", "record", "--out", str(out), *flag, "--", "true"]) == 0
    assert seen == {"command": ["true"], "trace_reads": meaning} and out.exists()


def test_cli_record_no_trace_reads_takes_fd_positions(tmp_path):
    """A real recording with --no-trace-reads: the metadata says reads came from fd positions
    (also as root with tracefs, where the default would take them from tracefs)."""
    out = tmp_path / "t.parquet"
    assert cli.main(["trace", "record", "--out", str(out), "--interval", "50ms",
                     "--no-trace-reads", "--", "sh", "-c", "sleep 0.2"]) == 0
    assert str(load(out).meta["file_reads"]).startswith("fd positions")


def test_cli_synth_info_convert_expand(tmp_path, capsys):
    z = tmp_path / "z.parquet"
    assert cli.main(["trace", "synth", "zipf", str(z), "--pages", "100", "--seed", "2"]) == 0
    assert cli.main(["trace", "info", str(z)]) == 0
    out = capsys.readouterr().out
    assert "footprint" in out and "wss per" in out
    env = tmp_path / "e.parquet"
    assert cli.main(["trace", "convert", "--from", "datacenter", "azure_v2", str(env),
                     "--memory", "64MiB"]) == 0
    assert cli.main(["trace", "info", str(env), "--json"]) == 0
    assert '"samples": 288' in capsys.readouterr().out
    assert cli.main(["trace", "info", str(env.with_name("nope.parquet"))]) == 2
    assert cli.main(["trace", "expand", str(env), str(tmp_path / "x.parquet"), "--seed", "1",
                     "--scale", "0.05", "--reuse", "0"]) == 0
    assert load(tmp_path / "x.parquet").footprint > 0
    lk = tmp_path / "t.lackey"
    lk.write_text(LACKEY)
    assert cli.main(["trace", "convert", "--from", "lackey", str(lk), str(tmp_path / "l.parquet"),
                     "--source", "unit test"]) == 0
    assert load(tmp_path / "l.parquet").meta["source"] == "unit test"
    assert "nope.parquet" in capsys.readouterr().err


def test_cli_duration_parsing():
    assert cli.duration_ns("200ms") == 200_000_000 and cli.duration_ns("1.5s") == 1_500_000_000
    assert cli.size_bytes("1GiB") == 2**30
    with pytest.raises(argparse.ArgumentTypeError,
                       match=r"^expected a duration with a unit .*got '200'$"):
        cli.duration_ns("200")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected a size .*got '1.5 lots'$"):
        cli.size_bytes("1.5 lots")


def test_cli_bad_duration_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["trace", "info", "x.parquet", "--window", "200"])
    assert e.value.code == 2
    assert "argument --window: expected a duration with a unit" in capsys.readouterr().err


# --- fuzzing: readers raise TraceError or return a valid trace, never anything else ---------
LACKEY_LINES = st.lists(st.one_of(
    st.sampled_from(["I  00401000,3", " L 7ff000ff8,8", " S 0,1", " M ffffffffffffffff,4",
                     "==1== hi", "", " L 12,0"]),
    st.text(alphabet="IL SM0123456789abcdefx,=\t", max_size=20)), max_size=12)


@FUZZ
@given(lines=LACKEY_LINES)
def test_fuzz_lackey(tmp_path, lines):
    p = tmp_path / "f.lackey"
    p.write_text("\n".join(lines))
    try:
        t = read_lackey(p)
        assert t.op[-1] == OP_EXIT
    except TraceError as e:
        assert "f.lackey" in str(e)


CSV_CELLS = st.one_of(st.integers(-5, 2**64), st.sampled_from(["", "abc", "2a", "28", "1e300",
                                                              "nan", " 7", "-0"]))


@FUZZ
@given(rows=st.lists(st.lists(CSV_CELLS, min_size=0, max_size=6), max_size=6))
def test_fuzz_csv(tmp_path, rows):
    p = tmp_path / "f.csv"
    p.write_text("version,time,op,size,lbn\n" + "\n".join(",".join(map(str, r)) for r in rows))
    try:
        read_csv(p)
    except TraceError as e:
        assert "f.csv" in str(e)


@FUZZ
@given(data=st.binary(max_size=24 * 5 + 7))
def test_fuzz_oracle_general(tmp_path, data):
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    try:
        read_oracle_general(p)
    except TraceError as e:
        assert "f.bin" in str(e)


@FUZZ
@given(rows=st.lists(st.lists(CSV_CELLS, min_size=0, max_size=4), max_size=5),
       sep=st.sampled_from([",", ";", "\t"]))
def test_fuzz_vm_csv(tmp_path, rows, sep):
    p = tmp_path / "f.csv"
    p.write_text(sep.join(["timestamp", "mem provisioned", "mem used"]) + "\n"
                 + "\n".join(sep.join(map(str, r)) for r in rows))
    try:
        read_vm_csv(p)
    except TraceError as e:
        assert "f.csv" in str(e)


@FUZZ
@given(cut=st.integers(0, 3000), flip=st.integers(0, 3000))
def test_fuzz_parquet_corruption(tmp_path, cut, flip):
    good = save(synth("rand", 50, seed=1), tmp_path / "g.parquet").read_bytes()
    data = bytearray(good[:cut] if cut < len(good) else good)
    if flip < len(data):
        data[flip] ^= 0xFF
    p = tmp_path / "f.parquet"
    p.write_bytes(bytes(data))
    try:
        load(p)
    except TraceError as e:
        assert "f.parquet" in str(e)
