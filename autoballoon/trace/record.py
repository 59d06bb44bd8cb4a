"""Recorder: run a real program (and its children) and record its page accesses on this machine.

Each interval (default 200 ms) the recorder, for every process of the program's tree:
1. reads ``/proc/PID/smaps`` — per mapping (VMA): ``Rss`` and ``Referenced`` (pages whose
   accessed bit was set since the last ``clear_refs``);
2. reads ``/proc/PID/pagemap`` for mappings with resident pages — per 4 KiB page: present,
   swapped, file-backed or anonymous;
3. writes ``1`` to ``/proc/PID/clear_refs`` to clear the accessed bits for the next interval;
4. reads ``/proc/PID/fdinfo`` — the file position of each open regular file.
The recorder is a child subreaper, so grandchildren orphaned by their parent stay in the tree.

What is exact and what is modelled (also written into the trace's metadata):
- exact (at interval granularity): which pages each process had resident — so first touches
  and frees/unmaps — and their kind (anon, or file identified by device, inode and offset, so a
  library shared by many processes is one set of file pages); how many pages of each mapping
  were referenced in the interval; the interval lengths (wall clock); which file ranges
  ``read()``/``write()`` moved through (fd position deltas, taken as sequential);
- modelled: *which* resident pages were referenced when fewer than all were: newly resident
  pages first (a fault sets the accessed bit), then the most recently referenced, then by
  address (a stable hot set); a resident page never chosen never appears in the trace; reads vs writes: anon pages and pages of writable shared
  mappings count as written, others read; within an interval each referenced page gets one
  access, in page order, evenly spaced over the interval;
- missed: processes and file descriptors that live less than an interval, ``pread``/``pwrite``
  (they do not move the position), kernel memory, re-references within one interval.
Per-page accessed bits (idle page tracking), soft-dirty and DAMON are not available on these
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
    """PIDs whose parent chain reaches ``root`` (excluding root itself)."""
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


def census_summary(records: list[tuple], seen: dict[int, list[int]], root: int,
                   recorder: int, others: set[int]) -> dict:
    """Which exited processes belonged to the recorded tree and which of them the sampling
    never saw. Tree membership follows each exit record's parent at exit (pid reuse handled:
    a parent exits after its children, so the parent is the earliest later exit with that pid;
    orphans were re-parented to the recorder, the subreaper). Seen: sampled (smaps with at
    least one mapping) between the process's start and its exit."""
    in_tree: list[bool] = [False] * len(records)
    holder: dict[int, int] = {}                  # pid -> its next exit (sweeping backwards)
    for i in range(len(records) - 1, -1, -1):
        _, tid, tgid, ppid, *_ = records[i]      # a thread's parent is its process's parent
        if ppid == recorder:
            in_tree[i] = tgid not in others
        elif ppid in holder:
            in_tree[i] = in_tree[holder[ppid]]
        if tid == tgid:
            holder[tid] = i
    procs = [r for r, t in zip(records, in_tree) if t and r[1] == r[2]]
    missed = []
    for now, tid, _, _, comm, etime_us, rss_kb, rchar, wchar, rcalls, faults in procs:
        start = now - etime_us * 1000 - 1_000_000
        if not any(start <= t <= now for t in seen.get(tid, ())):
            missed.append((comm, etime_us, rss_kb, rchar, wchar, faults))
    by_comm: dict[str, int] = {}
    for m in missed:
        by_comm[m[0]] = by_comm.get(m[0], 0) + 1
    page_kb = PAGE_SIZE // 1024
    return {
        "processes_exited": len(procs),
        "processes_seen": len(procs) - len(missed),
        "processes_missed": len(missed),
        "missed_by_command": dict(sorted(by_comm.items(), key=lambda kv: -kv[1])[:12]),
        "missed_elapsed_ms_max": round(max((m[1] for m in missed), default=0) / 1000, 1),
        "missed_rss_pages_max": max((m[2] for m in missed), default=0) // page_kb,
        "missed_rss_pages_sum": sum(m[2] for m in missed) // page_kb,
        "missed_faults_sum": sum(m[5] for m in missed),
        "missed_read_bytes": sum(m[3] for m in missed),
        "missed_write_bytes": sum(m[4] for m in missed),
        "read_bytes_all": sum(r[7] for r in procs),
        "write_bytes_all": sum(r[8] for r in procs),
        "threads_exited": sum(1 for r, t in zip(records, in_tree) if t and r[1] != r[2]),
    }


