"""The real-guest validation harness: run autoballoon scenarios on a real Linux guest in QEMU.

    python -m validation.run [--only NAME[,NAME...]] [--accel auto|kvm|tcg] [--no-install]
                             [--calibrate] [--keep]

For each ``validation/scenarios/NAME.toml`` (an ordinary autoballoon scenario with one guest
and a phased workload) it boots Debian's kernel with the initramfs of validation/image.py under
QEMU (KVM if it works, else TCG), with a virtio-balloon device (deflate-on-oom and
free-page-reporting as the scenario's ``features`` say), a virtio-blk swap disk, a virtio-blk data
disk (ext2, the file the ``read`` phases read) and a virtio-serial port. The guest's /init runs
``abwl`` (guest/abwl.c), which does the scenario's phases and streams /proc/vmstat and
/proc/meminfo samples over the port; the host sets the initial balloon target, applies
``[[schedule]]`` entries and the scenario's ``[host] policy`` (the same Policy class the simulator
runs, fed by validation/adapter.py) over QMP, and records ``query-balloon``, the guest stats and
QEMU's RSS every ``run.tick``.

Writes ``validation/results/NAME/{summary.csv,timeseries.csv,console.log,manifest.json}``, each
atomically, the manifest last.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from validation import image as img
from validation.adapter import make_view, stats_from_qmp
from validation.qmp import QMP, GuestPort, QMPError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = HERE / "scenarios"
RESULTS = HERE / "results"
MIB = 2**20
PAGE = 4096
SAMPLE_MS = 200                 # guest sampling interval (vmstat + meminfo)
TAIL_S = 4.0                    # keep sampling after the workload (free page reporting: 2 s)
BOOT_TIMEOUT_S = 180.0         # TCG on a busy host: 11 s idle, 50+ s under load
SETTLE_TIMEOUT_S = 60.0         # initial balloon target reached before GO
SMP = 2

# Summary counters: the model's names (autoballoon.sim.results.GUEST_COUNTERS) and how each is
# computed from 6.1's /proc/vmstat.
COUNTERS = {
    "pswpin": ("pswpin",), "pswpout": ("pswpout",), "pgmajfault": ("pgmajfault",),
    "pgfault": ("pgfault",),
    "allocstall": ("allocstall_dma", "allocstall_dma32", "allocstall_normal",
                   "allocstall_movable", "allocstall_device"),
    "oom_kill": ("oom_kill",), "pgscan_kswapd": ("pgscan_kswapd",),
    "pgscan_direct": ("pgscan_direct",), "pgsteal_kswapd": ("pgsteal_kswapd",),
    "pgsteal_direct": ("pgsteal_direct",),
    "workingset_refault": ("workingset_refault_anon", "workingset_refault_file"),
    "balloon_inflate": ("balloon_inflate",), "balloon_deflate": ("balloon_deflate",),
}


class HarnessError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[validate {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- scenario -> guest configuration ---------------------------------------------------------

@dataclass
class GuestConfig:
    name: str
    path: Path
    scenario: object                     # autoballoon Scenario
    memory: int
    swap: int
    features: frozenset
    target: int | None
    stats_poll_s: int
    tick_s: float
    duration_s: float
    seed: int
    mapping: int
    phases: list[str] = field(default_factory=list)   # abwl phase arguments


def _splitmix_seed(run_seed: int, g: int, spec_seed: int | None) -> int:
    """The model's per-guest generator seed (autoballoon.machine._seed), so that the guest's
    xorshift64* stream is the model's."""
    m = 2**64 - 1
    x = (spec_seed if spec_seed is not None else run_seed * 1_000_003 + g) & m
    x = (x + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    x ^= x >> 31
    return x or 1


def load_config(path: Path) -> GuestConfig:
    """Read a validation scenario with autoballoon's own parser; refuse what the guest can't do."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))       # for policy = "validation.policies:..."
    from autoballoon import load_scenario
    sc = load_scenario(path)
    where = path.name
    if len(sc.guests) != 1:
        raise HarnessError(f"{where}: the harness runs one guest per scenario "
                           f"({len(sc.guests)} given)")
    g = sc.guests[0]
    w = g.workload
    # workload.start: the model's head start for the initial balloon; the harness always starts
    # the workload once QEMU's actual has reached the initial target, so it needs no delay
    if w.kind != "phases" or w.loop:
        raise HarnessError(f"{where}: the guest program runs a phased workload without "
                           f"loop (kind={w.kind}, loop={w.loop})")
    if g.kernel != "6.1":
        raise HarnessError(f"{where}: the guest kernel is Debian's 6.1; kernel = {g.kernel!r}")
    unsupported = set(g.features) - {"stats_vq", "deflate_on_oom", "free_page_reporting"}
    if unsupported:
        raise HarnessError(f"{where}: features {sorted(unsupported)} have no QEMU switch here")
    reads = [p for p in w.phases if p.pattern == "read"]
    read_base = min((p.offset for p in reads), default=0)
    phases = []
    for i, p in enumerate(w.phases):
        if p.pattern not in ("seq", "rand", "read"):
            raise HarnessError(f"{where}: phase {i}: pattern {p.pattern!r} is not implemented "
                               f"in guest/abwl.c (seq, rand, read)")
        if p.length % PAGE or p.offset % PAGE:
            raise HarnessError(f"{where}: phase {i}: offset and length must be whole pages")
        off = p.offset
        if p.pattern == "read":
            off = p.offset - read_base
            if off + p.length > img.DATA_FILE_MIB * MIB:
                raise HarnessError(f"{where}: phase {i}: reads past the {img.DATA_FILE_MIB} MiB "
                                   f"data file")
        phases.append(f"{p.pattern},{off},{p.length},{p.passes or 0},{p.duration_ns or 0},"
                      f"{p.think_ns},{p.write_fraction:g}")
    return GuestConfig(
        name=path.stem, path=path, scenario=sc, memory=g.memory, swap=g.swap.size,
        features=frozenset(g.features), target=g.target,
        stats_poll_s=max(1, round(sc.host.stats_poll_ns / 1e9)),
        tick_s=sc.run.tick_ns / 1e9, duration_s=sc.run.duration_ns / 1e9,
        seed=_splitmix_seed(sc.run.seed, 0, w.seed), mapping=w.mapping_bytes, phases=phases)


# --- QEMU ------------------------------------------------------------------------------------

def qemu_binary() -> str:
    q = shutil.which("qemu-system-x86_64")
    if q is None:
        raise HarnessError("qemu-system-x86_64 not found (apt-get install -y qemu-system-x86; "
                           "`make validate` installs it)")
    return q


def qemu_version() -> str:
    return subprocess.run([qemu_binary(), "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0].strip()


def qemu_argv(image: img.Image, accel: str, memory: int, append: str, sockdir: Path,
              console: Path, swap_img: Path | None, features=frozenset(),
              data: bool = True) -> list[str]:
    cpu = "host" if accel == "kvm" else "max"
    argv = [qemu_binary(), "-name", "abvalidate", "-machine", f"pc,accel={accel}",
            "-cpu", cpu, "-smp", str(SMP), "-m", f"{memory // MIB}M",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(image.kernel), "-initrd", str(image.initramfs), "-append", append,
            "-serial", f"file:{console}",
            "-qmp", f"unix:{sockdir / 'qmp.sock'},server=on,wait=off",
            "-device", "virtio-balloon-pci,id=balloon0"
                       f",deflate-on-oom={'on' if 'deflate_on_oom' in features else 'off'}"
                       f",free-page-reporting={'on' if 'free_page_reporting' in features else 'off'}",
            "-device", "virtio-serial-pci,id=vser",
            "-chardev", f"socket,id=abport,path={sockdir / 'port.sock'},server=on,wait=off",
            "-device", "virtserialport,bus=vser.0,chardev=abport,name=ab"]
    if data:
        argv += ["-drive", f"if=none,id=data,file={image.data_disk},format=raw,readonly=on,"
                           "cache=none,aio=threads",
                 "-device", "virtio-blk-pci,drive=data,serial=data"]
    if swap_img is not None:
        argv += ["-drive", f"if=none,id=swap,file={swap_img},format=raw,cache=none,aio=threads",
                 "-device", "virtio-blk-pci,drive=swap,serial=swap"]
    return argv + ["-S"]


KERNEL_ARGS = "console=ttyS0 loglevel=4 panic=-1 transparent_hugepage=never"


class Guest:
    """A started QEMU with its QMP and guest port connected (paused until ``start``)."""

    def __init__(self, argv: list[str], sockdir: Path, stderr_path: Path):
        self.argv = argv
        self.stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.qmp = QMP(str(sockdir / "qmp.sock"), timeout=15, alive=self.alive)
            self.port = GuestPort(str(sockdir / "port.sock"), timeout=15, alive=self.alive)
        except Exception:
            self.kill()
            raise

    def start(self) -> None:
        self.qmp.execute("cont")

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return -1

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            try:
                self.qmp.execute("quit")
            except (QMPError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()            # our own child, by its pid
            self.proc.wait()
        for c in ("qmp", "port"):
            if hasattr(self, c):
                getattr(self, c).close()
        self.stderr.close()


# --- accelerator ---------------------------------------------------------------------------

def probe_kvm(image: img.Image, timeout: float = 25.0) -> tuple[bool, str]:
    """Boot the guest once under KVM (abmode=probe): does it reach /init and answer?"""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not readable and writable by this user"
    with tempfile.TemporaryDirectory(prefix="abval-") as d:
        d = Path(d)
        argv = qemu_argv(image, "kvm", 128 * MIB, KERNEL_ARGS + " abmode=probe", d,
                         d / "console.log", None, data=False)
        try:
            guest = Guest(argv, d, d / "qemu.err")
        except (QMPError, OSError) as e:
            err = (d / "qemu.err").read_text().strip() if (d / "qemu.err").exists() else ""
            return False, f"QEMU with KVM did not start: {_first_error(err) or e}"
        try:
            guest.start()
            hit = guest.port.wait_for(lambda s: "PROBE OK" in s, timeout)
        except (QMPError, OSError) as e:
            hit, err = None, str(e)
        finally:
            guest.kill()
        if hit:
            return True, "KVM guest booted"
        err = (d / "qemu.err").read_text().strip()
        con = (d / "console.log").read_text(errors="replace").strip()
        why = _first_error(err) if err else (
            f"no answer within {timeout:.0f}s" + ("" if con else " and no console output"))
        return False, f"KVM unusable: {why}"


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")


def choose_accel(image: img.Image, want: str) -> tuple[str, str]:
    if want == "tcg":
        return "tcg", "asked for TCG"
    ok, why = probe_kvm(image)
    if ok:
        return "kvm", why
    if want == "kvm":
        raise HarnessError(f"--accel kvm: {why}")
    log(f"{why}; falling back to TCG (software emulation: slower, same guest kernel)")
    return "tcg", why + "; fell back to TCG"


# --- one scenario ------------------------------------------------------------------------------

def parse_sample(line: str) -> tuple[str, int, dict[str, int]]:
    """``S <tag> <mono_ns> k=v ...`` → (tag, mono_ns, {k: v})."""
    parts = line.split()
    vals = {}
    for kv in parts[3:]:
        k, _, v = kv.partition("=")
        vals[k] = int(v)
    return parts[1], int(parts[2]), vals


def counters(vals: dict[str, int]) -> dict[str, int]:
    return {name: sum(vals.get(k, 0) for k in keys) for name, keys in COUNTERS.items()}


def time_mean(t: np.ndarray, v: np.ndarray) -> float:
    """Time-weighted mean, each sample standing for the interval that ends at it (as the
    model's results.time_mean)."""
    if len(t) < 2:
        return float(v[0]) if len(v) else float("nan")
    w = np.diff(t)
    return float(np.sum(v[1:] * w) / np.sum(w))


def oom_deflate_pages(target, actual) -> int:
    """Pages the balloon gave back that the host did not ask for (deflate-on-OOM).

    ``target[i]`` is the host's target in force after sample i (QEMU's meaning, bytes) and
    ``actual[i]`` QEMU's ``actual`` at sample i. A host-requested deflation only moves
    ``actual`` up to the target in force; every rise of ``actual`` above it (the driver's OOM
    notifier leaking pages while the target stays) is counted:
    ``sum_i max(0, min(actual[i] - actual[i-1], actual[i] - target[i-1]))``.
    """
    out = 0
    for i in range(1, len(actual)):
        rise = int(actual[i]) - int(actual[i - 1])
        above = int(actual[i]) - int(target[i - 1])
        out += max(0, min(rise, above))
    return out // PAGE


def run_scenario(cfg: GuestConfig, image: img.Image, accel: str, accel_note: str,
                 keep: bool = False) -> Path:
    from autoballoon.host.policies import make_policy, policy_name
    out_dir = RESULTS / cfg.name
    work = img.BUILD / f"run-{cfg.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sockdir = Path(tempfile.mkdtemp(prefix="abval-"))
    swap_img = None
    if cfg.swap:
        swap_img = work / "swap.img"
        with open(swap_img, "wb") as f:
            f.truncate(cfg.swap)
    args = [KERNEL_ARGS, "abmode=run", f"abswap={1 if cfg.swap else 0}", f"abint={SAMPLE_MS}",
            f"abseed={cfg.seed}", f"abmap={cfg.mapping}", "abph=" + ";".join(cfg.phases)]
    append = " ".join(args)
    console = work / "console.log"
    argv = qemu_argv(image, accel, cfg.memory, append, sockdir, console, swap_img,
                     cfg.features)
    policy = make_policy(cfg.scenario)      # the scenario's [host] policy, as the model builds it
    schedule = sorted(cfg.scenario.schedule, key=lambda e: e.at_ns)
    log(f"{cfg.name}: booting ({accel}, {cfg.memory // MIB} MiB, swap {cfg.swap // MIB} MiB, "
        f"features {','.join(sorted(cfg.features)) or '-'}, policy {policy_name(policy)})")
    wall0 = time.monotonic()
    load_before = os.getloadavg()
    guest = Guest(argv, sockdir, work / "qemu.err")
    host_rows: list[dict] = []
    status = {"how": "timeout", "value": None}
    try:
        guest.start()
        if "stats_vq" in cfg.features:
            guest.qmp.execute("qom-set", path="/machine/peripheral/balloon0",
                              property="guest-stats-polling-interval", value=cfg.stats_poll_s)
        hit = guest.port.wait_for(lambda s: s == "READY", BOOT_TIMEOUT_S)
        if hit is None:
            raise HarnessError(f"{cfg.name}: the guest did not get ready within "
                               f"{BOOT_TIMEOUT_S:.0f}s; see {console}")
        boot_s = time.monotonic() - wall0
        ram = cfg.memory
        target = ram
        if cfg.target and cfg.target != ram:
            target = cfg.target
            guest.qmp.execute("balloon", value=target)
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            last, since = None, time.monotonic()
            while time.monotonic() < deadline:
                actual = guest.qmp.execute("query-balloon")["actual"]
                if actual == target:
                    break
                if actual != last:
                    last, since = actual, time.monotonic()
                elif time.monotonic() - since > 5:
                    break                       # stuck (the guest cannot give more)
                time.sleep(0.1)
            log(f"{cfg.name}: initial target {target // MIB} MiB, actual "
                f"{guest.qmp.execute('query-balloon')['actual'] // MIB} MiB")
        guest.port.send("GO\n")
        hit = guest.port.wait_for(lambda s: s.startswith("S BEGIN"), 30)
        if hit is None:
            raise HarnessError(f"{cfg.name}: no BEGIN sample from the guest")
        t0 = hit[1]
        next_entry = 0
        ended_at = None
        timeout_s = max(2 * cfg.duration_s, cfg.duration_s + 60)
        tick = cfg.tick_s
        next_tick = t0
        latest_meminfo: dict[str, int] = {}
        seen = 0
        while True:
            now = time.monotonic()
            rel = now - t0
            actual = guest.qmp.execute("query-balloon")["actual"]
            gs = guest.qmp.execute("qom-get", path="/machine/peripheral/balloon0",
                                   property="guest-stats") if "stats_vq" in cfg.features else None
            stats = stats_from_qmp(gs)
            with guest.port.cond:
                new = guest.port.lines[seen:]
                seen = len(guest.port.lines)
            for _, line in new:
                if line.startswith("S "):
                    _, _, vals = parse_sample(line)
                    latest_meminfo = {k: v for k, v in vals.items() if k[:1].isupper()}
                elif line.startswith("X ") and ended_at is None:
                    ended_at = time.monotonic()
                    p = line.split()
                    status = {"how": p[2], "value": int(p[3])}
            row = {"host_time_s": rel, "target": target, "actual": actual,
                   "qemu_rss": guest.rss(),
                   **{f"stat_{k}": v for k, v in stats.items()}}
            if ended_at is None and rel < timeout_s:
                view = make_view(int(rel * 1e9), int(tick * 1e9), cfg.name, ram, target,
                                 actual, stats, latest_meminfo)
                new_t = dict(policy.observe(view) or {})
                while next_entry < len(schedule) and schedule[next_entry].at_ns <= rel * 1e9:
                    new_t[0] = schedule[next_entry].target   # an operator's command wins
                    next_entry += 1
                if 0 in new_t:
                    t = min(int(new_t[0]), ram)
                    if t != target:
                        target = t
                        guest.qmp.execute("balloon", value=target)
            row["target_set"] = target
            host_rows.append(row)
            if ended_at is not None and now - ended_at >= TAIL_S:
                break
            if ended_at is None and rel >= timeout_s:
                log(f"{cfg.name}: workload still running after {timeout_s:.0f}s: stopped")
                break
            if not guest.alive():
                raise HarnessError(f"{cfg.name}: QEMU exited: "
                                   f"{(work / 'qemu.err').read_text().strip()[-500:]}")
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))
    finally:
        guest.stop()
        shutil.rmtree(sockdir, ignore_errors=True)
    wall = time.monotonic() - wall0
    lines = list(guest.port.lines)
    res = summarize(cfg, lines, host_rows, t0, status, policy_name(policy))
    kernel = next((ln.split("kernel", 1)[1].strip() for ln in
                   console.read_text(errors="replace").splitlines()
                   if "abinit: kernel" in ln), None)
    manifest = {
        "format": 1, "scenario": cfg.name,
        "scenario_file": str(cfg.path.relative_to(ROOT)),
        "scenario_sha256": hashlib.sha256(cfg.path.read_bytes()).hexdigest(),
        "policy": {"name": policy_name(policy), "params": cfg.scenario.host.policy_params},
        "guest_kernel": kernel, "qemu_version": qemu_version(),
        "accel": accel, "accel_note": accel_note,
        "qemu_argv": argv, "qemu_command": shlex.join(argv), "kernel_cmdline": append,
        "harness_command": shlex.join([sys.executable, "-m", "validation.run", *sys.argv[1:]]),
        "guest_program": "validation/guest/abwl.c",
        "sample_interval_ms": SAMPLE_MS, "host_tick_s": cfg.tick_s,
        "stats_poll_s": cfg.stats_poll_s if "stats_vq" in cfg.features else None,
        "tail_s": TAIL_S, "boot_s": round(boot_s, 2), "wall_s": round(wall, 2),
        # the host is shared: other processes slow a TCG guest down (1/5/15-min load averages
        # when the guest started and when it stopped; the host has os.cpu_count() cores)
        "host_loadavg_start": [round(x, 2) for x in load_before],
        "host_loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "workload_exit": status,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": host_kind(), "image": image.describe(), "git_revision": git_revision(),
    }
    write_results(out_dir, res, console, manifest)
    log(f"{cfg.name}: done in {wall:.0f}s (boot {boot_s:.0f}s, workload "
        f"{res['summary'].iloc[0]['elapsed_s']:.1f}s, exit {status['how']} {status['value']})")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


