"""The vocabulary of idiom rules: safety classes, edits, findings, examples and the rule itself.

A rule is a tree-sitter query (`grammars/elixir/queries/idioms/<id>.scm`, with an `@finding` capture
marking the code the diagnostic covers) plus a pure `rewrite(match)` that returns minimal byte-range
edits, or None when the match turns out not to apply. Everything works on UTF-8 bytes, as tree-sitter
does; the server converts to LSP positions once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

import tree_sitter

from lsp.syntax.parser import load_query


class Safety(StrEnum):
    # Same result for every input (formatting, docs and warnings may change).
    SAFE = "safe"
    # Same result for normal inputs; only exception types/messages, order of equal elements, variable
    # scope or an Elixir-version requirement may change. Fix-all applies these only on opt-in.
    MOSTLY_SAFE = "mostly safe"
    # Plausible inputs give a different result: offered one at a time, with the risk in the title.
    UNSAFE = "unsafe"


@dataclass(frozen=True, order=True)
class Edit:
    """Replace source bytes [start, end) with `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Example:
    """A before/after pair; `after=None` means the rule must not fire on `before`."""

    before: str
    after: str | None


@dataclass(frozen=True)
class Finding:
    rule_id: str
    start: int  # byte range the diagnostic covers
    end: int
    edits: tuple[Edit, ...]

    @property
    def edit_span(self) -> tuple[int, int]:
        return min(e.start for e in self.edits), max(e.end for e in self.edits)


@dataclass
class Match:
    """One query match with the helpers rewrites need."""

    source: bytes
    captures: dict[str, list[tree_sitter.Node]]
    # Short module names the document re-binds with `alias ... as:` or `alias X.Enum` (not the stdlib's).
    shadowed: frozenset[str] = frozenset()

    def node(self, name: str) -> tree_sitter.Node:
        return self.captures[name][0]

    def get(self, name: str) -> tree_sitter.Node | None:
        nodes = self.captures.get(name)
        return nodes[0] if nodes else None

    def nodes(self, name: str) -> list[tree_sitter.Node]:
        return self.captures.get(name, [])

    def text(self, node: tree_sitter.Node | str) -> str:
        if isinstance(node, str):
            node = self.node(node)
        return self.source[node.start_byte : node.end_byte].decode("utf-8")

    def stdlib(self, *modules: str) -> bool:
        """True when none of `modules` is re-bound by an alias in this document."""
        return not self.shadowed.intersection(modules)


Rewrite = Callable[[Match], Sequence[Edit] | None]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str  # imperative, shown as "Make idiomatic: <title>"
    safety: Safety
    rewrite: Rewrite = field(compare=False)
    examples: tuple[Example, ...] = ()
    # The lowest Elixir version the rewritten code needs.
    min_elixir: tuple[int, int] = (1, 0)
    # Why a rule is not SAFE; shown in the action title and the docs.
    risk: str = ""
    doc: str = ""

    @cached_property
    def query(self) -> tree_sitter.Query:
        return load_query(f"queries/idioms/{self.id}")

    def find(self, root: tree_sitter.Node, source: bytes, shadowed: frozenset[str] = frozenset(),
             byte_range: tuple[int, int] | None = None) -> list[Finding]:
        cursor = tree_sitter.QueryCursor(self.query)
        if byte_range is not None:
            cursor.set_byte_range(*byte_range)
        findings: list[Finding] = []
        seen: set[tuple[int, int]] = set()
        for _pattern, captures in cursor.matches(root):
            if "finding" not in captures:
                raise RuntimeError(f"query queries/idioms/{self.id}.scm has a pattern without @finding")
            target = captures["finding"][0]
            key = (target.start_byte, target.end_byte)
            if key in seen:
                continue
            edits = self.rewrite(Match(source, captures, shadowed))
            if not edits:
                continue
            seen.add(key)
            # The diagnostic covers both the matched node and everything the rewrite touches.
            start = min(target.start_byte, *(e.start for e in edits))
            end = max(target.end_byte, *(e.end for e in edits))
            findings.append(Finding(self.id, start, end, tuple(sorted(edits))))
        return findings


