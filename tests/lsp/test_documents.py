"""Document sync: UTF-16 positions, incremental edits, and a tree that always equals a full reparse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.documents import Document, Position
from lsp.syntax.parser import make_parser

SOURCE = 'defmodule A do\n  def f(x) do\n    "héllo 😀 #{x}"\n  end\nend\n'


def sexp(tree) -> str:
    return str(tree.root_node)


def test_utf16_positions_round_trip_through_astral_characters():
    doc = Document("file:///a.ex", SOURCE)
    # Line 2 is `    "héllo 😀 #{x}"`: the emoji is two UTF-16 units and four UTF-8 bytes.
    emoji_col = 4 + len('"héllo ')
    start = doc.byte_offset(Position(2, emoji_col))
    after = doc.byte_offset(Position(2, emoji_col + 2))
    assert doc.source[start:after].decode() == "😀"
    assert doc.position_of(after) == Position(2, emoji_col + 2)
    # Past the end of a line clamps to its end, as LSP requires.
    line_end = doc.byte_offset(Position(0, 999))
    assert doc.source[line_end : line_end + 1] == b"\n"


def test_incremental_insert_and_delete_keep_text_and_tree():
    doc = Document("file:///a.ex", SOURCE)
    doc.apply_change(Position(1, 9), Position(1, 9), ", y", version=2)
    assert "def f(x, y) do" in doc.text
    doc.apply_change(Position(2, 4), Position(2, 19), "x + y", version=3)
    assert doc.text.splitlines()[2] == "    x + y"
    assert doc.version == 3
    assert sexp(doc.tree) == sexp(make_parser().parse(doc.source))
    assert not doc.tree.root_node.has_error


def test_multiline_replacement_updates_line_index():
    doc = Document("file:///a.ex", SOURCE)
    doc.apply_change(Position(1, 0), Position(3, 5), "  def g, do: :ok\n  def h, do: :ok")
    lines = doc.text.split("\n")
    assert lines[1:3] == ["  def g, do: :ok", "  def h, do: :ok"]
    for line_no, line in enumerate(lines):
        assert doc.line_bytes(line_no).decode() == line
        assert doc.byte_offset(Position(line_no, 0)) == len("\n".join(lines[:line_no]).encode()) + (
            1 if line_no else 0
        )


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _offset_to_position(text: str, index: int) -> Position:
    head = text[:index]
    line = head.count("\n")
    return Position(line, _utf16_len(head[head.rfind("\n") + 1 :]))


fragments = st.sampled_from(
    [
        "def ",
        "do",
        " end",
        "\n",
        "  ",
        "x",
        "(",
        ")",
        '"é"',
        "😀",
        "|> ",
        "fn a -> a end",
        "#{",
        "@doc ",
        "\r\n",
    ]
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 12), st.lists(fragments, max_size=4).map("".join)),
        min_size=1,
        max_size=25,
    )
)
def test_random_incremental_edits_match_client_text_and_full_reparse(edits):
    client_text = SOURCE
    doc = Document("file:///p.ex", client_text)
    for version, (where, length, insert) in enumerate(edits, start=1):
        start = int(where * len(client_text))
        end = min(len(client_text), start + length)
        # Never split a surrogate pair or a CRLF in the "client": editors edit whole characters.
        doc.apply_change(
            _offset_to_position(client_text, start), _offset_to_position(client_text, end), insert, version
        )
        client_text = client_text[:start] + insert + client_text[end:]
        assert doc.text == client_text
    assert sexp(doc.tree) == sexp(make_parser().parse(client_text.encode()))
    assert doc.line_count == client_text.count("\n") + 1
