"""Recorder: run a real program (and its children) and record its page accesses on this machine.

Each interval (default 200 ms) the recorder, for every process of the program's tree that has
run since its last sample (CPU time in ``/proc/PID/task/*/schedstat``):
1. reads ``/proc/PID/smaps`` — per mapping (VMA): ``Rss`` and ``Referenced`` (pages whose
   accessed bit was set since the last ``clear_refs``);
2. reads ``/proc/PID/pagemap`` for mappings with resident pages — per 4 KiB page: present,
   swapped, file-backed or anonymous;
3. writes ``1`` to ``/proc/PID/clear_refs`` to clear the accessed bits for the next interval;
4. reads ``/proc/PID/fdinfo`` — the file position of each open regular file.
The recorder is a child subreaper, so grandchildren orphaned by their parent stay in the tree.
Besides the sampling, when the machine allows it (root): file reads come from tracefs
(``FileReadTrace``: every read()/pread() of the page cache by the tree, with device, inode and
page range, also from processes and descriptors shorter than an interval), and an exit census
from taskstats (``ExitCensus``) counts the processes the sampling never saw and bounds what
they touched (``blind_spots`` in the metadata).

What is exact and what is modelled (also written into the trace's metadata):
- exact (at interval granularity): which pages each process had resident — so first touches
  and frees/unmaps — and their kind (anon, or file identified by device, inode and offset, so a
  library shared by many processes is one set of file pages); how many pages of each mapping
  were referenced in the interval; the interval lengths (wall clock); the file pages read()
  (tracefs: each read's page range, the last page ±1 when it starts inside a page; without
  tracefs: fd position deltas, taken as sequential) and write() (fd position deltas);
- modelled: *which* resident pages were referenced when fewer than all were: newly resident
  pages first (a fault sets the accessed bit), then the most recently referenced, then by
  address (a stable hot set); a resident page never chosen never appears in the trace; reads
  vs writes: anon pages and pages of writable shared mappings count as written, others read;
  within an interval each referenced page gets one access, in page order, evenly spaced over
  the interval;
- missed: the memory of processes that live less than an interval (counted, with their
  high-water RSS, by the census), writes through descriptors shorter than an interval and
  ``pwrite``, reads without tracefs the same way, kernel memory, re-references within one
  interval.
Per-page accessed bits (idle page tracking) and soft-dirty are not available on these
machines; pagemap PFNs are not needed (pages are identified by address or file offset).
"""
from __future__ import annotations

import ctypes
import os
import re
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from autoballoon.trace.format import PAGE_SIZE, AccessTrace, TraceError
from autoballoon.trace.ops import OP_EXIT, OP_FILE, OP_FREE, OP_SYSCALL, OP_WRITE

PR_SET_CHILD_SUBREAPER = 36
PRESENT, SWAPPED, FILE_SHARED = 1 << 63, 1 << 62, 1 << 61
VMA = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$")
ANON_KEY, FILE_KEY = 0, 1 << 62           # key spaces: (pid, vpage) and (file id, offset)
HEX = set("0123456789abcdef")
EMPTY = np.zeros(0, np.int64)


@dataclass
class Mapping:
    start: int                     # first virtual page
    end: int                       # one past the last
    perms: str
    offset: int                    # file offset in pages
    file_id: int | None            # None: anonymous
    rss_kb: int = 0
    referenced_kb: int = 0


@dataclass
class Interval:
    """What one sampling round saw: referenced pages (with op codes) and freed pages."""
    pages: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    freed: list = field(default_factory=list)


def _subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass                       # then orphaned grandchildren are lost; said in the metadata


def descendants(root: int) -> list[int]:
    """PIDs whose parent chain reaches ``root`` (excluding root itself): from each tree
    process's ``/proc/PID/task/TID/children`` (CONFIG_PROC_CHILDREN), which costs a few reads
    per tree process; without it, from every process's ``/proc/PID/stat``."""
    if not _HAS_CHILDREN:
        return _descendants_by_scan(root)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(c) for c in f.read().split()]
                out.extend(kids)
                todo.extend(kids)
        except (FileNotFoundError, ProcessLookupError):
            continue                    # exited; its children are re-parented to the subreaper
    return sorted(set(out))


