"""Raw collections on disk: `<root>/<source>/part-NNNNN.jsonl` plus `manifest.json`.

A collection is written to a temporary folder and renamed into place only when complete, so an
interrupted `finetune collect` never leaves a half-written collection that `build` would read.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from finetune.records import Record, Skipped

RECORDS_PER_SHARD = 2000


class CollectionWriter:
    """Use as a context manager; on an exception nothing replaces the previous collection."""

    def __init__(self, root: Path, source: str, options: dict[str, Any] | None = None) -> None:
        self.final = Path(root) / source
        self.tmp = Path(root) / f".{source}.partial-{os.getpid()}"
        self.source = source
        self.options = options or {}
        self.records = 0
        self.skipped: list[Skipped] = []
        self.by_language: Counter[str] = Counter()
        self.bytes = 0
        self._shard: Any = None
        self._shard_index = 0
        self._in_shard = 0
        self._seen: set[str] = set()
        self.duplicates = 0

    def __enter__(self) -> CollectionWriter:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.started = time.time()
        return self

    def add(self, item: Record | Skipped) -> None:
        if isinstance(item, Skipped):
            self.skipped.append(item)
            return
        if item.id in self._seen:  # the same file twice in one collection (e.g. a dep vendored twice)
            self.duplicates += 1
            return
        self._seen.add(item.id)
        if self._shard is None or self._in_shard >= RECORDS_PER_SHARD:
            self._next_shard()
        self._shard.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
        self._in_shard += 1
        self.records += 1
        self.bytes += len(item.text.encode("utf-8"))
        self.by_language[item.language] += 1

    def add_all(self, items: Iterable[Record | Skipped]) -> None:
        for item in items:
            self.add(item)

    def _next_shard(self) -> None:
        if self._shard is not None:
            self._shard.close()
        self._shard = (self.tmp / f"part-{self._shard_index:05d}.jsonl").open("w", encoding="utf-8")
        self._shard_index += 1
        self._in_shard = 0

    def manifest(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "options": self.options,
            "records": self.records,
            "bytes": self.bytes,
            "by_language": dict(self.by_language),
            "duplicates_in_collection": self.duplicates,
            "skipped": [asdict(s) for s in self.skipped],
            "seconds": round(time.time() - self.started, 2),
        }

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._shard is not None:
            self._shard.close()
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        (self.tmp / "manifest.json").write_text(json.dumps(self.manifest(), indent=2), encoding="utf-8")
        old = self.final.with_name(f".{self.source}.old-{os.getpid()}")
        if self.final.exists():
            self.final.rename(old)
        self.tmp.rename(self.final)
        shutil.rmtree(old, ignore_errors=True)


def collections(root: Path) -> list[Path]:
    """The complete collections under `root` (folders with a manifest)."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and (p / "manifest.json").exists())


def read_collection(folder: Path) -> Iterator[Record]:
    for shard in sorted(Path(folder).glob("part-*.jsonl")):
        with shard.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield Record.from_json(json.loads(line))
