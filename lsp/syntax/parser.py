"""The Elixir tree-sitter language, parsers and the query files in `grammars/elixir/`."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import tree_sitter
import tree_sitter_elixir

# The grammar the queries were written against; a different one may change node shapes.
GRAMMAR_PACKAGE = "tree-sitter-elixir"
GRAMMAR_VERSION = "0.3.5"

QUERY_DIR = Path(__file__).resolve().parents[2] / "grammars" / "elixir"


@cache
def elixir_language() -> tree_sitter.Language:
    return tree_sitter.Language(tree_sitter_elixir.language())


def make_parser() -> tree_sitter.Parser:
    """A fresh parser (parsers are cheap and not shared between threads)."""
    return tree_sitter.Parser(elixir_language())


@cache
def load_query(name: str) -> tree_sitter.Query:
    """Compile `grammars/elixir/<name>.scm`; a broken query fails loudly with its file name."""
    path = QUERY_DIR / f"{name}.scm"
    try:
        return tree_sitter.Query(elixir_language(), path.read_text(encoding="utf-8"))
    except (OSError, tree_sitter.QueryError) as exc:
        raise RuntimeError(f"cannot load tree-sitter query {path}: {exc}") from exc


def count_errors(node: tree_sitter.Node, start_byte: int = 0, end_byte: int | None = None) -> int:
    """ERROR and MISSING nodes overlapping [start_byte, end_byte) under `node`."""
    end = node.end_byte if end_byte is None else end_byte
    if not node.has_error or node.end_byte < start_byte or node.start_byte > end:
        return 0
    own = 1 if (node.is_error or node.is_missing) else 0
    return own + sum(count_errors(child, start_byte, end) for child in node.children)


def descendants(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """`node` and everything under it, in document order (iterative: deep trees do not recurse)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))
