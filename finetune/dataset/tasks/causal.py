"""Stage 1: files and doc pages as causal-LM text, each under the `# File:` header the server renders.

A long file is cut at blank lines into parts of at most `max_chars`; every part carries the header again,
so the model always sees where code comes from, as it does when completing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from finetune.dataset.tasks.common import make_sample, record_path
from finetune.records import Record
from lsp.prompt import PromptInput, render_header

DEFAULT_MAX_CHARS = 16_000


def causal_header(record: Record) -> str:
    """`# File: <path>` (the server's header); doc pages also name their module as a context line."""
    context: tuple[str, ...] = ()
    module = record.meta.get("module")
    if record.kind == "doc" and module:
        context = (f"Documentation of {module}",)
    elif record.kind == "book":
        titles = [str(record.meta.get(key)) for key in ("book", "chapter_title", "section_title")]
        context = (" / ".join(title for title in titles if title and title != "None"),)
    return render_header(PromptInput(path=record_path(record), prefix="", context_lines=context))


def split_text(text: str, max_chars: int) -> list[str]:
    """Parts of at most `max_chars` (a single over-long paragraph stays whole), cut after blank lines."""
    if len(text) <= max_chars:
        return [text]
    parts: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        piece = paragraph + "\n\n"
        if current and len(current) + len(piece) > max_chars:
            parts.append(current)
            current = ""
        current += piece
    if current.strip():
        parts.append(current)
    # Restore the text exactly: the last paragraph had no trailing blank line.
    if parts and not text.endswith("\n\n"):
        parts[-1] = parts[-1][:-2]
    return parts


def causal_samples(record: Record, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[dict[str, Any]]:
    """Stage-1 rows for a code file, doc page or book section: prompt "" and `text` = header + content."""
    header = causal_header(record)
    parts = split_text(record.text, max_chars)
    for index, part in enumerate(parts):
        if not part.strip():
            continue
        meta: dict[str, Any] = {"kind": record.kind, "language": record.language}
        if len(parts) > 1:
            meta.update(part=index, parts=len(parts))
        yield make_sample(1, f"causal_{record.kind}", record.provenance, text=header + part, meta=meta)