class Recorder:
    """Keeps the key -> page-number table across intervals and turns samples into events."""

    def __init__(self):
        self.table: dict[int, int] = {}          # key -> page
        self.kind_file: list[bool] = []          # page -> is a file page
        self.last_ref = np.zeros(0, np.int64)    # page -> last interval it was referenced
        self.free_anon: list[int] = []           # freed anon page numbers, reused (compact)
        self.files: dict[tuple, int] = {}        # (dev, inode) -> file id
        self.prev_keys: dict[int, np.ndarray] = {}   # pid -> keys resident last interval
        self.fd_pos: dict[tuple, int] = {}       # (pid, fd, file id) -> position
        self.tick = 0
        self.sample_ns = 0                       # monotonic time of the current round
        self.seen: dict[int, list[int]] = {}     # pid -> rounds (times) it had mappings
        self.fd_bytes = [0, 0]                   # read, written: fd-position deltas

    # --- identities -------------------------------------------------------------------------
    def file_id(self, dev: tuple, inode: int) -> int:
        return self.files.setdefault((dev, inode), len(self.files))

    def page_of(self, key: int, is_file: bool) -> int:
        page = self.table.get(key)
        if page is None:
            if not is_file and self.free_anon:
                page = self.free_anon.pop()
            else:
                page = len(self.kind_file)
                self.kind_file.append(is_file)
            self.table[key] = page
        return page

    def free(self, keys: np.ndarray, out: Interval) -> None:
        for key in keys.tolist():
            page = self.table.get(key)
            if page is not None and key < FILE_KEY:   # file pages stay in the page cache
                del self.table[key]
                self.free_anon.append(page)
                out.freed.append(page)

    # --- one process ------------------------------------------------------------------------
    def read_smaps(self, pid: int) -> list[Mapping]:
        maps, cur = [], None
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                m = VMA.match(line)
                if m:
                    start, end, perms, off, major, minor, inode, path = m.groups()
                    inode = int(inode)
                    is_file = inode != 0 and not path.startswith(("/dev/zero", "/SYSV", "["))
                    cur = Mapping(int(start, 16) // PAGE_SIZE, int(end, 16) // PAGE_SIZE, perms,
                                  int(off, 16) // PAGE_SIZE,
                                  self.file_id((int(major, 16), int(minor, 16)), inode)
                                  if is_file else None)
                    maps.append(cur)
                elif line.startswith("Rss:"):
                    cur.rss_kb = int(line.split()[1])
                elif line.startswith("Referenced:"):
                    cur.referenced_kb = int(line.split()[1])
        return maps

    def sample_process(self, pid: int, out: Interval) -> None:
        maps = self.read_smaps(pid)
        if maps:                                 # a zombie has none
            self.seen.setdefault(pid, []).append(self.sample_ns)
        keys_all = []
        with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pm:
            for vma in maps:
                if vma.rss_kb == 0 or vma.end > 1 << 36:     # [vsyscall] is above user space
                    continue
                raw = os.pread(pm.fileno(), 8 * (vma.end - vma.start), 8 * vma.start)
                entries = np.frombuffer(raw, np.uint64)
                vpages = vma.start + np.arange(len(entries), dtype=np.int64)
                present = (entries & np.uint64(PRESENT)) != 0
                swapped = (entries & np.uint64(SWAPPED)) != 0
                file_pg = ((entries & np.uint64(FILE_SHARED)) != 0) & (vma.file_id is not None)
                keys = np.where(file_pg,
                                FILE_KEY | (np.int64(vma.file_id or 0) << 36)
                                | (vpages - vma.start + vma.offset),
                                ANON_KEY | (np.int64(pid) << 36) | vpages)
                keys_all.append(keys[present | swapped])     # swapped out is still alive
                self.referenced(vma, keys[present], file_pg[present], pid, out)
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("1")
        cur = np.concatenate(keys_all) if keys_all else np.zeros(0, np.int64)
        prev = self.prev_keys.get(pid, np.zeros(0, np.int64))
        self.free(np.setdiff1d(prev[prev < FILE_KEY], cur), out)
        self.prev_keys[pid] = np.unique(cur)
        self.sample_fds(pid, out)

    def referenced(self, vma: Mapping, keys, is_file, pid: int, out: Interval) -> None:
        """Pick the mapping's referenced pages (see the module docstring for the model)."""
        k = vma.referenced_kb // 4
        if k == 0 or len(keys) == 0:
            return
        prev = self.prev_keys.get(pid, np.zeros(0, np.int64))
        new = ~np.isin(keys, prev)
        if new.sum() < k:
            # numbers exist only for pages already emitted; the others were never referenced
            known = np.array([self.table.get(key, -1) for key in keys.tolist()], np.int64)
            self.grow(len(self.kind_file))
            last = np.full(len(keys), -1, np.int64)
            last[known >= 0] = self.last_ref[known[known >= 0]]
            old = np.flatnonzero(~new)
            rank = np.lexsort((keys[old], -last[old]))
            chosen = np.concatenate([np.flatnonzero(new), old[rank[:k - int(new.sum())]]])
        else:
            chosen = np.flatnonzero(new)
        pages = np.array([self.page_of(key, f) for key, f in
                          zip(keys[chosen].tolist(), is_file[chosen].tolist())], np.int64)
        writable = "w" in vma.perms
        shared_writable = writable and vma.perms[3] == "s"
        op = np.where(is_file[chosen], OP_FILE | (OP_WRITE if shared_writable else 0),
                      OP_WRITE if writable else 0)
        out.pages.append(pages)
        out.ops.append(op.astype(np.uint8))

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
            pages = np.array([self.page_of(FILE_KEY | (fid << 36) | o, True)
                              for o in offs.tolist()], np.int64)
            write = (flags & os.O_ACCMODE) == os.O_WRONLY
            self.fd_bytes[write] += hi - lo
            out.pages.append(pages)
            out.ops.append(np.full(len(pages), OP_FILE | OP_SYSCALL | (OP_WRITE if write else 0),
                                   np.uint8))

    def grow(self, n: int) -> None:
        if len(self.last_ref) < n:
            self.last_ref = np.concatenate([self.last_ref, np.full(n - len(self.last_ref), -1)])

    # --- one interval ----------------------------------------------------------------------
    def sample(self, pids: list[int]) -> Interval:
        out = Interval()
        for pid in pids:
            try:
                self.sample_process(pid, out)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue                  # exited (or not ours) during the read
        for pid in set(self.prev_keys) - set(pids):     # exited since the last interval
            gone = self.prev_keys.pop(pid)
            self.free(gone[gone < FILE_KEY], out)
        self.tick += 1
        return out


