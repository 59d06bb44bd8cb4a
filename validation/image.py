"""The guest image: Debian packages on the host, the initramfs, the data disk.

Everything is built under ``validation/build/`` (git-ignored) from the host's Debian packages:
``qemu-system-x86`` (the VMM), ``linux-image-amd64`` (the guest kernel, /boot/vmlinuz-VERSION and
its modules in /lib/modules/VERSION), ``busybox-static`` (the guest's userland), ``kmod`` (module
dependencies), ``e2fsprogs`` (the data disk) and ``gcc`` (the static workload program
``guest/abwl.c``). ``ensure_packages`` installs what is missing with ``apt-get install -y``.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUEST_SRC = HERE / "guest"
BUILD = HERE / "build"

# command -> Debian package that provides it
PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "modprobe": "kmod",
    "mke2fs": "e2fsprogs",
    "gcc": "gcc",
}
KERNEL_PACKAGE = "linux-image-amd64"
# What the guest needs as modules in Debian's 6.1 kernel (virtio and ext4 are =m there);
# modprobe --show-depends adds their dependencies in load order.
MODULES = ("virtio_pci", "virtio_blk", "virtio_balloon", "virtio_console", "ext4")
DATA_FILE_MIB = 384     # the file the `read` phases read (the largest read phase must fit)


class ImageError(RuntimeError):
    """The guest image cannot be built (a missing package, kernel, or tool)."""


def which(cmd: str) -> str | None:
    """``shutil.which`` that also looks in /usr/sbin and /sbin (modprobe, mke2fs for non-root)."""
    path = os.environ.get("PATH", os.defpath) + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return shutil.which(cmd, path=path)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    cmd = [which(cmd[0]) or cmd[0], *cmd[1:]]
    try:
        return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)
    except FileNotFoundError:
        raise ImageError(f"{cmd[0]}: not found") from None
    except subprocess.CalledProcessError as e:
        raise ImageError(f"{' '.join(cmd)} failed ({e.returncode}): {e.stderr.strip()[-2000:]}") \
            from None


def _find_static_busybox() -> str | None:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(cand):
            out = subprocess.run(["file", "-L", cand], capture_output=True, text=True).stdout \
                if shutil.which("file") else ""
            if not out or "statically linked" in out or "static-pie" in out:
                return cand
    return None


def kernels() -> list[str]:
    """Kernel versions with both /boot/vmlinuz-V and /lib/modules/V, newest first."""
    out = []
    for p in Path("/boot").glob("vmlinuz-*"):
        v = p.name[len("vmlinuz-"):]
        if (Path("/lib/modules") / v / "modules.dep").exists():
            out.append(v)
    return sorted(out, key=lambda v: [int(x) if x.isdigit() else x
                                      for x in re.split(r"[.-]", v)], reverse=True)


def ensure_packages(install: bool = True, log=print) -> None:
    """Install the Debian packages the harness needs if any is missing (apt-get install -y)."""
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if which(cmd) is None})
    if _find_static_busybox() is None:
        missing.append("busybox-static")
    if not kernels():
        missing.append(KERNEL_PACKAGE)
    missing = sorted(set(missing))
    if not missing:
        return
    if not install:
        raise ImageError(f"missing Debian packages: {' '.join(missing)} "
                         f"(apt-get install -y {' '.join(missing)})")
    if shutil.which("apt-get") is None:
        raise ImageError(f"missing {' '.join(missing)} and no apt-get to install them")
    log(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(prefix + ["apt-get", "update", "-q"], check=False, env=env)
    r = subprocess.run(prefix + ["apt-get", "install", "-y", "--no-install-recommends",
                                 *missing], env=env)
    if r.returncode != 0:
        raise ImageError(f"apt-get install {' '.join(missing)} failed ({r.returncode})")
    if not kernels():
        raise ImageError("no kernel with modules found in /boot and /lib/modules after "
                         f"installing {KERNEL_PACKAGE}")


@dataclass(frozen=True)
class Image:
    kernel_version: str
    kernel: Path            # /boot/vmlinuz-VERSION
    initramfs: Path
    data_disk: Path         # ext2 image holding /file (DATA_FILE_MIB)
    modules: tuple[str, ...]

    def describe(self) -> dict:
        return {"kernel_version": self.kernel_version, "kernel": str(self.kernel),
                "initramfs": str(self.initramfs.relative_to(HERE.parent)),
                "initramfs_sha256": _sha256(self.initramfs),
                "data_disk_mib": self.data_disk.stat().st_size >> 20,
                "modules": list(self.modules)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _module_order(version: str) -> list[Path]:
    """Module files for MODULES and their dependencies, each once, in load order."""
    order: list[Path] = []
    for mod in MODULES:
        out = _run(["modprobe", "-S", version, "--show-depends", mod]).stdout
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == "insmod":
                p = Path(parts[1])
                if p not in order:
                    order.append(p)
            elif parts[:1] == ["builtin"]:
                continue
    return order


def _newer(target: Path, *sources: Path) -> bool:
    return target.exists() and all(target.stat().st_mtime >= s.stat().st_mtime for s in sources)


def build_abwl(log=print) -> Path:
    out = BUILD / "abwl"
    src = GUEST_SRC / "abwl.c"
    if _newer(out, src):
        return out
    BUILD.mkdir(parents=True, exist_ok=True)
    log("building guest/abwl.c (gcc -static)")
    tmp = out.with_name(".abwl.tmp")
    _run(["gcc", "-static", "-O2", "-Wall", "-o", str(tmp), str(src)])
    os.replace(tmp, out)
    return out


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data) entries (directories have data b"")."""
    out = bytearray()
    ino = 1
    for name, mode, data in entries + [("TRAILER!!!", 0, b"")]:
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{x:08X}" for x in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out += hdr.encode() + nb
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
        ino += 1
    return bytes(out)


