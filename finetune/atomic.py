"""Atomic folder output: write under a temporary name, fsync, then rename into place.

Adapters, checkpoints and exports are folders; a crash at any point must leave either the previous folder
or the complete new one, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def fsync_tree(root: Path) -> None:
    """Flush every file under `root`, then `root` itself."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(root)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def replace_dir(new: Path, target: Path) -> None:
    """Rename the finished folder `new` to `target`. rename() cannot replace a non-empty folder, so an
    existing one is moved aside for a moment and removed only once the new one is in place."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
    new.rename(target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
