"""Prompt assembly: windows that keep the prompt's start stable, and out-of-window context."""

from __future__ import annotations

from lsp.completion.assemble import build_prompt_input, choose_windows
from lsp.config import ContextSettings
from lsp.documents import Document, Position
from lsp.prompt import render_completion_prompt


def count(text: str) -> int:
    """A deterministic stand-in tokenizer: four characters a token."""
    return (len(text) + 3) // 4


def big_module(functions: int = 60) -> str:
    body = "".join(
        f'  @doc "Doubles {i}."\n  @spec f{i}(integer()) :: integer()\n  def f{i}(x) do\n    x * {i}\n  end\n\n'
        for i in range(functions)
    )
    return (
        "defmodule Big do\n  alias Big.{\n    Helper,\n    Other\n  }\n  import Enum, only: [map: 2]\n\n"
        + body
        + "end\n"
    )


SETTINGS = ContextSettings(prefix_tokens=200, suffix_tokens=40, context_tokens=120, anchor_lines=8)


def test_prefix_window_starts_on_an_anchor_line_and_fits_the_budget():
    doc = Document("file:///big.ex", big_module())
    cursor = doc.byte_offset(Position(200, 4))
    windows = choose_windows(doc, cursor, SETTINGS, count)
    assert windows.anchor_line % SETTINGS.anchor_lines == 0
    assert count(windows.prefix) <= SETTINGS.prefix_tokens
    # One more step back would not fit.
    earlier = doc.source[doc.line_start_byte(windows.anchor_line - 8) : cursor].decode()
    assert count(earlier) > SETTINGS.prefix_tokens
    assert windows.prefix.endswith(doc.line_bytes(200).decode()[:4])


def test_typing_only_appends_to_the_prompt():
    doc = Document("file:///big.ex", big_module())
    line, column = 202, 4  # the body line of `def f32`
    previous = None
    anchor_moves = 0
    for char in "x |> Helper.step()":
        doc.apply_change(Position(line, column), Position(line, column), char)
        column += 1
        prompt_input, windows = build_prompt_input(
            doc, "lib/big.ex", doc.byte_offset(Position(line, column)), SETTINGS, count
        )
        text = render_completion_prompt(prompt_input, None).text
        if previous is not None:
            if text.startswith(previous[0]):
                assert text == previous[0] + char
            else:
                anchor_moves += 1
        previous = (text, windows.anchor_line)
    assert anchor_moves <= 1


def test_context_lists_what_the_windows_do_not_show_on_single_lines():
    doc = Document("file:///big.ex", big_module())
    cursor = doc.byte_offset(Position(200, 4))
    prompt_input, windows = build_prompt_input(doc, "lib/big.ex", cursor, SETTINGS, count)
    lines = prompt_input.context_lines
    assert lines[0] == "defmodule Big do"
    assert "alias Big.{ Helper, Other }" in lines
    assert "import Enum, only: [map: 2]" in lines
    assert all("\n" not in line for line in lines)
    heads = [line for line in lines if line.startswith("def f")]
    assert heads, lines
    shown = doc.source[doc.line_start_byte(windows.anchor_line) : cursor].decode()
    for head in heads:
        assert head not in shown
    assert sum(count(line) + 1 for line in lines) <= SETTINGS.context_tokens


def test_suffix_window_is_whole_lines_within_budget():
    doc = Document("file:///big.ex", big_module())
    cursor = doc.byte_offset(Position(40, 2))
    windows = choose_windows(doc, cursor, SETTINGS, count)
    assert windows.suffix.endswith("\n")
    assert count(windows.suffix) <= SETTINGS.suffix_tokens + 2
    assert doc.source[cursor:].decode().startswith(windows.suffix)


def test_line_token_counter_sums_lines_and_tokenizes_each_line_once():
    from lsp.completion.assemble import LineTokenCounter

    calls = []

    def count(text: str) -> int:
        calls.append(text)
        return len(text.split())

    counter = LineTokenCounter(count)
    text = "def a do\n  x + 1\nend\n"
    assert counter(text) == sum(len(line.split()) for line in text.splitlines(keepends=True))
    assert counter(text + "def b do\n") == counter(text) + 3
    assert sorted(set(calls)) == sorted(calls), "each line is tokenized once"
    small = LineTokenCounter(count, max_lines=2)
    assert small("a\nb c\nd e f\n") == 6


def test_the_definition_around_the_cursor_is_handed_to_the_parse_guard_whole():
    from lsp.completion.postprocess import ParseGuard

    doc = Document("file:///big.ex", big_module())
    line = doc.text.split("\n").index("    x * 5")
    cursor = doc.byte_offset(Position(line, 4))
    _, windows = build_prompt_input(doc, "lib/big.ex", cursor, SETTINGS, count)
    assert windows.definition is not None
    start, end = windows.definition
    assert doc.source[start:end].decode() == "  def f5(x) do\n    x * 5\n  end"
    # The windows cut through blocks, so their baseline is already broken and hides a completion that
    # breaks the function; the whole definition does not.
    broken = "y = (x +"
    window_guard = ParseGuard(windows.prefix, windows.suffix)
    definition_guard = ParseGuard(
        doc.source[start:cursor].decode(), doc.source[cursor:end].decode()
    )
    assert definition_guard.baseline == 0 and not definition_guard.ok(broken)
    assert window_guard.baseline > 0 and window_guard.ok(broken)  # the prefix opens `defmodule`


def test_no_definition_span_outside_a_function():
    doc = Document("file:///big.ex", big_module())
    cursor = doc.byte_offset(Position(5, 2))  # after the alias block, at module level
    _, windows = build_prompt_input(doc, "lib/big.ex", cursor, SETTINGS, count)
    assert windows.definition is None