def build_initramfs(version: str, log=print) -> tuple[Path, tuple[str, ...]]:
    """initramfs.cpio.gz: /init, busybox, abwl, the modules and /modules.order."""
    abwl = build_abwl(log)
    busybox = _find_static_busybox()
    if busybox is None:
        raise ImageError("no static busybox (apt-get install -y busybox-static)")
    mods = _module_order(version)
    init = GUEST_SRC / "init"
    out = BUILD / f"initramfs-{version}.cpio.gz"
    stamp = BUILD / f"initramfs-{version}.modules"
    names = tuple(str(p.relative_to(Path("/lib/modules") / version)) for p in mods)
    if (_newer(out, abwl, init, Path(busybox)) and stamp.exists()
            and stamp.read_text() == "\n".join(names)):
        return out, names
    log(f"building initramfs for {version} ({len(mods)} modules)")
    dirs = ["bin", "dev", "proc", "sys", "data", "lib", "lib/modules"]
    entries: list[tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in dirs]
    for n in names:                                       # module subdirectories
        parts = Path(n).parts[:-1]
        for i in range(1, len(parts) + 1):
            d = "lib/modules/" + "/".join(parts[:i])
            if (d, 0o040755, b"") not in entries:
                entries.append((d, 0o040755, b""))
    entries.append(("init", 0o100755, init.read_bytes()))
    entries.append(("bin/busybox", 0o100755, Path(busybox).read_bytes()))
    entries.append(("abwl", 0o100755, abwl.read_bytes()))
    entries.append(("modules.order", 0o100644, ("\n".join(names) + "\n").encode()))
    for n, p in zip(names, mods):
        entries.append((f"lib/modules/{n}", 0o100644, p.read_bytes()))
    # /dev/console must exist before devtmpfs is mounted, for init's stdout
    data = _cpio_newc(entries)
    tmp = out.with_name(f".{out.name}.tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(data)
    os.replace(tmp, out)
    stamp.write_text("\n".join(names))
    return out, names


def build_data_disk(log=print) -> Path:
    """An ext2 image (4 KiB blocks) holding /file: DATA_FILE_MIB of pseudo-random bytes."""
    out = BUILD / f"data-{DATA_FILE_MIB}MiB.ext2"
    if out.exists():
        return out
    log(f"building data disk ({DATA_FILE_MIB} MiB file on ext2)")
    src = BUILD / "datafs"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    # deterministic content: a repeated 1 MiB block from a fixed seed (contents do not matter
    # to the page cache; they only must be real blocks, not holes)
    import random
    block = random.Random(1).randbytes(1 << 20)
    with open(src / "file", "wb") as f:
        for _ in range(DATA_FILE_MIB):
            f.write(block)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.unlink(missing_ok=True)
    size_mib = DATA_FILE_MIB + DATA_FILE_MIB // 16 + 16
    _run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", "-m", "0", "-d", str(src),
          str(tmp), f"{size_mib}M"])
    os.replace(tmp, out)
    shutil.rmtree(src, ignore_errors=True)
    return out


def build(install: bool = True, log=print) -> Image:
    """Install missing packages and build (or reuse) everything the guest needs."""
    ensure_packages(install=install, log=log)
    ks = kernels()
    version = ks[0]
    initramfs, mods = build_initramfs(version, log)
    return Image(kernel_version=version, kernel=Path("/boot") / f"vmlinuz-{version}",
                 initramfs=initramfs, data_disk=build_data_disk(log), modules=mods)


if __name__ == "__main__":
    img = build()
    print(img.describe())
