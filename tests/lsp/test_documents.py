"""Document sync: UTF-16 positions, incremental edits, and a tree that always equals a full reparse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.documents import Document, Position
from lsp.syntax.context import extract_context
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


def test_the_negotiated_position_encoding_is_honoured():
    """A client may choose UTF-8 or UTF-32 columns (Neovim 0.10+ offers UTF-8 first)."""
    line = '    "héllo 😀 #{x}"'
    before_emoji = line.index("😀")
    starts = {  # the emoji's column in each encoding's units, and its width in them
        "utf-16": (len(line[:before_emoji].encode("utf-16-le")) // 2, 2),
        "utf-8": (len(line[:before_emoji].encode()), 4),
        "utf-32": (before_emoji, 1),
    }
    for encoding, (start_col, width) in starts.items():
        doc = Document("file:///a.ex", SOURCE, encoding=encoding)
        start = doc.byte_offset(Position(2, start_col))
        end = doc.byte_offset(Position(2, start_col + width))
        assert doc.source[start:end].decode() == "😀", encoding
        assert doc.position_of(end) == doc.snapshot().position_of(end) == Position(2, start_col + width)
        doc.apply_change(Position(2, start_col), Position(2, start_col + width), "x", 2)
        assert doc.source.decode().splitlines()[2] == line.replace("😀", "x"), encoding
    # A UTF-8 column inside a character falls back to the character's start.
    doc = Document("file:///a.ex", SOURCE, encoding="utf-8")
    inside = doc.byte_offset(Position(2, starts["utf-8"][0] + 2))
    assert inside == doc.byte_offset(Position(2, starts["utf-8"][0]))


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
    ),
    # None: every edit reparsed; 0: every reparse deferred; 1 µs: some halted mid-parse.
    st.sampled_from([None, 0.0, 1e-6]),
)
def test_random_incremental_edits_match_client_text_and_full_reparse(edits, budget):
    client_text = SOURCE
    doc = Document("file:///p.ex", client_text, reparse_budget_s=budget)
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


def _big_module(functions: int) -> str:
    body = "".join(f"  def f{k}(x) do\n    x\n    |> g({k})\n  end\n\n" for k in range(functions))
    return f"defmodule Big do\n  alias Big.Helper\n\n{body}end\n"


def test_an_unclosed_block_defers_the_reparse_and_the_exact_tree_comes_on_demand():
    text = _big_module(400)
    doc = Document("file:///big.ex", text, reparse_budget_s=0.0)  # any real reparse goes over budget
    line = text.split("\n").index("    |> g(200)")
    doc.apply_change(Position(line, 0), Position(line, 0), "    Enum.map(list, fn y ->\n", version=2)
    assert doc.reparse_deferred and doc.deferred_reparses == 1
    # Further edits only move the old tree: no reparse is retried while behind.
    doc.apply_change(Position(line + 1, 0), Position(line + 1, 0), "y", version=3)
    assert doc.deferred_reparses == 1
    # The moved tree already knows where things are: the def around the cursor spans the new text.
    cursor = doc.byte_offset(Position(line + 1, 1))
    node = doc.edited_tree.root_node.descendant_for_byte_range(cursor, cursor)
    while node is not None and not doc.source[node.start_byte : node.end_byte].startswith(b"def f200"):
        node = node.parent
    assert node is not None and node.start_byte < cursor < node.end_byte
    assert sexp(doc.tree) == sexp(make_parser().parse(doc.source))
    assert not doc.reparse_deferred


def test_a_local_edit_reparses_within_the_default_budget():
    text = _big_module(400)
    doc = Document("file:///big.ex", text)
    line = text.split("\n").index("    |> g(200)")
    doc.apply_change(Position(line, 4), Position(line, 4), "x", version=2)
    doc.apply_change(Position(line, 5), Position(line, 5), "\n    ", version=3)
    assert not doc.reparse_deferred
    assert sexp(doc.edited_tree) == sexp(make_parser().parse(doc.source))


def test_context_from_a_tree_moved_by_edits_matches_the_exact_one():
    # A moved tree has no source text, so py-tree-sitter skips text predicates on it: keyword sorting
    # must not rely on them (a bare call such as `g(200)` is no definition).
    text = _big_module(50)
    doc = Document("file:///big.ex", text, reparse_budget_s=0.0)
    line = text.split("\n").index("    |> g(20)")
    doc.apply_change(Position(line, 0), Position(line, 0), "    y = 1\n", version=2)
    assert doc.reparse_deferred
    cursor = doc.byte_offset(Position(line, 9))
    moved = extract_context(doc.edited_tree, doc.source, cursor)
    exact = extract_context(doc.tree, doc.source, cursor)
    assert moved == exact
    assert moved.function is not None and moved.function.name == "f20"
    (module,) = moved.modules
    assert module.directives == ("alias Big.Helper",)
    assert [f.name for f in module.functions] == [f"f{k}" for k in range(50)]
