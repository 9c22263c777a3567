"""Output paths: whether a file or folder can be written there, checked before any work.

A command that writes results (a report, a sweep's folder, a plan's folder, a requests CSV)
checks its output path first, so a path that cannot be written fails in one line naming the
option -- before minutes of simulation, and with nothing written. Folders are not created
here; the command creates them once everything else has been checked.
"""

from __future__ import annotations

from pathlib import Path

from simkit.errors import SimkitError


def _blocked_by_file(p: Path) -> Path | None:
    """The first ancestor of `p` that exists as a file (where a folder must be), if any."""
    for parent in reversed(p.absolute().parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_output_dir(path: str | Path, option: str) -> Path:
    """A folder that exists, or can be created (no file in the way)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise SimkitError(f"{option}: {str(path)!r} exists and is not a folder")
    blocker = _blocked_by_file(p)
    if blocker is not None:
        raise SimkitError(f"{option}: cannot create {str(path)!r}: {str(blocker)!r} is a file, "
                          "not a folder")
    return p


def check_output_file(path: str | Path, option: str) -> Path:
    """A file whose folder exists (it is not created), and that is not itself a folder."""
    p = Path(path)
    if p.is_dir():
        raise SimkitError(f"{option}: {str(path)!r} is a folder, not a file")
    blocker = _blocked_by_file(p)
    if blocker is not None:
        raise SimkitError(f"{option}: cannot write {str(path)!r}: {str(blocker)!r} is a file, "
                          "not a folder")
    folder = p.absolute().parent
    if not folder.is_dir():
        raise SimkitError(f"{option}: no such folder {str(folder)!r}")
    return p
