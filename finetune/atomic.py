"""Atomic folder output: write under a temporary name, fsync, then rename into place.

Adapters, checkpoints and exports are folders; a crash at any point must leave either the previous folder
or the complete new one, never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any


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


def write_json(path: Path, data: Any, *, temp_mark: str = ".tmp-", **dump_options: Any) -> None:
    """Temp file `.<name><temp_mark><random>`, fsync, os.replace, fsync the folder: the file holds the old
    JSON or the new, never a mix. `dump_options` go to json.dump (indent is 2)."""
    temp = path.parent / f".{path.name}{temp_mark}{secrets.token_hex(4)}"
    try:
        with temp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, **dump_options)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