def summarize(cfg: GuestConfig, lines, host_rows, t0: float, status: dict,
              policy: str) -> dict:
    """Guest samples + host rows → summary (one row) and timeseries frames."""
    samples = []
    begin = end = None
    markers = []
    for host_t, line in lines:
        if line.startswith("S "):
            tag, mono, vals = parse_sample(line)
            samples.append((tag, mono, vals))
            if tag == "BEGIN":
                begin = (mono, vals)
            elif tag == "END":
                end = (mono, vals)
        elif line.startswith("P "):
            _, idx, mono = line.split()
            markers.append((int(idx), int(mono)))
    if begin is None:
        raise HarnessError(f"{cfg.name}: no BEGIN sample")
    g0 = begin[0]
    if end is None:                      # timed out: the last sample stands for the end
        last = [s for s in samples if s[1] >= g0][-1]
        end = (last[1], last[2])
    host = pd.DataFrame(host_rows)
    host["time_s"] = host["host_time_s"]
    # timeseries: one row per guest sample from BEGIN on (incl. the tail), host columns as of
    # the latest host row at or before the sample (host and guest clocks aligned at BEGIN)
    rows = []
    prev = None
    for tag, mono, vals in samples:
        if mono < g0:
            continue
        c = counters(vals)
        row = {"time_s": (mono - g0) / 1e9, "tag": tag,
               "phase": max((i for i, m in markers if m <= mono), default=-1),
               "after_end": mono > end[0]}
        row.update({f"d_{k}": (v - prev[k] if prev else 0) for k, v in c.items()})
        row.update(vals)
        rows.append(row)
        prev = c
    ts = pd.DataFrame(rows).sort_values("time_s", kind="stable")
    hcols = ["time_s", "target_set", "actual", "qemu_rss"] + \
        [c for c in host.columns if c.startswith("stat_")]
    ts = pd.merge_asof(ts, host[hcols].sort_values("time_s"), on="time_s",
                       direction="nearest")
    ts = ts.rename(columns={"target_set": "target"})
    ts["balloon"] = cfg.memory - ts["actual"]
    # summary: deltas BEGIN -> END
    c0, c1 = counters(begin[1]), counters(end[1])
    elapsed = (end[0] - g0) / 1e9
    row = {"guest": cfg.name, "policy": policy, **{k: c1[k] - c0[k] for k in COUNTERS}}
    during = host[host["time_s"] <= elapsed + 1e-9]
    if during.empty:
        during = host.iloc[:1]
    row.update({
        "elapsed_s": elapsed,
        "final_actual_mib": float(during["actual"].iloc[-1]) / MIB,
        "min_actual_mib": float(during["actual"].min()) / MIB,
        "mean_balloon_mib": time_mean(during["time_s"].to_numpy(),
                                      (cfg.memory - during["actual"]).to_numpy(float)) / MIB,
        "oom_deflate_pages": oom_deflate_pages(during["target_set"].to_numpy(),
                                               during["actual"].to_numpy()),
    })
    row["deflate_on_oom_fired"] = bool(row["oom_deflate_pages"] > 0)
    row["oom_killed"] = bool(status["how"] == "signal" and status["value"] == signal.SIGKILL)
    row["workload_exit"] = f"{status['how']} {status['value']}"
    row.update({
        "pgpgin": end[1].get("pgpgin", 0) - begin[1].get("pgpgin", 0),
        "pgpgout": end[1].get("pgpgout", 0) - begin[1].get("pgpgout", 0),
        "swap_used_end_mib": (end[1].get("SwapTotal", 0) - end[1].get("SwapFree", 0)) / MIB,
        "mem_total_begin_mib": begin[1].get("MemTotal", 0) / MIB,
        "qemu_rss_end_mib": float(during["qemu_rss"].iloc[-1]) / MIB,
        "qemu_rss_after_tail_mib": float(host["qemu_rss"].iloc[-1]) / MIB,
        "tail_s": float(host["time_s"].iloc[-1] - elapsed),
    })
    return {"summary": pd.DataFrame([row]), "timeseries": ts}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_results(out_dir: Path, res: dict, console: Path, manifest: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)   # a directory without one is partial
    _atomic_write(out_dir / "summary.csv", res["summary"].to_csv(index=False).encode())
    _atomic_write(out_dir / "timeseries.csv",
                  res["timeseries"].to_csv(index=False, float_format="%.6g").encode())
    _atomic_write(out_dir / "console.log", console.read_bytes())
    _atomic_write(out_dir / "manifest.json",
                  (json.dumps(manifest, indent=2, default=str) + "\n").encode())


