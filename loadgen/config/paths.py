"""Paths loadgen writes to, checked before anything starts (``loadgen.cli.preflight.path_options`` and the
commands that write files), and made with a one-line error instead of an ``OSError`` traceback.

Permission bits cannot tell whether a directory can be made (root may write anywhere, yet ``/proc`` takes no new
directory), so ``writable_dir`` asks the filesystem: it makes a scratch directory of a unique name in the deepest
folder that exists and removes it at once. Nothing is left behind, and a run checking the same path at the same
moment never sees (or removes) the probe as its own folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from loadgen.errors import LoadgenError


def writable_dir(path: Path, flag: str = "--out", *, label: str = "") -> None:
    """``path`` is a directory loadgen can create (with its parents) or write into; ``label`` names it in the
    message (default: the flag and the path)."""
    path = path.expanduser()
    label = label or f"{flag} {path}"
    if path.exists():
        if not path.is_dir():
            raise LoadgenError(f"{label} exists and is not a directory")
        if not _can_make_a_folder_in(path):
            raise LoadgenError(f"{label} is not writable")
        return
    missing = path
    while not missing.parent.exists():
        missing = missing.parent
    if not missing.parent.is_dir():
        raise LoadgenError(f"{label} cannot be created: {missing.parent} is not a directory")
    if not _can_make_a_folder_in(missing.parent):
        raise LoadgenError(f"{label} cannot be created: {missing.parent} takes no new folder")


def _can_make_a_folder_in(folder: Path) -> bool:
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".loadgen-check-", dir=folder))
    except OSError:
        return False
    return True


def writable_file(path: Path, flag: str) -> None:
    """``path`` is a file loadgen can write (its folder is made if missing)."""
    path = path.expanduser()
    if path.is_dir():
        raise LoadgenError(f"{flag} {path} is a directory; expected a file name")
    writable_dir(path.parent, label=f"{flag} {path}: its folder")


def make_dir(path: Path, flag: str = "--out") -> None:
    """``mkdir -p``, failing in one line: the checks before the run found it possible, but a disk can fill or a
    folder vanish in between."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoadgenError(f"{flag} {path} cannot be created: {exc.strerror}") from None
