"""Real full and read-only file systems for tests: tmpfs mounts (the tests run as root).

Root ignores permission bits, so a "read-only folder" must be a read-only mount, and a full
disk a small tmpfs. Mounting is part of what these tests prove: where it fails, the test fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def mount_tmpfs(point: Path, options: str) -> None:
    """Mount a tmpfs with `options` (e.g. "ro,size=1m") on an existing empty folder."""
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"cannot mount tmpfs on {point} (these tests need root): {result.stderr.strip()}")


def unmount_all(point: Path) -> None:
    """Unmount every tmpfs stacked on `point`."""
    while subprocess.run(["umount", str(point)], capture_output=True).returncode == 0:
        pass


def fill(folder: Path) -> None:
    """Write zeros into `folder/filler` until its file system is full."""
    with (folder / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass


@contextmanager
def tmpfs(point: Path, options: str, full: bool = False, before_filling: dict[str, str] | None = None) -> Iterator[Path]:
    """A tmpfs on `point` (created if missing) for the block; optionally filled to the last byte
    after writing the files of `before_filling` (name -> text)."""
    point.mkdir(parents=True, exist_ok=True)
    mount_tmpfs(point, options)
    try:
        for name, text in (before_filling or {}).items():
            (point / name).write_text(text)
        if full:
            fill(point)
        yield point
    finally:
        unmount_all(point)
