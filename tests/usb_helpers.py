"""USB sticks for tests: a FAT32 image made by `mkfs.fat` and mounted with FUSE
(`fusefat`), so bundles are written through a real FAT driver, with FAT's limits."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

STICK_KIB = 40_000  # about the smallest FAT32 that mkfs.fat makes with 512-byte sectors


def fuse_unavailable() -> str | None:
    """Why a FUSE stick cannot be mounted here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse in this environment (FUSE stick tests need it)"
    for tool in ("fusefat", "mkfs.fat", "fusermount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup installs fusefat and dosfstools)"
    return None


class FatStick:
    """A FAT32 image file and where it is mounted; `unplug()`/`plug()` as a courier would."""

    def __init__(self, image: Path, mountpoint: Path) -> None:
        self.image = image
        self.mountpoint = mountpoint
        self.mounted = False

    def plug(self) -> Path:
        subprocess.run(["fusefat", "-o", "rw+", str(self.image), str(self.mountpoint)],
                       check=True, capture_output=True, timeout=30)
        self.mounted = True
        return self.mountpoint

    def unplug(self) -> None:
        if self.mounted:
            subprocess.run(["fusermount", "-u", str(self.mountpoint)], check=True,
                           capture_output=True, timeout=30)
            self.mounted = False


@contextlib.contextmanager
def fat_stick(tmp_path: Path, kib: int = STICK_KIB) -> Iterator[FatStick]:
    reason = fuse_unavailable()
    if reason:
        pytest.skip(reason)
    image, mountpoint = tmp_path / "stick.img", tmp_path / "stick"
    mountpoint.mkdir()
    subprocess.run(["mkfs.fat", "-C", "-F", "32", "-n", "COURIER", str(image), str(kib)],
                   check=True, capture_output=True, timeout=30)
    stick = FatStick(image, mountpoint)
    try:
        stick.plug()
    except subprocess.CalledProcessError as e:
        pytest.skip(f"fusefat could not mount the image: {e.stderr!r}")
    try:
        yield stick
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            stick.unplug()


def fill_leaving(directory: Path, free: int) -> Path:
    """Fill a stick with a filler file, then give back `free` bytes (blocking)."""
    filler = directory / "filler.bin"
    step = 1 << 20
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while step >= 4096:  # halve the block at each refusal; stop at a few KiB
            try:
                if os.write(fd, b"\0" * step) == step:
                    continue
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EPERM):  # fusefat says EPERM when full
                    raise
            step //= 2
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - free))
    return filler


class ExfatStick(FatStick):
    """An exFAT image on a loop device, mounted with `exfat-fuse` (which needs a block
    device, hence the loop device)."""

    def __init__(self, image: Path, mountpoint: Path, device: str) -> None:
        super().__init__(image, mountpoint)
        self.device = device

    def plug(self) -> Path:
        subprocess.run(["mount.exfat-fuse", self.device, str(self.mountpoint)],
                       check=True, capture_output=True, timeout=30)
        self.mounted = True
        return self.mountpoint


@contextlib.contextmanager
def exfat_stick(tmp_path: Path, mib: int = 64) -> Iterator[ExfatStick]:
    reason = fuse_unavailable()
    for tool in ("mkfs.exfat", "mount.exfat-fuse", "losetup"):
        if reason is None and shutil.which(tool) is None:
            reason = f"{tool} is not installed (scripts/setup installs exfat-fuse and exfatprogs)"
    if reason:
        pytest.skip(reason)
    image, mountpoint = tmp_path / "stick.img", tmp_path / "stick"
    mountpoint.mkdir()
    with open(image, "wb") as f:
        f.truncate(mib << 20)
    subprocess.run(["mkfs.exfat", "-L", "COURIER", str(image)], check=True, capture_output=True,
                   timeout=30)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True,
                          timeout=30)
    if loop.returncode != 0:
        pytest.skip(f"no loop device for the exFAT image: {loop.stderr.strip()}")
    stick = ExfatStick(image, mountpoint, loop.stdout.strip())
    try:
        try:
            stick.plug()
        except subprocess.CalledProcessError as e:
            pytest.skip(f"exfat-fuse could not mount the image: {e.stderr!r}")
        yield stick
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            stick.unplug()
        subprocess.run(["losetup", "-d", stick.device], capture_output=True, timeout=30)