def _descendants_by_scan(root: int) -> list[int]:
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parent[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(out)


_HAS_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


# --- exit census (taskstats) ------------------------------------------------------------------
class ExitCensus:
    """Every task that exits on the machine while recording, from the kernel's taskstats
    interface (generic netlink family ``TASKSTATS``, per-CPU exit records; CONFIG_TASKSTATS and
    CONFIG_TASK_XACCT): pid, thread group, parent at exit, command, elapsed time, high-water RSS,
    page faults and read()/write() byte counts. It measures what the sampling misses — processes
    that live less than an interval — independently of the sampling. Where taskstats is missing
    or refused (no netlink, another network namespace), ``start()`` returns None and the
    trace's metadata says so."""

    NETLINK_GENERIC, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME = 16, 0x10, 3, 2
    CTRL_ATTR_FAMILY_ID, TASKSTATS_CMD_GET, TASKSTATS_CMD_NEW, REGISTER_CPUMASK = 1, 1, 2, 3
    DEREGISTER_CPUMASK, TYPE_PID, TYPE_STATS, TYPE_AGGR_PID, SO_RCVBUFFORCE = 4, 1, 3, 4, 33
    # offsets in struct taskstats (include/uapi/linux/taskstats.h; ac_tgid needs version >= 12)
    OFF_COMM, OFF_IDS, OFF_TIMES, OFF_TGID, MIN_VERSION = 80, 120, 144, 368, 12

    def __init__(self, sock: socket.socket, family: int, cpus: bytes):
        self.sock, self.family, self.cpus = sock, family, cpus
        self.records: list[tuple] = []       # (receipt time ns, tid, tgid, ppid, comm, ...)
        self.lost = 0                        # receive-buffer overruns (ENOBUFS)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="taskstats", daemon=True)

    @classmethod
    def start(cls) -> "ExitCensus | None":
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, cls.NETLINK_GENERIC)
        except (OSError, AttributeError):
            return None
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, cls.SO_RCVBUFFORCE, 64 << 20)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
            sock.bind((0, 0))
            sock.settimeout(2.0)
            cls._send(sock, cls.GENL_ID_CTRL, cls.CTRL_CMD_GETFAMILY,
                      cls._attr(cls.CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0"))
            family = None
            for mtype, body in cls._messages(sock.recv(65536)):
                if mtype == cls.GENL_ID_CTRL:
                    attrs = cls._attrs(body[4:])
                    family = struct.unpack("=H", attrs[cls.CTRL_ATTR_FAMILY_ID][:2])[0]
            if family is None:
                raise OSError("no TASKSTATS family")
            cpus = f"0-{os.cpu_count() - 1}".encode() + b"\0"
            cls._send(sock, family, cls.TASKSTATS_CMD_GET, cls._attr(cls.REGISTER_CPUMASK, cpus))
            for mtype, body in cls._messages(sock.recv(65536)):   # the ACK (an nlmsgerr)
                if mtype == 2 and struct.unpack_from("=i", body)[0] != 0:
                    raise OSError("taskstats refused the CPU mask registration")
            sock.settimeout(0.2)
        except (OSError, KeyError, struct.error):
            sock.close()
            return None
        census = cls(sock, family, cpus)
        census.thread.start()
        return census

    def stop(self) -> list[tuple]:
        time.sleep(0.05)                       # let the last exit records arrive
        self.stopping = True
        self.thread.join()
        try:
            self._send(self.sock, self.family, self.TASKSTATS_CMD_GET,
                       self._attr(self.DEREGISTER_CPUMASK, self.cpus))
        except OSError:
            pass
        self.sock.close()
        return self.records

    def _run(self) -> None:
        while not self.stopping:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as e:               # ENOBUFS: the kernel dropped records
                if e.errno == 105:
                    self.lost += 1
                    continue
                return
            now = time.monotonic_ns()
            for mtype, body in self._messages(data):
                if mtype != self.family or body[0] != self.TASKSTATS_CMD_NEW:
                    continue
                nested = self._attrs(body[4:]).get(self.TYPE_AGGR_PID)
                if nested is None:             # AGGR_TGID: a thread group's summary
                    continue
                st = self._attrs(nested).get(self.TYPE_STATS)
                if st is None or struct.unpack_from("=H", st)[0] < self.MIN_VERSION:
                    continue
                comm = st[self.OFF_COMM:self.OFF_COMM + 32].split(b"\0")[0].decode(errors="replace")
                _, _, tid, ppid, _ = struct.unpack_from("=5I", st, self.OFF_IDS)
                (etime_us, _, _, minflt, majflt, _, _, hiwater_rss_kb, _, read_char, write_char,
                 read_calls, _) = struct.unpack_from("=13Q", st, self.OFF_TIMES)
                tgid = struct.unpack_from("=I", st, self.OFF_TGID)[0]
                self.records.append((now, tid, tgid, ppid, comm, etime_us, hiwater_rss_kb,
                                     read_char, write_char, read_calls, minflt + majflt))

    # --- netlink framing ----------------------------------------------------------------------
    @staticmethod
    def _attr(kind: int, payload: bytes) -> bytes:
        n = 4 + len(payload)
        return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)

    @staticmethod
    def _attrs(buf: bytes) -> dict[int, bytes]:
        out, i = {}, 0
        while i + 4 <= len(buf):
            n, kind = struct.unpack_from("=HH", buf, i)
            if n < 4:
                break
            out[kind & 0x3FFF] = buf[i + 4:i + n]
            i += (n + 3) & ~3
        return out

    @staticmethod
    def _send(sock, family: int, cmd: int, attrs: bytes) -> None:
        body = struct.pack("=BBH", cmd, 1, 0) + attrs
        sock.send(struct.pack("=IHHII", 16 + len(body), family, 1 | 4, 0, 0) + body)

    @staticmethod
    def _messages(data: bytes):
        i = 0
        while i + 16 <= len(data):
            n, mtype = struct.unpack_from("=IH", data, i)
            if n < 16:
                break
            yield mtype, data[i + 16:i + n]
            i += (n + 3) & ~3


# --- file reads from tracefs ------------------------------------------------------------------
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
READ_EXITS = ("sys_exit_read", "sys_exit_pread64", "sys_exit_readv", "sys_exit_preadv",
              "sys_exit_preadv2")
TRACE_LINE = re.compile(rb"-(\d+)\s+\[\d+\]\s+\S+\s+(\d+)\.(\d+): (.*)$")
GET_PAGES = re.compile(rb"mm_filemap_get_pages: dev=(\d+):(\d+) ino=([0-9a-f]+) ofs=(\d+)-(\d+)")
SYS_EXIT = re.compile(rb"sys_\w+ -> 0x([0-9a-f]+)$")


class FileReadTrace:
    """Every read of the page cache by the recorded tree, from a private tracefs instance:
    ``filemap:mm_filemap_get_pages`` (device, inode and page range of each batch a read()
    takes from the page cache — also for processes and file descriptors that live less than an
    interval, and for pread) paired with the read's ``syscalls:sys_exit_read`` (and pread64,
    readv, preadv, preadv2) of the same thread, whose return value says how many bytes it
    read: pages [first batch's page, page of first page + bytes - 1] (exact when the read
    starts on a page boundary, else one page short at most). Batches outside a read syscall
    (exec reading the binary's header, splice, sendfile) count their requested range. Only the
    tree: the instance's ``set_event_pid`` holds the recorder with ``event-fork`` (children
    are added as they fork) and every event is filtered ``common_pid != `` each of the
    recorder's threads. A thread
    copies the instance's ``trace_pipe`` to a temporary file; events the kernel drops (buffer
    overrun) are counted in the metadata."""

    def __init__(self, root: str, name: str):
        self.dir = f"{root}/instances/{name}"
        self.pid = os.getpid()
        self.out = tempfile.TemporaryFile()
        self.stopping = False
        self.thread = threading.Thread(target=self._copy, name="tracefs", daemon=True)

    @classmethod
    def start(cls) -> "FileReadTrace":
        root = next((r for r in TRACEFS if os.path.isdir(f"{r}/instances")), None)
        if root is None:
            raise TraceError("record: file reads from tracefs need it mounted (as root: mount "
                             "-t tracefs nodev /sys/kernel/tracing)")
        self = cls(root, f"autoballoon-{os.getpid()}")
        try:
            os.mkdir(self.dir)
            self._set("tracing_on", "0")
            self._set("trace_clock", "mono")          # = time.monotonic_ns()
            self._set("buffer_size_kb", "16384")
            self._set("options/event-fork", "1")
            self.pipe = os.open(f"{self.dir}/trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
            # the copying thread exists before set_event_pid, so event-fork does not add it;
            # the recorder's threads are filtered out anyway (reading trace_pipe is a read)
            self.thread.start()
            mine = " && ".join(f"common_pid != {tid}" for tid in (self.pid, self.thread.native_id))
            events = ["filemap/mm_filemap_get_pages", "sched/sched_process_exec",
                      *(f"syscalls/{e}" for e in READ_EXITS)]
            for e in events:
                # a 1-byte read is a shell's `read` on a pipe, byte by byte (a 1-byte file read
                # still shows as its page batch)
                ret = " && ret > 1" if e.startswith("syscalls/") else ""
                self._set(f"events/{e}/filter", mine + ret)
                self._set(f"events/{e}/enable", "1")
            self._set("set_event_pid", str(self.pid))
            self._set("tracing_on", "1")
        except OSError as e:
            self.stopping = True
            if self.thread.is_alive():
                self.thread.join()
            self._remove()
            raise TraceError(f"record: cannot set up tracefs instance {self.dir} ({e})") from None
        return self

    def _set(self, name: str, value: str) -> None:
        with open(f"{self.dir}/{name}", "w") as f:
            f.write(value)

    def _copy(self) -> None:
        while True:
            try:
                data = os.read(self.pipe, 1 << 20)
            except BlockingIOError:
                if self.stopping:
                    return
                time.sleep(0.05)
                continue
            if not data:
                return
            self.out.write(data)

    def _lost(self) -> int:
        lost = 0
        for cpu in os.listdir(f"{self.dir}/per_cpu"):
            with open(f"{self.dir}/per_cpu/{cpu}/stats") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("overrun", "dropped events"):
                        lost += int(value)
        return lost

    def _remove(self) -> None:
        try:
            self._set("tracing_on", "0")
            self._set("events/enable", "0")
            for e in os.listdir(f"{self.dir}/events"):   # filters would keep the instance busy
                for ev in (os.listdir(f"{self.dir}/events/{e}")
                           if os.path.isdir(f"{self.dir}/events/{e}") else ()):
                    path = f"{self.dir}/events/{e}/{ev}/filter"
                    if os.path.exists(path):
                        with open(path) as f:
                            busy = f.read().strip() != "none"
                        if busy:
                            self._set(f"events/{e}/{ev}/filter", "0")
            os.rmdir(self.dir)
        except OSError:
            pass

    def stop(self, rec: "Recorder", rounds: list, others: set[int]) -> dict:
        """Stop tracing, add each read's pages to the round it ended in; returns statistics."""
        try:
            self._set("tracing_on", "0")
            self.stopping = True
            self.thread.join()
            lost = self._lost()
        finally:
            os.close(self.pipe)
            self._remove()
        self.out.seek(0)
        reads = self.parse(self.out)
        self.out.close()
        stats = {"how": "tracefs filemap:mm_filemap_get_pages + syscalls:sys_exit_read "
                        "(pread64, readv, preadv, preadv2) of the tree; see "
                        "autoballoon.trace.record.FileReadTrace",
                 "reads": len(reads), "outside_read_syscalls": sum(1 for r in reads if not r[5]),
                 "bytes": sum(r[6] for r in reads), "pages": sum(r[4] - r[3] + 1 for r in reads),
                 "events_lost": lost}
        if not rounds or not reads:
            return stats
        ends = np.array([end for _, end in rounds], np.int64)
        when = np.minimum(np.searchsorted(ends, [r[0] for r in reads]), len(rounds) - 1)
        fid = np.array([rec.file_id(r[1], r[2]) for r in reads], np.int64)
        first = np.array([r[3] for r in reads], np.int64)
        n = np.array([r[4] - r[3] + 1 for r in reads], np.int64)
        start = np.repeat(np.cumsum(n) - n, n)
        keys = FILE_KEY | (np.repeat(fid, n) << 36) | (np.repeat(first, n)
                                                         + np.arange(n.sum()) - start)
        pages = rec.number(keys, np.ones(len(keys), bool))      # numbered in time order
        rnd = np.repeat(when, n)                  # non-decreasing: reads are in time order
        cuts = np.flatnonzero(np.diff(rnd)) + 1
        for i, mine in zip(rnd[np.r_[0, cuts]].tolist(), np.split(pages, cuts)):
            rounds[i][0].pages.append(mine)
            rounds[i][0].ops.append(np.full(len(mine), OP_FILE | OP_SYSCALL, np.uint8))
        return stats

    @staticmethod
    def parse(lines) -> list[tuple]:
        """trace_pipe text -> reads (time ns, (major, minor), inode, first page, last page,
        inside a read syscall, bytes)."""
        pending: dict[int, list] = {}             # tid -> get_pages batches of the current read
        reads = []

        def flush(tid: int, t: int, ret: int | None) -> None:
            batches = pending.pop(tid, None)
            if not batches:
                return
            dev, ino, first, last_req, _ = batches[0]
            if ret is None:                       # not a read syscall: the requested ranges
                for d, i, a, b, tb in batches:
                    reads.append((tb, d, i, a, b, False, 0))
                return
            # the bytes read from the first batch's page on (a read starting inside that page
            # reaches one page further at most); at least up to the last batch, at most as asked
            last = max(batches[-1][2], (first * PAGE_SIZE + ret - 1) // PAGE_SIZE)
            reads.append((t, dev, ino, first, min(last, max(last_req, batches[-1][2])), True, ret))

        for line in lines:
            m = TRACE_LINE.search(line.rstrip(b"\n"))
            if not m:
                continue
            tid = int(m.group(1))
            t = int(m.group(2)) * 1_000_000_000 + int(m.group(3).ljust(9, b"0")[:9])
            rest = m.group(4)
            g = GET_PAGES.match(rest)
            if g:
                batch = ((int(g.group(1)), int(g.group(2))), int(g.group(3), 16),
                         int(g.group(4)) // PAGE_SIZE, int(g.group(5)) // PAGE_SIZE, t)
                cur = pending.setdefault(tid, [])
                if cur and cur[0][:2] != batch[:2]:         # another file: not one read
                    flush(tid, t, None)
                    cur = pending.setdefault(tid, [])
                cur.append(batch)
            elif (x := SYS_EXIT.match(rest)):     # a read syscall returned this many bytes
                flush(tid, t, int(x.group(1), 16))
            elif rest.startswith(b"sched_process_exec:"):
                flush(tid, t, None)
        for tid in list(pending):
            flush(tid, 0, None)
        reads.sort(key=lambda r: r[0])
        return reads


def census_summary(records: list[tuple], seen: dict[int, list[int]], root: int,
                   recorder: int, others: set[int], t0: int | None = None) -> dict:
    """Which exited processes belonged to the recorded tree and which of them the sampling
    never saw. Tree membership follows each exit record's parent at exit: the process with
    that pid whose lifetime covers this one's start (pid reuse: a pid recycles only minutes
    later; a parent killed together with its child may even exit first), or the recorder
    (orphans are re-parented to it, the subreaper); a process that started before the
    recording (``t0``) is not in the tree. Times are receipt times of the exit records minus
    the elapsed time, so 1 s of slack. Seen: sampled (smaps with at least one mapping) between
    the process's start and its exit."""
    slack = 1_000_000_000
    start = [r[0] - r[5] * 1000 for r in records]
    by_pid: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        if r[1] == r[2]:
            by_pid.setdefault(r[1], []).append(i)
    in_tree: list[bool | None] = [None] * len(records)

    def member(i: int, depth: int = 0) -> bool:
        if in_tree[i] is None:
            in_tree[i] = False                   # provisional: no cycles through reused pids
            _, _, tgid, ppid, *_ = records[i]
            if t0 is not None and start[i] < t0 - slack:
                pass                             # existed before the program was started
            elif ppid == recorder:
                in_tree[i] = tgid not in others
            elif depth < 500:
                parent = next((j for j in by_pid.get(ppid, ()) if j != i
                               and start[j] <= start[i] + slack
                               and records[j][0] >= start[i] - slack), None)
                if parent is not None:
                    in_tree[i] = member(parent, depth + 1)
        return in_tree[i]

    for i in range(len(records)):
        member(i)
    procs = [r for r, t in zip(records, in_tree) if t and r[1] == r[2]]
    missed = []
    for now, tid, _, _, comm, etime_us, rss_kb, rchar, wchar, rcalls, faults in procs:
        start = now - etime_us * 1000 - 1_000_000
        if not any(start <= t <= now for t in seen.get(tid, ())):
            missed.append((comm, etime_us, rss_kb, rchar, wchar, faults))
    by_comm: dict[str, int] = {}
    for m in missed:
        by_comm[m[0]] = by_comm.get(m[0], 0) + 1
    largest = sorted(missed, key=lambda m: -m[2])[:5]
    page_kb = PAGE_SIZE // 1024
    return {
        "processes_exited": len(procs),
        "processes_seen": len(procs) - len(missed),
        "processes_missed": len(missed),
        "missed_by_command": dict(sorted(by_comm.items(), key=lambda kv: -kv[1])[:12]),
        "missed_elapsed_ms_max": round(max((m[1] for m in missed), default=0) / 1000, 1),
        "missed_rss_pages_max": max((m[2] for m in missed), default=0) // page_kb,
        "missed_rss_pages_sum": sum(m[2] for m in missed) // page_kb,
        "missed_rss_pages_median": (sorted(m[2] for m in missed)[len(missed) // 2] // page_kb
                                    if missed else 0),
        "missed_largest": [[m[0], round(m[1] / 1000, 1), m[2] // page_kb] for m in largest],
        "missed_faults_sum": sum(m[5] for m in missed),
        "missed_read_bytes": sum(m[3] for m in missed),
        "missed_write_bytes": sum(m[4] for m in missed),
        "read_bytes_all": sum(r[7] for r in procs),
        "write_bytes_all": sum(r[8] for r in procs),
        "threads_exited": sum(1 for r, t in zip(records, in_tree) if t and r[1] != r[2]),
    }


def cpu_ns(pid: int) -> int | None:
    """CPU time of all the process's threads in ns (schedstat, CONFIG_SCHED_INFO), or None."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue                   # the thread exited meanwhile
            return None
    return total


def _member(a: np.ndarray, sorted_b: np.ndarray) -> np.ndarray:
    """``np.isin(a, sorted_b)`` for a sorted, unique ``sorted_b`` (no re-sorting of it)."""
    if len(sorted_b) == 0:
        return np.zeros(len(a), bool)
    i = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return sorted_b[i] == a


class Recorder:
    """Keeps the key -> page-number table across intervals and turns samples into events."""

    def __init__(self):
        self.table: dict[int, int] = {}          # key -> page
        self.kind_file: list[bool] = []          # page -> is a file page
        self.last_ref = np.zeros(0, np.int64)    # page -> last interval it was referenced
        self.free_anon: list[int] = []           # freed anon page numbers, reused (compact)
        self.files: dict[tuple, int] = {}        # (dev, inode) -> file id
        self.prev_keys: dict[int, np.ndarray] = {}   # pid -> keys resident last interval
        self.prev_pages: dict[int, np.ndarray] = {}  # pid -> their page numbers (-1: none yet)
        self.fd_pos: dict[tuple, int] = {}       # (pid, fd, file id) -> position
        self.tick = 0
        self.sample_ns = 0                       # monotonic time of the current round
        self.seen: dict[int, list[int]] = {}     # pid -> rounds (times) it had mappings
        self.fd_bytes = [0, 0]                   # read, written: fd-position deltas
        self.smaps_layout = None                 # (lines per mapping, Rss line, Referenced line)
        self.cpu: dict[int, int | None] = {}     # pid -> CPU time (ns) at its last sample
        self.fd_reads = True                     # reads from fd positions (else: tracefs)

    # --- identities -------------------------------------------------------------------------
    def file_id(self, dev: tuple, inode: int) -> int:
        return self.files.setdefault((dev, inode), len(self.files))

    def number(self, keys: np.ndarray, is_file: np.ndarray) -> np.ndarray:
        """Page numbers of keys: known keys from the table; the others, in order of first
        appearance, take freed anon numbers (anon keys; the most recently freed first) or new
        numbers, and enter the table."""
        get = self.table.get
        page = np.array([get(key, -1) for key in keys.tolist()], np.int64)
        miss = np.flatnonzero(page < 0)
        if len(miss) == 0:
            return page
        uniq, first, inverse = np.unique(keys[miss], return_index=True, return_inverse=True)
        order = np.argsort(first)                       # unique keys in order of appearance
        ukeys, ufile = uniq[order], is_file[miss][first[order]]
        numbers = np.empty(len(ukeys), np.int64)
        anon = np.flatnonzero(~ufile)[:len(self.free_anon)]
        if len(anon):
            numbers[anon] = self.free_anon[::-1][:len(anon)]     # what pop() would give
            del self.free_anon[len(self.free_anon) - len(anon):]
        fresh = np.ones(len(ukeys), bool)
        fresh[anon] = False
        numbers[fresh] = len(self.kind_file) + np.arange(int(fresh.sum()))
        self.kind_file.extend(ufile[fresh].tolist())
        self.table.update(zip(ukeys.tolist(), numbers.tolist()))
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        page[miss] = numbers[position[inverse.ravel()]]
        return page

    def free(self, keys: np.ndarray, out: Interval) -> None:
        """Anon keys that are no longer resident: their numbers are freed for reuse."""
        pop = self.table.pop
        pages = [page for page in (pop(key, None) for key in keys[keys < FILE_KEY].tolist())
                 if page is not None]                 # file pages stay in the page cache
        self.free_anon.extend(pages)
        out.freed.extend(pages)

    # --- one process ------------------------------------------------------------------------
    def read_smaps(self, pid: int) -> list[Mapping]:
        """Mappings with their Rss and Referenced (kB). Every mapping's block has the same
        fields in the same order (one kernel), so the header, Rss and Referenced lines are
        found by stride — checked, else a line-by-line scan."""
        with open(f"/proc/{pid}/smaps") as f:
            lines = f.read().splitlines()
        if not lines:
            return []
        fields = self.smaps_layout
        if fields is None or not self._layout_fits(lines, fields):
            fields = self.smaps_layout = self._layout(lines)
        if fields is None:
            return self._read_smaps_slow(lines)
        stride, i_rss, i_ref = fields
        maps = []
        for head, rss, ref in zip(lines[0::stride], lines[i_rss::stride], lines[i_ref::stride]):
            m = self._mapping(VMA.match(head))
            m.rss_kb, m.referenced_kb = int(rss[4:-3]), int(ref[11:-3])
            maps.append(m)
        return maps

    @staticmethod
    def _layout(lines: list[str]):
        """(lines per mapping, index of Rss, index of Referenced) from the first block."""
        stride = next((i for i, ln in enumerate(lines[1:], 1) if VMA.match(ln)), len(lines))
        block = [ln.split(":", 1)[0] for ln in lines[:stride]]
        if "Rss" not in block or "Referenced" not in block:
            return None
        fields = (stride, block.index("Rss"), block.index("Referenced"))
        return fields if Recorder._layout_fits(lines, fields) else None

    @staticmethod
    def _layout_fits(lines: list[str], fields) -> bool:
        stride, i_rss, i_ref = fields
        return (len(lines) % stride == 0
                and all(ln.startswith("Rss:") for ln in lines[i_rss::stride])
                and all(ln.startswith("Referenced:") for ln in lines[i_ref::stride])
                and all(ln[:1] in HEX for ln in lines[0::stride]))

    def _read_smaps_slow(self, lines: list[str]) -> list[Mapping]:
        maps, cur = [], None
        for line in lines:
            m = VMA.match(line)
            if m:
                cur = self._mapping(m)
                maps.append(cur)
            elif line.startswith("Rss:"):
                cur.rss_kb = int(line.split()[1])
            elif line.startswith("Referenced:"):
                cur.referenced_kb = int(line.split()[1])
        return maps

    def _mapping(self, m) -> Mapping:
        start, end, perms, off, major, minor, inode, path = m.groups()
        inode = int(inode)
        is_file = inode != 0 and not path.startswith(("/dev/zero", "/SYSV", "["))
        return Mapping(int(start, 16) // PAGE_SIZE, int(end, 16) // PAGE_SIZE, perms,
                       int(off, 16) // PAGE_SIZE,
                       self.file_id((int(major, 16), int(minor, 16)), inode) if is_file else None)

    def read_pagemap(self, pid: int, vmas: list[Mapping]) -> list[np.ndarray]:
        """pagemap entries of each mapping (shorter if the process is exiting)."""
        with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pm:
            fd = pm.fileno()
            return [np.frombuffer(os.pread(fd, 8 * (v.end - v.start), 8 * v.start), np.uint64)
                    for v in vmas]

    def clear_refs(self, pid: int) -> None:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("1")

    def sample_process(self, pid: int, out: Interval) -> None:
        """One process: resident keys, the referenced pages picked per mapping (see the module
        docstring), frees. Vectorised over all mappings at once; the keys resident last round
        are kept sorted with their page numbers (-1: never emitted), so that only pages never
        seen by this process need the key table."""
        maps = self.read_smaps(pid)
        if maps:                                 # a zombie has none
            self.seen.setdefault(pid, []).append(self.sample_ns)
        vmas = [v for v in maps if v.rss_kb and v.end <= 1 << 36]   # [vsyscall]: above user
        chunks = self.read_pagemap(pid, vmas)
        self.clear_refs(pid)
        prev = self.prev_keys.get(pid, EMPTY)
        prev_page = self.prev_pages.get(pid, EMPTY)
        if not vmas:
            cur, cur_page = EMPTY, EMPTY
        else:
            cur, cur_page = self._pick(pid, vmas, chunks, prev, prev_page, out)
        gone = prev[(prev < FILE_KEY) & ~_member(prev, cur)]
        self.free(gone, out)
        self.prev_keys[pid], self.prev_pages[pid] = cur, cur_page
        self.sample_fds(pid, out)

    def _pick(self, pid, vmas, chunks, prev, prev_page, out):
        lens = np.array([len(c) for c in chunks], np.int64)
        entries = np.concatenate(chunks)
        vi = np.repeat(np.arange(len(vmas)), lens)               # entry -> its mapping
        start = np.array([v.start for v in vmas], np.int64)
        offset = np.array([v.offset for v in vmas], np.int64)
        fid = np.array([-1 if v.file_id is None else v.file_id for v in vmas], np.int64)
        k = np.array([v.referenced_kb // 4 for v in vmas], np.int64)
        writable = np.array(["w" in v.perms for v in vmas])
        shared_w = writable & np.array([v.perms[3] == "s" for v in vmas])
        rel = np.arange(len(entries), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
        present = (entries & np.uint64(PRESENT)) != 0
        swapped = (entries & np.uint64(SWAPPED)) != 0
        is_file = ((entries & np.uint64(FILE_SHARED)) != 0) & (fid[vi] >= 0)
        keys = np.where(is_file, FILE_KEY | (fid[vi] << 36) | (rel + offset[vi]),
                        ANON_KEY | (np.int64(pid) << 36) | (rel + start[vi]))
        old = _member(keys, prev)
        page = np.full(len(keys), -1, np.int64)
        if len(prev):
            page[old] = prev_page[np.searchsorted(prev, keys[old])]
        cand = present & (k[vi] > 0)
        # old file pages this process never emitted may have a number from another process
        ask = np.flatnonzero(cand & old & is_file & (page < 0))
        if len(ask):
            get = self.table.get
            page[ask] = [get(key, -1) for key in keys[ask].tolist()]
        # per mapping: every new page, then the most recently referenced old ones, then by key
        new_i = np.flatnonzero(cand & ~old)
        quota = np.maximum(k - np.bincount(vi[new_i], minlength=len(vmas)), 0)
        old_i = np.flatnonzero(cand & old)
        self.grow(len(self.kind_file))
        last = np.full(len(old_i), -1, np.int64)
        numbered = page[old_i] >= 0
        last[numbered] = self.last_ref[page[old_i][numbered]]
        old_i = old_i[np.lexsort((keys[old_i], -last, vi[old_i]))]
        group = vi[old_i]
        rank = np.arange(len(old_i)) - np.searchsorted(group, group)
        old_i = old_i[rank < quota[group]]
        chosen = np.concatenate([new_i, old_i])
        chosen = chosen[np.lexsort((np.repeat([0, 1], [len(new_i), len(old_i)]), vi[chosen]))]
        todo = chosen[page[chosen] < 0]                          # number them, in this order
        if len(todo):
            page[todo] = self.number(keys[todo], is_file[todo])
        if len(chosen):
            f, v = is_file[chosen], vi[chosen]
            op = np.where(f, OP_FILE | np.where(shared_w[v], OP_WRITE, 0),
                          np.where(writable[v], OP_WRITE, 0))
            out.pages.append(page[chosen])
            out.ops.append(op.astype(np.uint8))
        resident = present | swapped                             # swapped out is still alive
        cur, cur_page = keys[resident], page[resident]
        order = np.lexsort((-cur_page, cur))                     # a key mapped twice: once
        cur, cur_page = cur[order], cur_page[order]
        first = np.ones(len(cur), bool)
        first[1:] = cur[1:] != cur[:-1]
        return cur[first], cur_page[first]

    def sample_fds(self, pid: int, out: Interval) -> None:
        """read()/write() through open regular files: pages the position moved over."""
        try:
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            return
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
                if not stat.S_ISREG(st.st_mode):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    info = dict(line.split(":", 1) for line in f if ":" in line)
                pos, flags = int(info["pos"]), int(info["flags"], 8)
            except (OSError, KeyError, ValueError):
                continue
            fid = self.file_id((os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino)
            last = self.fd_pos.get((pid, int(fd), fid), 0)
            self.fd_pos[(pid, int(fd), fid)] = pos
            if pos == last:
                continue
            lo, hi = sorted((last, pos))
            offs = np.arange(lo // PAGE_SIZE, (hi - 1) // PAGE_SIZE + 1, dtype=np.int64)
            pages = self.number(FILE_KEY | (fid << 36) | offs, np.ones(len(offs), bool))
            write = (flags & os.O_ACCMODE) == os.O_WRONLY
            self.fd_bytes[write] += hi - lo
            if not self.fd_reads and (flags & os.O_ACCMODE) == os.O_RDONLY:
                continue                         # reads come from tracefs
            out.pages.append(pages)
            out.ops.append(np.full(len(pages), OP_FILE | OP_SYSCALL | (OP_WRITE if write else 0),
                                   np.uint8))

    def grow(self, n: int) -> None:
        if len(self.last_ref) < n:                # amortised: at least double
            extra = max(n, 2 * len(self.last_ref), 1024) - len(self.last_ref)
            self.last_ref = np.concatenate([self.last_ref, np.full(extra, -1, np.int64)])

    # --- one interval ----------------------------------------------------------------------
    def sample(self, pids: list[int]) -> Interval:
        """One round over the tree. A process that has not run since its last sample (CPU time
        from /proc/PID/task/*/schedstat unchanged: make or a shell waiting for a child) is not
        read again: it referenced nothing (accessed bits are per page-table entry) and mapped
        or unmapped nothing; only reclaim could have changed its resident set, and that shows
        at its next sample."""
        out = Interval()
        for pid in pids:
            try:
                cpu = cpu_ns(pid)
                if cpu is not None and self.cpu.get(pid) == cpu and pid in self.prev_keys:
                    self.seen[pid].append(self.sample_ns)
                    continue
                self.sample_process(pid, out)
                if pid in self.seen:
                    self.cpu[pid] = cpu
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue                  # exited (or not ours) during the read
        for pid in set(self.prev_keys) - set(pids):     # exited since the last interval
            gone = self.prev_keys.pop(pid)
            self.prev_pages.pop(pid, None)
            self.cpu.pop(pid, None)
            self.free(gone[gone < FILE_KEY], out)
        self.tick += 1
        return out


def mark(interval: Interval, recorder: Recorder) -> None:
    """Remember the round in which each page was last referenced (for picking hot pages)."""
    if interval.pages:
        recorder.grow(len(recorder.kind_file))
        recorder.last_ref[np.concatenate(interval.pages)] = recorder.tick


def events_of(interval: Interval, start_ns: int, dur_ns: int):
    """Frees at the interval's start, then one access per referenced page in page order,
    evenly spaced; a page referenced twice (two processes, or mapped and read()) keeps the
    union of its op bits."""
    freed = np.array(interval.freed, np.int64)
    if interval.pages:
        pages = np.concatenate(interval.pages)
        ops = np.concatenate(interval.ops)
        order = np.argsort(pages, kind="stable")
        pages, ops = pages[order], ops[order]
        uniq, first = np.unique(pages, return_index=True)
        ops = np.bitwise_or.reduceat(ops, first)
        # a page freed and re-used in the same interval: the access comes after the free
        pages = uniq
    else:
        pages, ops = np.zeros(0, np.int64), np.zeros(0, np.uint8)
    times = np.concatenate([np.full(len(freed), start_ns, np.int64),
                            start_ns + np.arange(len(pages), dtype=np.int64) * dur_ns
                            // max(len(pages), 1)])
    return (times, np.concatenate([freed, pages]),
            np.concatenate([np.full(len(freed), OP_FREE, np.uint8), ops]))


def record(command: list[str], interval_ns: int = 200_000_000, trace_reads: bool | None = None,
           **popen) -> tuple[AccessTrace, int]:
    """Run ``command`` and record it; returns the trace and the command's exit status.

    Rounds start every ``interval_ns``; when a round takes longer than half an interval the
    next one waits at least half an interval, so the recorder never takes a whole CPU from the
    program (the achieved mean interval is in the metadata). ``trace_reads``: take file reads
    from tracefs (``FileReadTrace``: every read() of the tree, also of processes and fds
    shorter than an interval; root) instead of fd positions: True requires it, False never,
    None (default, and ``autoballoon trace record``) when tracefs is usable."""
    if not command:
        raise TraceError("record: expected a command to run after --")
    _subreaper()
    # our own other children (a pool worker, a resource tracker) are not part of the recording
    others = set(descendants(os.getpid()))
    rec = Recorder()
    census = ExitCensus.start()                   # its thread before tracefs follows forks
    reads = None
    if trace_reads or trace_reads is None:
        try:
            reads = FileReadTrace.start()
        except TraceError:
            if trace_reads:
                raise
    rec.fd_reads = reads is None
    rounds: list[tuple[Interval, int]] = []       # (what the round saw, when it ended)
    t0 = time.monotonic_ns()
    try:
        proc = subprocess.Popen(command, **popen)
    except OSError as e:
        if census:
            census.stop()
        if reads:
            reads.stop(rec, [], others)
        raise TraceError(f"record: cannot run {command[0]!r} ({e})") from None
    busy = 0                                      # time spent sampling
    try:
        while True:
            begin = time.monotonic_ns()
            finished = proc.poll() is not None
            pids = [p for p in descendants(os.getpid()) if p not in others]
            rec.sample_ns = time.monotonic_ns()
            interval = rec.sample(pids)
            now = time.monotonic_ns()
            busy += now - begin
            mark(interval, rec)
            rounds.append((interval, now))
            if finished and not pids:
                break
            if finished:
                _reap()
            pause = max(begin + interval_ns - now,
                        interval_ns // 2 if now - begin > interval_ns // 2 else 0)
            time.sleep(max(0, pause - (time.monotonic_ns() - now)) / 1e9)
    finally:
        read_stats = reads.stop(rec, rounds, others) if reads else None
    last = rounds[-1][1]
    parts = [events_of(iv, start - t0, end - start)
             for (iv, end), start in zip(rounds, [t0] + [end for _, end in rounds[:-1]])]
    if census:
        lost = census.lost
        blind = census_summary(census.stop(), rec.seen, proc.pid, os.getpid(), others, t0)
        blind["census_overruns"] = lost
        blind["how"] = ("taskstats exit records of the recorded tree (command, elapsed time, "
                        "high-water RSS, faults, read/write bytes); missed = never sampled; "
                        "rss pages of a missed process bound the pages it touched through "
                        "mappings (read()/write() bytes are separate)")
    else:
        blind = "unavailable (no taskstats netlink: needs Linux with CONFIG_TASKSTATS, root)"
    times, pages, ops = (np.concatenate(c) for c in zip(*parts))
    if len(pages) == 0:
        raise TraceError(f"record: {command[0]!r} ended before its first sample; nothing "
                         f"recorded (use a shorter --interval)")
    gap = np.diff(np.append(times, last - t0), prepend=0)
    pages = np.append(pages, 0)                   # the program's exit; page field unused
    ops = np.append(ops, np.uint8(OP_EXIT))
    gap = gap[:len(pages)]
    meta = {"source": f"recorded on {os.uname().nodename} ({os.uname().release}) by "
                      f"autoballoon trace record",
            "command": command, "exit_status": proc.returncode,
            "interval_ns": interval_ns, "intervals": len(rounds),
            "how": "per interval: /proc/PID/smaps (Referenced per mapping) + pagemap "
                   "(resident pages) + clear_refs, fdinfo positions"
                   + (", file reads from tracefs" if read_stats else "")
                   + "; see autoballoon.trace.record",
            "exact": "resident page sets per interval (first touch, free), page kinds and "
                     "file identities, referenced-page counts per mapping, interval times, "
                     + ("page ranges of every read()/pread() of the tree (tracefs; the last "
                        "page +-1 when a read starts inside a page), fd-position ranges of "
                        "write()" if read_stats else "fd-position ranges of read()/write()"),
            "modelled": "which resident pages were referenced (new first, then most recently "
                        "referenced, then address); read vs write from mapping permissions; "
                        "one access per referenced page per interval, page order, evenly spaced",
            "missed": ("mappings (memory) of processes shorter than an interval (counted in "
                       "blind_spots), writes through fds shorter than an interval, pwrite, "
                       "kernel memory, re-references within an interval" if read_stats else
                       "processes and fds shorter than an interval, pread/pwrite, kernel "
                       "memory, re-references within an interval"),
            "licence": "recorded by the autoballoon project; no restrictions",
            "interval_achieved_ns": (last - t0) // len(rounds),
            "sampling_busy": round(busy / max(last - t0, 1), 3),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "pids_sampled": len(rec.seen),
            "file_reads": read_stats or "fd positions (read() of fds open across a sample)",
            "fd_read_bytes": rec.fd_bytes[0], "fd_write_bytes": rec.fd_bytes[1],
            "blind_spots": blind}
    return AccessTrace(gap, pages, ops, meta=meta, where="record"), proc.returncode


def _reap() -> None:
    """As subreaper we inherit orphans; wait for the ones that have exited (no zombies)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
