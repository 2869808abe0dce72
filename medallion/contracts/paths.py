"""Checks of the folders and files a command is given, before it touches them.

`check_data_root` is the one validation of `--data` every command runs first (the generator's
CLI can call it too): it turns "a file", "read-only", "cannot be created" into one line that
names the option and the fix, instead of a traceback from deep inside Spark or the writer.
`describe_os_error` and `storage_error` do the same for a write that fails later (full disk).

Pure Python: no Spark, no numpy.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from medallion.contracts.errors import MedallionError


class DataPathError(MedallionError):
    """A path option names something the command cannot use (a file, read-only, missing)."""

    exit_code = 2


class StorageError(MedallionError):
    """A write failed on the storage itself: disk full, quota, read-only file system."""

    exit_code = 1


# Errors that are about the storage, not about medallion: reported in one line, no traceback.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
     errno.ENAMETOOLONG, errno.ELOOP, errno.EFBIG}
)


def describe_os_error(exc: OSError) -> str:
    """`<reason> (<path>)`, e.g. `No space left on device (/data/report.html)`."""
    reason = exc.strerror or os.strerror(exc.errno or 0) or type(exc).__name__
    return f"{reason} ({exc.filename})" if exc.filename else reason


def storage_error(exc: OSError, what: str) -> StorageError:
    """A one-line StorageError for a failed write of `what`, with the fix for the usual causes."""
    fixes = {
        errno.ENOSPC: "free some space (or pass a folder on another disk) and run the command again",
        errno.EDQUOT: "free some space within your quota and run the command again",
        errno.EROFS: "the file system is read-only: pass a writable folder",
        errno.EACCES: "pass a folder you may write to",
        errno.EPERM: "pass a folder you may write to (is it immutable, chattr +i?)",
    }
    fix = fixes.get(exc.errno or 0, "check the path and run the command again")
    return StorageError(f"could not write {what}: {describe_os_error(exc)}; {fix}")


def _probe_writable(folder: Path) -> OSError | None:
    """Really create and remove a file in `folder` (permission bits alone mislead root)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".medallion-probe-", dir=folder)
    except OSError as exc:
        return exc
    os.close(handle)
    try:
        os.unlink(name)
    except OSError as exc:
        return exc
    return None


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or "/")


def check_data_root(
    path: Path | str,
    *,
    writes: bool,
    must_exist: bool = False,
    option: str = "--data",
) -> Path:
    """Validate a data-root option before the command starts; returns the absolute path.

    Args:
        path: the folder given on the command line.
        writes: the command writes into it (pipeline, report, demo, generate), so it must be
            writable, or creatable when it does not exist yet.
        must_exist: the command only reads what is there (verify, export): a missing folder is
            an error rather than something to create.
        option: the option's name, for the message.

    Raises:
        DataPathError: one line naming the option, the problem and the fix.
    """
    given = Path(path).expanduser()
    absolute = Path(os.path.abspath(given))
    if absolute.is_symlink() and not absolute.exists():
        raise DataPathError(f"{option} {given} is a symbolic link to nothing; point it at a folder or pass another path")
    if absolute.exists():
        if not absolute.is_dir():
            raise DataPathError(f"{option} {given} is a file, not a folder; pass the data root folder instead")
        try:
            os.listdir(absolute)
        except OSError as exc:
            raise DataPathError(f"{option} {given} cannot be read: {describe_os_error(exc)}") from None
        if writes:
            problem = _probe_writable(absolute)
            if problem is not None:
                raise DataPathError(
                    f"{option} {given} is not writable ({describe_os_error(problem)}); "
                    "pass a folder this command may write to"
                )
        return absolute
    if must_exist:
        raise DataPathError(
            f"{option} {given} does not exist; pass the data root that `medallion generate` and "
            "`medallion pipeline` wrote"
        )
    ancestor = _nearest_existing(absolute.parent)
    if not ancestor.is_dir():
        raise DataPathError(f"{option} {given} cannot be created: {ancestor} is a file, not a folder")
    problem = _probe_writable(ancestor)
    if problem is not None:
        raise DataPathError(
            f"{option} {given} cannot be created in {ancestor} ({describe_os_error(problem)}); "
            "pass a folder this command may write to"
        )
    return absolute


def check_output_file(path: Path | str, option: str = "--out") -> Path:
    """Validate an output file option: not a folder, and its folder writable or creatable."""
    given = Path(path).expanduser()
    absolute = Path(os.path.abspath(given))
    if absolute.is_dir():
        raise DataPathError(f"{option} {given} is a folder; name the file to write, e.g. {given}/report.html")
    check_data_root(absolute.parent, writes=True, option=f"the folder of {option}")
    return absolute