def host_kind() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"uname": " ".join(platform.uname()), "cpu": cpu, "cpus": os.cpu_count(),
            "memory_mib": mem, "python": platform.python_version(),
            "os": _os_release()}


def _os_release() -> str | None:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        return None
    return None


def git_revision() -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=5)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# --- swap disk calibration -----------------------------------------------------------------------

def calibrate_disk(image: img.Image, accel: str, accel_note: str) -> dict:
    """Measure the swap disk as the guest sees it (O_DIRECT 4 KiB latency, 1 MiB bandwidth)."""
    work = img.BUILD / "run-calibrate"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sockdir = Path(tempfile.mkdtemp(prefix="abval-"))
    swap_img = work / "swap.img"
    with open(swap_img, "wb") as f:
        f.truncate(256 * MIB)
    argv = qemu_argv(image, accel, 256 * MIB, KERNEL_ARGS + " abmode=disk", sockdir,
                     work / "console.log", swap_img, data=False)
    log(f"calibrating the swap disk ({accel})")
    guest = Guest(argv, sockdir, work / "qemu.err")
    try:
        guest.start()
        hit = guest.port.wait_for(lambda s: s.startswith("D "), BOOT_TIMEOUT_S + 120)
    finally:
        guest.stop()
        shutil.rmtree(sockdir, ignore_errors=True)
    if hit is None:
        raise HarnessError(f"disk calibration gave no result; see {work / 'console.log'}")
    vals = {k: int(v) for k, v in (kv.split("=") for kv in hit[2].split()[1:])}
    span = vals["span_bytes"]
    out = {
        "what": "swap disk as the guest sees it: virtio-blk, raw image, cache=none, aio=threads",
        "accel": accel, "accel_note": accel_note, "qemu_version": qemu_version(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "read_4k_p50_us": vals["read4k_p50_ns"] / 1e3,
        "read_4k_p90_us": vals["read4k_p90_ns"] / 1e3,
        "write_4k_p50_us": vals["write4k_p50_ns"] / 1e3,
        "write_4k_p90_us": vals["write4k_p90_ns"] / 1e3,
        "seq_write_mib_s": span / MIB / (vals["seq_write_ns"] / 1e9),
        "seq_read_mib_s": span / MIB / (vals["seq_read_ns"] / 1e9),
        "qemu_command": shlex.join(argv), "host": host_kind(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    _atomic_write(RESULTS / "disk.json", (json.dumps(out, indent=2) + "\n").encode())
    log(f"swap disk: 4k read p50 {out['read_4k_p50_us']:.0f} us, 4k write p50 "
        f"{out['write_4k_p50_us']:.0f} us, {out['seq_write_mib_s']:.0f} MiB/s write, "
        f"{out['seq_read_mib_s']:.0f} MiB/s read")
    shutil.rmtree(work, ignore_errors=True)
    return out


# --- main -----------------------------------------------------------------------------------

def scenario_paths(only: str | None) -> list[Path]:
    paths = sorted(SCENARIOS.glob("*.toml"))
    if only:
        want = [n.strip() for n in only.split(",") if n.strip()]
        known = {p.stem: p for p in paths}
        missing = [n for n in want if n not in known]
        if missing:
            raise HarnessError(f"--only: no scenario {', '.join(missing)} in {SCENARIOS} "
                               f"(have: {', '.join(sorted(known))})")
        paths = [known[n] for n in want]
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.run", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario names (validation/scenarios/NAME.toml)")
    ap.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                    help="auto (default): KVM if a probe boot works, else TCG")
    ap.add_argument("--no-install", action="store_true",
                    help="do not apt-get install missing packages; fail instead")
    ap.add_argument("--calibrate", action="store_true",
                    help="also measure the swap disk (results/disk.json)")
    ap.add_argument("--keep", action="store_true", help="keep build/run-NAME (disk images, logs)")
    a = ap.parse_args(argv)
    try:
        configs = [load_config(p) for p in scenario_paths(a.only)]
        image = img.build(install=not a.no_install, log=log)
        accel, note = choose_accel(image, a.accel)
        log(f"accelerator: {accel} ({note})")
        if a.calibrate:
            calibrate_disk(image, accel, note)
        failed = []
        for cfg in configs:
            try:
                run_scenario(cfg, image, accel, note, keep=a.keep)
            except (HarnessError, QMPError, OSError) as e:
                log(f"{cfg.name}: FAILED: {e}")
                failed.append(cfg.name)
        if failed:
            log(f"failed: {', '.join(failed)}")
            return 1
        return 0
    except (HarnessError, img.ImageError) as e:
        print(f"validation: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
