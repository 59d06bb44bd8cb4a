"""Regenerate the trace catalogue in data/ (see data/README.md for what each file is).

    .venv/bin/python data/make_catalogue.py [--only NAME ...] [--scratch DIR]

Recordings run real programs on this machine, so they differ from run to run (timing,
addresses); conversions of the bundled inputs are deterministic. Prints a README table row
(footprint, events, size, sha256) per file.

The kernel builds (kbuild-*) need, installed beforehand (this script installs nothing):
Debian's linux-source-6.1 (the tarball in /usr/src) and the build tools make, gcc, bc, bison,
flex, libelf-dev, libssl-dev; and root with tracefs mounted (file reads are traced). Each
builds in a fresh extraction of the tarball in the scratch directory (1.5 GB).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from autoballoon.trace import (datacenter_envelope, info, read_csv, read_lackey,  # noqa: E402
                               read_any, record, save)

PY = sys.executable
# the raw CloudPhysics trace, shipped gzipped beside its conversion (see data/README.md)
CLOUDPHYSICS = HERE / "cloudphysics" / "cloudPhysicsIO.csv.gz"
C_SOURCES = ["/usr/share/doc/zlib1g-dev/examples", "/usr/share/doc/nettle-dev/examples",
             "/usr/share/doc/libpng-dev/examples"]
MAKEFILE = "SRCS := $(wildcard *.c)\nall: $(SRCS:.c=.o)\n%.o: %.c\n\t-gcc -O2 -g -c $< -o $@\n"
SQL = """PRAGMA cache_size=-16000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300000)
INSERT INTO t SELECT x, (x * 2654435761) % 1000003, printf('%064d', x) FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)) FROM t WHERE k % 7 = 3;
SELECT k, count(*) FROM t GROUP BY k % 1000 ORDER BY 2 DESC LIMIT 3;
"""


def prepare(scratch: Path) -> None:
    """Inputs the recordings need, made before recording starts (not part of the traces)."""
    rng = random.Random(42)
    with open(scratch / "lines.txt", "w") as f:        # ~24 MB of random text lines
        for _ in range(400_000):
            f.write("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(59)) + "\n")
    src = scratch / "cbuild"
    src.mkdir()
    for d in C_SOURCES:
        if not Path(d).is_dir():
            print(f"make-j2: {d} is missing (Debian: install the -dev package), so the build "
                  f"has fewer sources", file=sys.stderr)
        for p in Path(d).glob("*.[ch]"):
            shutil.copy(p, src)
    (src / "Makefile").write_text(MAKEFILE)
    (scratch / "workload.sql").write_text(SQL)


RECORDINGS = {
    # name: (command, working dir relative to scratch, interval ns, what it is)
    "make-j2": (["make", "-j2", "-k", "-s"], "cbuild", 50_000_000,
                "parallel C build: gcc -O2 -g of the zlib, nettle and libpng example sources"),
    "python-unittest": ([PY, "-m", "unittest", "-q", "test.test_json", "test.test_heapq",
                         "test.test_bisect", "test.test_textwrap"], ".", 50_000_000,
                        "a Python test suite: CPython's test_json, test_heapq, test_bisect, "
                        "test_textwrap"),
    "sqlite": (["sqlite3", "w.db", ".read workload.sql"], ".", 100_000_000,
               "SQLite: insert 300k rows, build an index, two aggregate queries"),
    "sort": (["sort", "-S", "64M", "-o", "sorted.txt", "lines.txt"], ".", 100_000_000,
             "GNU sort of 400k random 60-byte lines (24 MB) with a 64 MiB buffer"),
    "xz": (["xz", "-6", "-T1", "-k", "-f", "lines.txt"], ".", 100_000_000,
           "compression: xz -6 single-threaded of the 24 MB text"),
    "python-startup": ([PY, "-c", "import numpy, pandas, pyarrow"], ".", 20_000_000,
                       "interpreter start-up: python importing numpy, pandas and pyarrow"),
}


# Linux kernel builds from Debian's linux-source-6.1; each in a fresh extraction of the tarball
LINUX_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
KBUILD = {
    # name: (shell command in the source tree, interval ns, what it is)
    "kbuild-tiny": ("make -s tinyconfig && make -s -j2 mm/", 50_000_000,
                    "Linux 6.1 kernel build (Debian linux-source-6.1): make tinyconfig, then the "
                    "mm/ subtree (and what it needs) with make -j2"),
    "kbuild-defconfig-mm": ("make -s defconfig && make -s -j2 mm/", 100_000_000,
                            "Linux 6.1 kernel build (Debian linux-source-6.1): make defconfig, "
                            "then the mm/ subtree (and what it needs) with make -j2"),
}
KBUILD_TOOLS = ("make", "gcc", "ld", "bc", "bison", "flex", "tar", "xz")
KBUILD_HEADERS = {"/usr/include/gelf.h": "libelf-dev", "/usr/include/openssl/ssl.h": "libssl-dev"}


def kbuild_missing() -> list[str]:
    """What a kernel-build recording needs and this machine lacks (empty: ready)."""
    missing = []
    if not LINUX_TARBALL.exists():
        missing.append(f"Debian's linux-source-6.1 ({LINUX_TARBALL} not found)")
    missing += [f"the {tool} command" for tool in KBUILD_TOOLS if not shutil.which(tool)]
    missing += [f"{pkg} ({header} not found)" for header, pkg in KBUILD_HEADERS.items()
                if not os.path.exists(header)]
    if os.geteuid() != 0:
        missing.append("root (the file reads of the build are traced with tracefs)")
    elif not any(os.path.isdir(f"{d}/instances") for d in ("/sys/kernel/tracing",
                                                               "/sys/kernel/debug/tracing")):
        missing.append("tracefs (mount -t tracefs nodev /sys/kernel/tracing)")
    return missing


def versions() -> dict:
    """Package versions of what a kernel build runs (dpkg)."""
    out = {}
    for pkg in ("linux-source-6.1", "gcc-12", "make", "binutils"):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                           text=True)
        out[pkg] = r.stdout.strip() if r.returncode == 0 else "?"
    return out


def record_kbuild(scratch: Path, only) -> None:
    out = HERE / "traces"
    out.mkdir(exist_ok=True)
    for name, (cmd, interval, what) in KBUILD.items():
        if only and name not in only:
            continue
        tree = scratch / name
        tree.mkdir()
        subprocess.run(["tar", "xJf", str(LINUX_TARBALL), "-C", str(tree)], check=True)
        src = tree / "linux-source-6.1"
        trace, status = record(["sh", "-c", cmd], interval_ns=interval, trace_reads=True,
                               cwd=src, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if status != 0:
            sys.exit(f"make_catalogue: {name}: the build failed (exit status {status}); "
                     f"run `{cmd}` in an extracted {LINUX_TARBALL.name} to see why")
        trace = dataclasses.replace(trace, meta={
            **trace.meta, "command": cmd, "workload": what, "versions": versions(),
            "licence": "trace recorded by the autoballoon project, no restrictions; the "
                       "traced program is the Linux kernel (GPL-2.0); the trace holds no "
                       "source text, only page numbers, operations and times"})
        save(trace, out / f"{name}.parquet")
        report(out / f"{name}.parquet", what)
        shutil.rmtree(tree)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(path: Path, command: str) -> None:
    t = read_any(path)
    d = info(t)
    size = path.stat().st_size
    what = (f"{d['footprint_pages']} pages, {d['events']} events, {d['duration_ns'] / 1e9:.2f} s"
            if d["kind"] == "access" else f"{d['samples']} samples")
    print(f"| `{path.relative_to(HERE)}` | {command} | {what} | {size / 1024:.0f} KiB | "
          f"`{sha256(path)}` |")


def record_all(scratch: Path, only) -> None:
    out = HERE / "traces"
    out.mkdir(exist_ok=True)
    for name, (cmd, cwd, interval, what) in RECORDINGS.items():
        if only and name not in only:
            continue
        if not shutil.which(cmd[0]):
            print(f"{name}: not recorded, '{cmd[0]}' is not installed (traces/{name}.parquet "
                  f"kept as it was)", file=sys.stderr)
            continue
        trace, status = record(cmd, interval_ns=interval, cwd=scratch / cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        command = " ".join(Path(c).name if c == PY else c for c in cmd)
        trace = dataclasses.replace(trace, meta={**trace.meta, "command": command,
                                                 "workload": what})
        save(trace, out / f"{name}.parquet")
        report(out / f"{name}.parquet", what)


def convert_all(only) -> None:
    if not only or "cloudphysics" in only:
        t = read_csv(CLOUDPHYSICS)
        t = dataclasses.replace(t, meta={
            **t.meta, "source": "CloudPhysics VMware VM block-I/O trace (cloudPhysicsIO.csv from "
            "the libCacheSim repository, github.com/1a1a11a/libCacheSim, commit aa0fc40); "
            "Waldspurger et al., Efficient MRC Construction with SHARDS, FAST 2015",
            "licence": "redistributed as in libCacheSim's data/ folder; cite the SHARDS paper"})
        save(t, HERE / "cloudphysics" / "cloudphysics-io.parquet")
        report(HERE / "cloudphysics" / "cloudphysics-io.parquet", "trace convert --from csv")
    if not only or "lackey" in only:
        t = read_lackey(HERE / "lackey" / "tiny.lackey.gz")
        t = dataclasses.replace(t, meta={
            **t.meta, "source": "valgrind-3.19 lackey of data/lackey/tiny.c (gcc -O1 -static)",
            "licence": "recorded by the autoballoon project; no restrictions"})
        save(t, HERE / "lackey" / "tiny.parquet")
        report(HERE / "lackey" / "tiny.parquet", "trace convert --from lackey")
    if not only or "envelopes" in only:
        (HERE / "envelopes").mkdir(exist_ok=True)
        for source in ("alibaba2018", "google2019", "azure_v2"):
            path = HERE / "envelopes" / f"{source}-day0-1GiB.parquet"
            save(datacenter_envelope(source, day=0), path)
            report(path, f"trace convert --from datacenter {source} --day 0 --memory 1GiB")


ONLY_CHOICES = ("cloudphysics", "lackey", "envelopes", *RECORDINGS, *KBUILD)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=[], choices=ONLY_CHOICES, metavar="NAME",
                    help=f"regenerate only these: {', '.join(ONLY_CHOICES)}")
    ap.add_argument("--scratch", default=None)
    args = ap.parse_args()
    kbuild = not args.only or set(args.only) & set(KBUILD)
    if kbuild and (missing := kbuild_missing()):
        sys.exit("make_catalogue: the kernel-build recordings (kbuild-*) need what this script "
                 "does not install: " + "; ".join(missing) + ".\nOn Debian 12, as root: "
                 "apt-get install linux-source-6.1 bc bison flex libelf-dev libssl-dev. "
                 "The other files regenerate with --only NAME ...")
    convert_all(args.only)
    programs = not args.only or set(args.only) & set(RECORDINGS)
    if not programs and not kbuild:
        return
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="autoballoon-catalogue-"))
    try:
        if programs:
            prepare(scratch)
            record_all(scratch, args.only)
        if kbuild:
            record_kbuild(scratch, args.only)
    finally:
        if not args.scratch:
            shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
