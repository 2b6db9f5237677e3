"""Code records from the files of a downloaded archive (Hex release, GitHub tarball): shared by both."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from finetune.records import Provenance, Record, Skipped, language_of

CODE_LANGUAGES = frozenset({"elixir", "erlang", "eex"})
# Bigger source files are generated data, not code worth training on.
MAX_FILE_BYTES = 1024 * 1024


def code_records(
    files: Mapping[str, bytes],
    where: str,
    provenance: Callable[[str], Provenance],
    meta: Mapping[str, Any],
    skip: Callable[[str], bool] = lambda path: False,
) -> Iterator[Record | Skipped]:
    """One Record per Elixir/Erlang/EEx file (sorted by path); too big or non-UTF-8 files are Skipped."""
    for path in sorted(files):
        language = language_of(path)
        if language not in CODE_LANGUAGES or skip(path):
            continue
        content = files[path]
        if len(content) > MAX_FILE_BYTES:
            yield Skipped(f"{where}:{path}", f"file larger than {MAX_FILE_BYTES} bytes")
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            yield Skipped(f"{where}:{path}", "not UTF-8")
            continue
        yield Record("code", language, text.replace("\r\n", "\n"), provenance(path), dict(meta))