def events_of(interval: Interval, start_ns: int, dur_ns: int, recorder: Recorder):
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
        recorder.grow(len(recorder.kind_file))
        recorder.last_ref[uniq] = recorder.tick
        # a page freed and re-used in the same interval: the access comes after the free
        pages = uniq
    else:
        pages, ops = np.zeros(0, np.int64), np.zeros(0, np.uint8)
    times = np.concatenate([np.full(len(freed), start_ns, np.int64),
                            start_ns + np.arange(len(pages), dtype=np.int64) * dur_ns
                            // max(len(pages), 1)])
    return (times, np.concatenate([freed, pages]),
            np.concatenate([np.full(len(freed), OP_FREE, np.uint8), ops]))


def record(command: list[str], interval_ns: int = 200_000_000, **popen) -> tuple[AccessTrace, int]:
    """Run ``command`` and record it; returns the trace and the command's exit status."""
    if not command:
        raise TraceError("record: expected a command to run after --")
    _subreaper()
    # our own other children (a pool worker, a resource tracker) are not part of the recording
    others = set(descendants(os.getpid()))
    rec = Recorder()
    census = ExitCensus.start()
    parts = []
    t0 = time.monotonic_ns()
    try:
        proc = subprocess.Popen(command, **popen)
    except OSError as e:
        if census:
            census.stop()
        raise TraceError(f"record: cannot run {command[0]!r} ({e})") from None
    last = t0
    while True:
        finished = proc.poll() is not None
        pids = [p for p in descendants(os.getpid()) if p not in others]
        rec.sample_ns = time.monotonic_ns()
        interval = rec.sample(pids)
        now = time.monotonic_ns()
        parts.append(events_of(interval, last - t0, now - last, rec))
        last = now
        if finished and not pids:
            break
        if finished:
            _reap()
        time.sleep(max(0.0, (interval_ns - (time.monotonic_ns() - now)) / 1e9))
    if census:
        lost = census.lost
        blind = census_summary(census.stop(), rec.seen, proc.pid, os.getpid(), others)
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
            "interval_ns": interval_ns, "intervals": len(parts),
            "how": "per interval: /proc/PID/smaps (Referenced per mapping) + pagemap "
                   "(resident pages) + clear_refs, fdinfo positions; see "
                   "autoballoon.trace.record",
            "exact": "resident page sets per interval (first touch, free), page kinds and "
                     "file identities, referenced-page counts per mapping, interval times, "
                     "fd-position ranges of read()/write()",
            "modelled": "which resident pages were referenced (new first, then most recently "
                        "referenced, then address); read vs write from mapping permissions; "
                        "one access per referenced page per interval, page order, evenly spaced",
            "missed": "processes and fds shorter than an interval, pread/pwrite, kernel "
                      "memory, re-references within an interval",
            "licence": "recorded by the autoballoon project; no restrictions",
            "pids_sampled": len(rec.seen),
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
