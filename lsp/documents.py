"""Open documents: UTF-8 text, line index and an incrementally updated tree-sitter tree.

LSP positions count UTF-16 code units; tree-sitter counts UTF-8 bytes. Both are converted here, once.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import tree_sitter

from lsp.syntax.parser import make_parser


@dataclass(frozen=True)
class Position:
    line: int
    character: int  # UTF-16 code units


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


def _line_starts(data: bytes, base: int = 0) -> list[int]:
    starts = []
    index = data.find(b"\n")
    while index != -1:
        starts.append(base + index + 1)
        index = data.find(b"\n", index + 1)
    return starts


class Document:
    """Text and syntax tree of one open document; `apply_change` keeps both in step."""

    def __init__(self, uri: str, text: str, version: int = 0, parser: tree_sitter.Parser | None = None):
        self.uri = uri
        self.version = version
        self._parser = parser or make_parser()
        self.source = text.encode("utf-8")
        self._starts = [0, *_line_starts(self.source)]
        self.tree = self._parser.parse(self.source)

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
        chars = utf16_to_char_index(line, position.character)
        return self._starts[position.line] + len(line[:chars].encode("utf-8"))

    def position_of(self, offset: int) -> Position:
        line = self.line_of_byte(offset)
        column_bytes = self.source[self._starts[line] : offset]
        text = column_bytes.decode("utf-8", errors="replace")
        return Position(line, _char_to_utf16(text, len(text)))

    def point_of(self, offset: int) -> tuple[int, int]:
        """tree-sitter point (row, byte column)."""
        line = self.line_of_byte(offset)
        return (line, offset - self._starts[line])

    def snapshot(self) -> Document:
        """A frozen copy for work off the event loop (edits mutate the tree and line index in place)."""
        copy = Document.__new__(Document)
        copy.uri, copy.version, copy._parser = self.uri, self.version, make_parser()
        copy.source, copy._starts, copy.tree = self.source, list(self._starts), self.tree.copy()
        return copy

    # -- edits ------------------------------------------------------------------------------------------
    def replace_all(self, text: str, version: int) -> None:
        self.source = text.encode("utf-8")
        self._starts = [0, *_line_starts(self.source)]
        self.tree = self._parser.parse(self.source)
        self.version = version

    def apply_change(self, start: Position, end: Position, new_text: str, version: int | None = None) -> None:
        """Replace the range [start, end) with new_text; edit the tree and reparse incrementally."""
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

        self.tree.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=new_end_point,
        )
        self.tree = self._parser.parse(self.source, self.tree)
        if version is not None:
            self.version = version
