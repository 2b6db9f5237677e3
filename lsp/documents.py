"""Open documents: UTF-8 text, line index and an incrementally updated tree-sitter tree.

LSP positions count UTF-16 code units; tree-sitter counts UTF-8 bytes. Both are converted here, once.

Reparsing is bounded per keystroke. tree-sitter's incremental reparse is cheap while the edit stays local,
but while a block is open and unclosed (`fn` typed, its `end` not yet) error recovery re-reads everything
after the cursor: 20-40 ms on a 5,000-line file, on every keystroke until the block closes. So an edit
reparses within `REPARSE_BUDGET_S`; past it the parse is abandoned and the document keeps its last tree,
moved by `Tree.edit` (positions right, structure a few keystrokes behind). Further edits only move that
tree. Keystroke-path context extraction uses that `edited_tree`; whole-file consumers (code actions,
diagnostics, snapshots for work off the event loop) ask for `tree`, which catches up first.

A bounded parse reads the text through a callback (py-tree-sitter only offers a progress callback then),
and such a tree answers text predicates through that callback, slowly; a moved tree has no text at all,
and py-tree-sitter skips text predicates on it. So `edited_tree` is only for queries without text
predicates (`grammars/elixir/context.scm`), and `tree` is always parsed from the bytes.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass

import tree_sitter

from lsp.syntax.parser import make_parser


@dataclass(frozen=True)
class Position:
    line: int
    character: int  # in the negotiated position encoding's units: UTF-16 code units unless the client chose otherwise


def utf16_to_char_index(line: str, utf16_col: int) -> int:
    """Index into `line` (code points) of a UTF-16 column; clamps past the end as LSP requires."""
    if line.isascii():
        return min(utf16_col, len(line))
    units = 0
    for index, char in enumerate(line):
        if units >= utf16_col:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)


def _char_to_utf16(line: str, char_index: int) -> int:
    head = line[:char_index]
    if head.isascii():
        return len(head)
    return len(head.encode("utf-16-le")) // 2


# LSP's position encodings (`general.positionEncodings`); the client picks, UTF-16 unless it says otherwise.
ENCODINGS = ("utf-16", "utf-8", "utf-32")


def column_to_char_index(line: str, column: int, encoding: str) -> int:
    """Index into `line` (code points) of a column in `encoding`; clamps past the end, and a column inside
    a character (a UTF-8 continuation byte) falls back to that character's start."""
    if encoding == "utf-32":
        return min(column, len(line))
    if encoding == "utf-8":
        return len(line.encode("utf-8")[:column].decode("utf-8", errors="ignore"))
    return utf16_to_char_index(line, column)


def char_index_to_column(line: str, char_index: int, encoding: str) -> int:
    if encoding == "utf-32":
        return char_index
    if encoding == "utf-8":
        return len(line[:char_index].encode("utf-8"))
    return _char_to_utf16(line, char_index)


# Per-edit reparse budget; a local edit reparses in well under it (median ~0.3 ms on 5,000 lines).
REPARSE_BUDGET_S = 0.0015
_READ_CHUNK = 16 * 1024


def _line_starts(data: bytes, base: int = 0) -> list[int]:
    starts = []
    index = data.find(b"\n")
    while index != -1:
        starts.append(base + index + 1)
        index = data.find(b"\n", index + 1)
    return starts


