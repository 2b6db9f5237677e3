"""From a document and a cursor to a `PromptInput`: windows, out-of-window context, neighbour snippets.

Everything here is chosen so that consecutive keystrokes produce prompts that differ only at the end:
the prefix window starts on a multiple of `anchor_lines` lines and moves in whole steps; the suffix is
text after the cursor, which typing does not change; context and snippets depend only on text outside
the windows and on other documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from lsp.completion.postprocess import ParseGuard
from lsp.config import ContextSettings
from lsp.documents import Document
from lsp.prompt import PromptInput, Snippet
from lsp.syntax.context import ElixirContext, extract_context, identifiers
from lsp.syntax.snippets import Chunk, rank_snippets

CountTokens = Callable[[str], int]
# Rough bytes-per-token used only to bound how much text is tokenized for budgeting.
_MAX_BYTES_PER_TOKEN = 8


class LineTokenCounter:
    """Token counts for budgeting, summed line by line and memoized per line.

    Typing changes one line at a time, so a request tokenizes that line instead of every candidate
    window. A sum of per-line counts can exceed the count of the joined text by a token where BPE would
    merge across a newline, which only makes the budget slightly conservative.
    """

    def __init__(self, count: CountTokens, max_lines: int = 50_000) -> None:
        self._count = count
        self._max_lines = max_lines
        self._lines: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        total = 0
        for line in text.splitlines(keepends=True):
            cost = self._lines.get(line)
            if cost is None:
                if len(self._lines) >= self._max_lines:
                    self._lines.clear()
                cost = self._lines[line] = self._count(line)
            total += cost
        return total


@dataclass(frozen=True)
class Windows:
    anchor_line: int  # first line of the prefix window
    prefix: str
    suffix: str  # the suffix window (prompt and post-processing)
    suffix_end_line: int
    # Bytes of the definition around the cursor, whole lines: the parse guard checks it entire, since
    # windows cut through blocks and a baseline that is already broken hides what a completion breaks.
    definition: tuple[int, int] | None = None


def postprocess_edges(doc: Document, cursor_byte: int, windows: Windows) -> tuple[str, str]:
    """(prefix, suffix) that post-processing sees: the windows, except that the prefix is the whole
    cursor line when the prefix window cuts into it."""
    line_start = doc.line_start_byte(doc.line_of_byte(cursor_byte))
    line_head = doc.source[line_start:cursor_byte].decode("utf-8", errors="replace")
    return (windows.prefix if windows.prefix.endswith(line_head) else line_head), windows.suffix


def parse_guard(doc: Document, cursor_byte: int, windows: Windows, prefix: str, suffix: str) -> ParseGuard:
    """The baseline a completion must not parse worse than: the enclosing definition when there is one."""
    if windows.definition is None:
        return ParseGuard(prefix, suffix)
    start, end = windows.definition
    source = doc.source
    return ParseGuard(source[start:cursor_byte].decode("utf-8", "replace"),
                      source[cursor_byte:end].decode("utf-8", "replace"))


def choose_windows(doc: Document, cursor_byte: int, settings: ContextSettings, count: CountTokens) -> Windows:
    source = doc.source
    cursor_line = doc.line_of_byte(cursor_byte)
    step = settings.anchor_lines

    def prefix_from(line: int) -> str:
        return source[doc.line_start_byte(line) : cursor_byte].decode("utf-8", errors="replace")

    anchor = (cursor_line // step) * step
    prefix = prefix_from(anchor)
    if count(prefix) > settings.prefix_tokens:
        # One step is already over budget: fall back to whole lines just before the cursor.
        anchor = cursor_line
        while anchor > 0 and count(prefix_from(anchor - 1)) <= settings.prefix_tokens:
            anchor -= 1
        prefix = prefix_from(anchor)
    else:
        while anchor >= step:
            candidate = prefix_from(anchor - step)
            if count(candidate) > settings.prefix_tokens:
                break
            anchor, prefix = anchor - step, candidate

    suffix_lines: list[str] = []
    budget = settings.suffix_tokens
    tail = source[cursor_byte : cursor_byte + budget * _MAX_BYTES_PER_TOKEN].decode("utf-8", errors="ignore")
    used = 0
    for line in tail.splitlines(keepends=True):
        cost = count(line)
        if used + cost > budget:
            break
        suffix_lines.append(line)
        used += cost
    suffix = "".join(suffix_lines)
    return Windows(anchor, prefix, suffix, cursor_line + max(len(suffix_lines) - 1, 0))


def _one_line(source: str) -> str:
    """Multi-line source (`alias A.{\n B\n}`, long heads) as one line, so it stays one comment line."""
    return " ".join(source.split())


def context_lines(ctx: ElixirContext, windows: Windows, budget: int, count: CountTokens) -> tuple[str, ...]:
    """Facts about the file that the windows do not show, in source order, within `budget` tokens."""
    lines: list[tuple[int, str]] = []

    def outside(line: int) -> bool:
        return line < windows.anchor_line or line > windows.suffix_end_line

    for module in ctx.modules:
        if outside(module.start_line):
            # defimpl names read "Proto, for: Type"; everything else is a module or protocol name.
            keyword = "defimpl" if ", for:" in module.name else "defmodule"
            lines.append((module.start_line, f"{keyword} {module.name} do"))
            lines.extend((module.start_line, _one_line(directive)) for directive in module.directives)
    function = ctx.function
    if function is not None and outside(function.start_line):
        for attribute in (function.doc, function.spec):
            if attribute:
                lines.extend((function.start_line, text.strip()) for text in attribute.splitlines())
        lines.append((function.start_line, _one_line(function.head)))
    # Sibling heads, nearest to the cursor first when the budget is short.
    innermost = ctx.modules[-1] if ctx.modules else None
    siblings = []
    if innermost is not None:
        cursor = windows.anchor_line
        seen: set[str] = set()
        for info in innermost.functions:
            if outside(info.start_line) and info != function and info.head not in seen:
                seen.add(info.head)
                siblings.append(info)
        siblings.sort(key=lambda info: abs(info.start_line - cursor))

    chosen: list[tuple[int, str]] = []
    used = 0
    for line_no, text in lines + [(info.start_line, _one_line(info.head)) for info in siblings]:
        cost = count(text) + 1
        if used + cost > budget:
            break
        chosen.append((line_no, text))
        used += cost
    chosen.sort(key=lambda item: item[0])
    return tuple(text for _, text in chosen)


@dataclass
class SnippetCache:
    """Neighbour snippets are recomputed only when their inputs change, keeping the prompt stable."""

    key: tuple | None = None
    value: tuple[Snippet, ...] = ()


def neighbour_snippets(
    doc: Document,
    ctx: ElixirContext,
    windows: Windows,
    chunks: Iterable[Chunk],
    chunk_key: tuple,
    settings: ContextSettings,
    count: CountTokens,
    cache: SnippetCache,
) -> tuple[Snippet, ...]:
    if settings.max_neighbours == 0 or settings.neighbour_tokens == 0:
        return ()
    # Identifiers of the enclosing function (or window start) up to the line the user is on: they change
    # only when the user moves to another function or the window moves.
    start = ctx.function.start_line if ctx.function else windows.anchor_line
    key = (doc.uri, start, windows.anchor_line, chunk_key)
    if cache.key == key:
        return cache.value
    query_text = doc.source[doc.line_start_byte(start) : doc.line_start_byte(start + 40)].decode(
        "utf-8", errors="replace"
    )
    cache.key = key
    cache.value = rank_snippets(
        identifiers(query_text), chunks, settings.max_neighbours, settings.neighbour_tokens, count
    )
    return cache.value


def build_prompt_input(
    doc: Document,
    path: str,
    cursor_byte: int,
    settings: ContextSettings,
    count: CountTokens,
    chunks: Iterable[Chunk] = (),
    chunk_key: tuple = (),
    snippet_cache: SnippetCache | None = None,
) -> tuple[PromptInput, Windows]:
    windows = choose_windows(doc, cursor_byte, settings, count)
    ctx = extract_context(doc.edited_tree, doc.source, cursor_byte)
    function = ctx.function
    if function is not None and function.start_line <= doc.line_of_byte(cursor_byte) <= function.end_line:
        end = doc.line_start_byte(function.end_line) + len(doc.line_bytes(function.end_line))
        windows = replace(windows, definition=(doc.line_start_byte(function.start_line), end))
    snippets = neighbour_snippets(
        doc, ctx, windows, chunks, chunk_key, settings, count, snippet_cache or SnippetCache()
    )
    prompt_input = PromptInput(
        path=path,
        prefix=windows.prefix,
        suffix=windows.suffix,
        context_lines=context_lines(ctx, windows, settings.context_tokens, count),
        snippets=snippets,
    )
    return prompt_input, windows
