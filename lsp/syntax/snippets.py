"""Neighbour snippets: other open documents cut into definition-sized chunks, ranked by shared identifiers.

The snippets open the prompt, so the same inputs must always give the same snippets in the same order
(the backend reuses its KV cache only for an unchanged prefix): every tie is broken by (path, start_line)
and scores are summed in a fixed order.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import tree_sitter

from lsp.prompt import Snippet
from lsp.syntax.context import ModuleInfo, identifiers, module_outline


@dataclass(frozen=True)
class Chunk:
    path: str
    start_line: int  # 0-based
    text: str
    idents: frozenset[str]


def chunk_document(
    path: str, tree: tree_sitter.Tree, source: bytes, max_lines: int = 40
) -> tuple[Chunk, ...]:
    """One chunk per definition: each module's header (from `defmodule` to its first definition) and each
    def clause with the @doc/@spec above it, cut to `max_lines` lines. A document without modules is cut
    into fixed windows of `max_lines` lines. Chunks come in source order."""
    max_lines = max(1, max_lines)
    lines = source.decode("utf-8", "replace").split("\n")
    spans = _definition_spans(module_outline(tree, source), source)
    if not spans:
        spans = [(start, start + max_lines - 1) for start in range(0, len(lines), max_lines)]
    chunks: list[Chunk] = []
    seen: set[int] = set()
    for start, end in sorted(spans):
        if start in seen or start >= len(lines):
            continue
        seen.add(start)
        text = "\n".join(
            line.rstrip("\r") for line in lines[start : min(end + 1, start + max_lines)]
        ).rstrip()
        if text.strip():
            chunks.append(Chunk(path=path, start_line=start, text=text, idents=identifiers(text)))
    return tuple(chunks)


def _definition_spans(modules: tuple[ModuleInfo, ...], source: bytes) -> list[tuple[int, int]]:
    """(first line, last line) of each module header and each def clause with its @doc/@spec."""
    line_offsets = [0]
    line_offsets.extend(match.end() for match in re.finditer(b"\n", source))

    spans: list[tuple[int, int]] = []
    for module in modules:
        body_starts: list[int] = []
        for function in module.functions:
            start = function.start_line
            def_offset = line_offsets[start] if start < len(line_offsets) else len(source)
            for attribute in (function.doc, function.spec):
                if attribute is not None:
                    # The nearest occurrence above the def is the attribute itself.
                    found = source.rfind(attribute.encode("utf-8"), 0, def_offset)
                    if found >= 0:
                        start = min(start, bisect.bisect_right(line_offsets, found) - 1)
            spans.append((start, function.end_line))
            body_starts.append(start)
        body_starts.extend(
            other.start_line for other in modules if module.start_line < other.start_line <= module.end_line
        )
        header_end = min(body_starts, default=module.end_line + 1) - 1
        spans.append((module.start_line, max(module.start_line, header_end)))
    return spans


def rank_snippets(
    query_idents: frozenset[str],
    chunks: Iterable[Chunk],
    max_snippets: int,
    token_budget: int,
    count_tokens: Callable[[str], int],
) -> tuple[Snippet, ...]:
    """The chunks sharing most (rare) identifiers with the query, best first.

    score = sum over shared identifiers of log(1 + N / df), N chunks, df the chunks holding the identifier:
    a name every file mentions counts little. Chunks sharing nothing are dropped. Snippets are taken best
    first while they fit in `token_budget` as measured by `count_tokens` on the chunk text (one that does
    not fit is skipped for a smaller one after it), at most `max_snippets` of them. Equal scores go by
    (path, start_line); the same inputs always give the same tuple.
    """
    if max_snippets <= 0 or token_budget <= 0 or not query_idents:
        return ()
    unique: dict[tuple[str, int], Chunk] = {}
    for chunk in chunks:
        unique.setdefault((chunk.path, chunk.start_line), chunk)
    pool = [unique[key] for key in sorted(unique)]
    frequency: Counter[str] = Counter()
    for chunk in pool:
        frequency.update(chunk.idents & query_idents)
    weight = {name: math.log(1.0 + len(pool) / count) for name, count in frequency.items()}
    scored: list[tuple[float, str, int, Chunk]] = []
    for chunk in pool:
        shared = sorted(chunk.idents & query_idents)  # fixed summation order: same floats every run
        if shared:
            scored.append((-math.fsum(weight[name] for name in shared), chunk.path, chunk.start_line, chunk))
    scored.sort(key=lambda entry: entry[:3])
    picked: list[Snippet] = []
    used = 0
    for _, _, _, chunk in scored:
        cost = count_tokens(chunk.text)
        if used + cost > token_budget:
            continue
        picked.append(Snippet(path=chunk.path, text=chunk.text))
        used += cost
        if len(picked) >= max_snippets or used >= token_budget:
            break
    return tuple(picked)