class Document:
    """Text and syntax tree of one open document; `apply_change` keeps both in step."""

    def __init__(
        self,
        uri: str,
        text: str,
        version: int = 0,
        parser: tree_sitter.Parser | None = None,
        reparse_budget_s: float | None = REPARSE_BUDGET_S,
        encoding: str = "utf-16",
    ):
        if encoding not in ENCODINGS:
            raise ValueError(f"position encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
        self.uri = uri
        self.version = version
        self.encoding = encoding  # what Position.character counts
        self._parser = parser or make_parser()
        self.reparse_budget_s = reparse_budget_s  # None: always reparse fully (tests, tools)
        self.source = text.encode("utf-8")
        self._starts = [0, *_line_starts(self.source)]
        self._tree = self._parser.parse(self.source)
        self._behind = False  # the tree was moved by edits but not reparsed since
        self._exact = True  # the tree was parsed from `source` as bytes (not behind, not from a callback)
        self.deferred_reparses = 0  # edits whose reparse went over budget (for the benchmark, status)

    # -- syntax tree ------------------------------------------------------------------------------------
    @property
    def tree(self) -> tree_sitter.Tree:
        """The exact tree of the current text, parsed from its bytes (catching up incrementally if needed)."""
        if not self._exact:
            self._tree = self._parser.parse(self.source, self._tree)
            self._behind, self._exact = False, True
        return self._tree

    @property
    def edited_tree(self) -> tree_sitter.Tree:
        """The newest tree without waiting for a deferred reparse: exact, or the last one moved by edits."""
        return self._tree

    @property
    def reparse_deferred(self) -> bool:
        return self._behind

    def _reparse_within_budget(self) -> None:
        budget = self.reparse_budget_s
        if budget is None:
            self._tree = self._parser.parse(self.source, self._tree)
            return
        self._exact = False
        source, deadline = self.source, time.perf_counter() + budget

        def read(offset: int, _point: tuple[int, int]) -> bytes:
            return source[offset : offset + _READ_CHUNK]

        def over_budget(_offset: int, _has_error: bool) -> bool:
            return time.perf_counter() > deadline  # True halts the parse

        try:
            self._tree = self._parser.parse(read, self._tree, progress_callback=over_budget)
        except ValueError:  # halted: py-tree-sitter reports a parse that returned no tree this way
            self._parser.reset()  # drop the half-done parse; the next one starts from `_tree`
            self._behind = True
            self.deferred_reparses += 1

    # -- text access ------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.source.decode("utf-8", errors="replace")

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line_bytes(self, line: int) -> bytes:
        """Line content without its newline."""
        start = self._starts[line]
        end = self._starts[line + 1] - 1 if line + 1 < len(self._starts) else len(self.source)
        return self.source[start:end]

    def line_start_byte(self, line: int) -> int:
        return self._starts[min(max(line, 0), len(self._starts) - 1)]

    def line_of_byte(self, offset: int) -> int:
        return bisect_right(self._starts, offset) - 1

    # -- position conversion ----------------------------------------------------------------------------
    def byte_offset(self, position: Position) -> int:
        if position.line >= len(self._starts):
            return len(self.source)
        if position.line < 0:
            return 0
        line_bytes = self.line_bytes(position.line)
        line = line_bytes.decode("utf-8", errors="replace")
        chars = column_to_char_index(line, position.character, self.encoding)
        return self._starts[position.line] + len(line[:chars].encode("utf-8"))

    def position_of(self, offset: int) -> Position:
        line = self.line_of_byte(offset)
        column_bytes = self.source[self._starts[line] : offset]
        text = column_bytes.decode("utf-8", errors="replace")
        return Position(line, char_index_to_column(text, len(text), self.encoding))

    def point_of(self, offset: int) -> tuple[int, int]:
        """tree-sitter point (row, byte column)."""
        line = self.line_of_byte(offset)
        return (line, offset - self._starts[line])

    def snapshot(self) -> Document:
        """A frozen copy for work off the event loop (edits mutate the tree and line index in place)."""
        copy = Document.__new__(Document)
        copy.uri, copy.version, copy._parser, copy.encoding = self.uri, self.version, make_parser(), self.encoding
        copy.reparse_budget_s, copy.deferred_reparses = self.reparse_budget_s, 0
        copy._behind, copy._exact = False, True
        copy.source, copy._starts, copy._tree = self.source, list(self._starts), self.tree.copy()
        return copy

    # -- edits ------------------------------------------------------------------------------------------
    def replace_all(self, text: str, version: int) -> None:
        self.source = text.encode("utf-8")
        self._starts = [0, *_line_starts(self.source)]
        self._tree = self._parser.parse(self.source)
        self._behind, self._exact = False, True
        self.version = version

    def apply_change(self, start: Position, end: Position, new_text: str, version: int | None = None) -> None:
        """Replace the range [start, end) with new_text; edit the tree and reparse it within the budget."""
        start_byte = self.byte_offset(start)
        old_end_byte = max(self.byte_offset(end), start_byte)
        start_point = self.point_of(start_byte)
        old_end_point = self.point_of(old_end_byte)
        inserted = new_text.encode("utf-8")
        new_end_byte = start_byte + len(inserted)
        last_newline = inserted.rfind(b"\n")
        if last_newline == -1:
            new_end_point = (start_point[0], start_point[1] + len(inserted))
        else:
            new_end_point = (start_point[0] + inserted.count(b"\n"), len(inserted) - last_newline - 1)

        self.source = self.source[:start_byte] + inserted + self.source[old_end_byte:]
        # Line index: lines before the edit keep their starts, lines after shift by the length delta.
        first_line, last_line = start_point[0], old_end_point[0]
        delta = len(inserted) - (old_end_byte - start_byte)
        self._starts[first_line + 1 : last_line + 1] = _line_starts(inserted, start_byte)
        tail_from = first_line + 1 + inserted.count(b"\n")
        if delta:
            self._starts[tail_from:] = [s + delta for s in self._starts[tail_from:]]

        self._tree.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=new_end_point,
        )
        # Once behind, stay behind until asked: retrying a reparse that just overran wastes the budget
        # on every keystroke of the unclosed block.
        if not self._behind:
            self._reparse_within_budget()
        if version is not None:
            self.version = version
