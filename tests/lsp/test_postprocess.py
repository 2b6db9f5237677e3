"""Golden before/after cases for each post-processing rule, the streaming stop check, and properties."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.completion.postprocess import (
    ParseGuard,
    PostprocessResult,
    _inline_repeat,
    _Lexer,
    close_open_blocks,
    cut_at_block_end,
    cut_repetitions,
    drop_suffix_repeats,
    first_line,
    guard_parse,
    is_mid_line,
    make_stop_check,
    postprocess,
    strip_junk,
    trim_whitespace,
)
from lsp.syntax.parser import count_errors, make_parser

MODULE_DEF = "defmodule Calc do\n  def add(a, b) do\n    "
MODULE_DEF_END = "\n  end\nend\n"

GENSERVER_CASE = """defmodule Cache do
  use GenServer

  @impl true
  def handle_call({:get, key}, _from, state) do
    case Map.fetch(state, key) do
      """
GENSERVER_CASE_END = "\n    end\n  end\nend\n"

FN_CLOSURE = "  def double(list) do\n    Enum.map(list, fn x ->\n      "


# -- rule 1: junk ----------------------------------------------------------------------------------------


def test_strip_junk_cuts_at_end_of_text() -> None:
    assert strip_junk("a + b<|endoftext|>defmodule Other do") == "a + b"


def test_strip_junk_cuts_at_chat_and_fim_tokens() -> None:
    assert strip_junk("{:ok, state}<|im_end|>\n<|im_start|>user") == "{:ok, state}"
    assert strip_junk("x\n<file_sep>lib/other.ex\ndefmodule") == "x\n"
    assert strip_junk("x<fim_suffix>end") == "x"


def test_strip_junk_drops_leading_special_tokens() -> None:
    assert strip_junk("<fim_middle>Enum.sum(list)") == "Enum.sum(list)"
    assert strip_junk("<|fim_middle|><|endoftext|>") == ""


def test_strip_junk_normalises_newlines_and_control_characters() -> None:
    assert strip_junk("a = 1\r\nb = 2\rc = 3") == "a = 1\nb = 2\nc = 3"
    assert strip_junk("IO.puts(\x00x\x1b)\ufffd") == "IO.puts(x)"
    assert strip_junk("\tx = 1") == "\tx = 1"


def test_strip_junk_keeps_elixir_operators_that_look_like_tokens() -> None:
    code = "a <|> b |> c(<<1>>)"
    assert strip_junk(code) == code


def test_postprocess_only_junk_is_empty() -> None:
    assert postprocess("<|endoftext|>", MODULE_DEF, MODULE_DEF_END) == PostprocessResult("", "empty")
    assert postprocess("  \n\t", MODULE_DEF, MODULE_DEF_END) == PostprocessResult("", "empty")


# -- rule 2: one line mid-line ---------------------------------------------------------------------------


def test_is_mid_line() -> None:
    assert not is_mid_line("    foo(", ")\n  end")
    assert is_mid_line("    foo(", "bar)\n")
    assert not is_mid_line('    IO.puts("', '")')
    assert not is_mid_line("    %{a: 1, ", "}),")
    assert is_mid_line("    %{a: 1, ", "}, [1, 2]")
    assert not is_mid_line("    <<1, ", ">>")
    assert is_mid_line("    fn x -> ", " end)")
    assert is_mid_line("    x = ", " + tax\n")
    assert not is_mid_line("    x = ", "  \n  end")
    assert not is_mid_line("    x = ", "")


def test_first_line() -> None:
    assert first_line("input\n    y = 2\n") == "input"
    assert first_line("\nfoo") == ""


def test_postprocess_mid_line_keeps_one_line() -> None:
    result = postprocess("input\n    y = compute(input)", "    x = compute(", ", opts)\n")
    assert result == PostprocessResult("input", "single-line")


def test_postprocess_mid_line_starting_with_newline_offers_nothing() -> None:
    assert postprocess("\n    y = 2", "    x = compute(", ", opts)\n").text == ""


# -- rule 3: end of the block ----------------------------------------------------------------------------


def test_def_body_stops_before_the_end_the_suffix_has() -> None:
    raw = "a + b\n  end\n\n  def sub(a, b) do\n    a - b\n  end"
    assert cut_at_block_end(raw, MODULE_DEF, MODULE_DEF_END) == "a + b"


def test_def_body_keeps_its_end_when_the_suffix_lacks_it() -> None:
    raw = "a + b\n  end\n\n  def sub(a, b) do\n    a - b\n  end"
    assert cut_at_block_end(raw, MODULE_DEF, "") == "a + b\n  end"


def test_suffix_end_of_an_outer_block_does_not_count() -> None:
    # The suffix has the module's `end` (column 0), not the function's (column 2).
    raw = "a + b\n  end\n\n  def sub(a, b) do"
    assert cut_at_block_end(raw, MODULE_DEF, "\nend\n") == "a + b\n  end"


def test_suffix_with_a_new_def_at_the_function_level_means_the_end_is_missing() -> None:
    suffix = "\n\n  def sub(a, b), do: a - b\nend\n"
    assert cut_at_block_end("a + b\n  end\n  def mul", MODULE_DEF, suffix) == "a + b\n  end"


def test_genserver_case_clauses_stop_before_the_case_end() -> None:
    raw = "{:ok, v} -> {:reply, v, state}\n      :error -> {:reply, nil, state}\n    end\n  end"
    expected = "{:ok, v} -> {:reply, v, state}\n      :error -> {:reply, nil, state}"
    assert cut_at_block_end(raw, GENSERVER_CASE, GENSERVER_CASE_END) == expected


def test_genserver_case_keeps_the_case_end_but_not_the_def_end() -> None:
    raw = "{:ok, v} -> {:reply, v, state}\n      :error -> {:reply, nil, state}\n    end\n  end\nend"
    expected = "{:ok, v} -> {:reply, v, state}\n      :error -> {:reply, nil, state}\n    end"
    assert cut_at_block_end(raw, GENSERVER_CASE, "") == expected


def test_fn_closure_stops_before_the_suffix_end() -> None:
    raw = "x * 2\n    end)\n    |> Enum.sum()"
    assert cut_at_block_end(raw, FN_CLOSURE, "\n    end)\n  end\n") == "x * 2"


def test_fn_closure_keeps_end_and_paren_but_nothing_after() -> None:
    raw = "x * 2\n    end)\n    |> Enum.sum()"
    assert cut_at_block_end(raw, FN_CLOSURE, "") == "x * 2\n    end)"


def test_inline_fn_is_balanced_within_the_completion() -> None:
    prefix = "  def total(orders) do\n    "
    raw = "orders\n    |> Enum.map(fn %{qty: q, price: p} -> q * p end)\n    |> Enum.sum()"
    assert cut_at_block_end(raw, prefix, "\n  end\n") == raw


def test_closing_paren_the_suffix_already_has() -> None:
    assert cut_at_block_end('value, label: "v")', "    IO.inspect(", ")\n") == 'value, label: "v"'


def test_closing_quote_the_suffix_already_has() -> None:
    prefix = '  def hi do\n    IO.puts("hello '
    assert cut_at_block_end('world")\n  end', prefix, '")\n  end\n') == "world"


def test_string_typed_at_end_of_line_may_be_closed() -> None:
    prefix = '  def hi do\n    IO.puts("hello '
    assert cut_at_block_end('world")\n  end', prefix, "\n  end\n") == 'world")'


def test_wrong_closer_is_cut() -> None:
    assert cut_at_block_end("1, 2)\n    foo()", "    list = [x, ", "\n  end\n") == "1, 2"


def test_closer_of_something_never_opened_is_cut() -> None:
    assert cut_at_block_end("1 + 2) * 3", "x = ", "") == "1 + 2"


def test_keyword_do_form_opens_nothing() -> None:
    prefix = "defmodule M do\n  def a(x), do: x\n  "
    raw = "def b(x), do: x * 2\nend\n\ndefmodule N do"
    assert cut_at_block_end(raw, prefix, "\nend\n") == "def b(x), do: x * 2"


def test_atoms_strings_and_comments_with_keywords_are_not_blocks() -> None:
    prefix = "  def handle_info(:tick, state) do\n    "
    raw = (
        'send(self(), {:end, "do the end"})\n'
        "    # end of the loop, do it again\n"
        "    opts = [do: :end, fn: ~s(end)]\n"
        "    {:noreply, state}\n"
        "  end\n\n"
        "  def other"
    )
    expected = raw[: raw.index("\n  end")]
    assert cut_at_block_end(raw, prefix, "\n  end\n") == expected


def test_heredoc_doc_stops_at_the_closing_quotes_the_suffix_has() -> None:
    prefix = '  @doc """\n  Adds '
    raw = 'two numbers.\n  """\n  def add(a, b), do: a + b'
    assert cut_at_block_end(raw, prefix, '\n  """\n  def add(a, b), do: a + b\n') == "two numbers."


def test_heredoc_contents_are_not_code() -> None:
    prefix = "  def f do\n    "
    raw = 'doc = """\n  end do fn\n"""\n    String.trim(doc)'
    assert cut_at_block_end(raw, prefix, "\n  end\n") == raw


def test_multi_clause_function_stops_at_the_next_clause() -> None:
    prefix = "  def fact(0), do: 1\n  def fact(n) do\n    "
    raw = "n * fact(n - 1)\n  end\n\n  def fact(n) do"
    assert cut_at_block_end(raw, prefix, "\n  end\n") == "n * fact(n - 1)"


def test_dedent_to_the_function_level_ends_the_body() -> None:
    raw = "a + b\n\n  def sub(a, b) do\n    a - b\n  end"
    assert cut_at_block_end(raw, MODULE_DEF, "") == "a + b"


def test_with_else_stays_in_the_block() -> None:
    prefix = "  def run(x) do\n    with {:ok, a} <- fetch(x),\n         {:ok, b} <- parse(a) do\n      "
    raw = "{:ok, b}\n    else\n      err -> err\n    end\n  end"
    assert cut_at_block_end(raw, prefix, "\n  end\nend\n") == "{:ok, b}\n    else\n      err -> err\n    end"


def test_multi_line_function_head() -> None:
    prefix = "  def long(\n        a,\n        b\n      ) do\n    "
    assert cut_at_block_end("a + b\n  end\n  def x", prefix, "") == "a + b\n  end"


def test_cond_block_of_the_completion_is_kept() -> None:
    raw = "cond do\n      x > 0 -> :pos\n      true -> :neg\n    end"
    assert cut_at_block_end(raw, "  def sign(x) do\n    ", "\n  end\nend\n") == raw


def test_two_blank_lines_end_the_completion() -> None:
    assert cut_at_block_end("x = 1\n\n\n    y = 2", MODULE_DEF, MODULE_DEF_END) == "x = 1"
    assert cut_at_block_end("x = 1\n\n    y = 2", MODULE_DEF, MODULE_DEF_END) == "x = 1\n\n    y = 2"


def test_cursor_right_after_do() -> None:
    prefix = "defmodule Calc do\n  def add(a, b) do"
    assert cut_at_block_end("\n    a + b\n  end", prefix, "\n  end\nend\n") == "\n    a + b"
    assert cut_at_block_end("\n    a + b\n  end\nend", prefix, "\nend\n") == "\n    a + b\n  end"


def test_keyword_do_being_typed() -> None:
    # `, do` can only become `, do:`: no block opens, so the module-level `def` after it is fine.
    prefix = "defmodule Calc do\n  def add(a, b), do"
    raw = ": a + b\n  def sub(a, b), do: a - b\nend"
    assert cut_at_block_end(raw, prefix, "\nend\n") == ": a + b\n  def sub(a, b), do: a - b"


def test_if_else_inside_the_cursor_block() -> None:
    prefix = "  def f(x) do\n    if x do\n      "
    raw = ":a\n    else\n      :b\n    end\n  end"
    assert cut_at_block_end(raw, prefix, "\n    end\n  end\n") == ":a\n    else\n      :b"


def test_identifier_starting_in_the_prefix_is_not_a_keyword() -> None:
    # The user typed `do`; the completion makes it `do_work`, which opens nothing.
    prefix = "  def run(state) do\n    do"
    assert cut_at_block_end("_work(state)\n  end", prefix, "\n  end\n") == "_work(state)"


# -- rule 4: repeats of the suffix -----------------------------------------------------------------------


def test_completion_running_into_the_next_line_is_cut() -> None:
    prefix = "  def init(opts) do\n    "
    raw = "state = Map.new(opts)\n    {:ok, state}"
    assert drop_suffix_repeats(raw, prefix, "\n    {:ok, state}\n  end\n") == "state = Map.new(opts)"


def test_completion_equal_to_the_next_line_is_dropped() -> None:
    prefix = "  def init(opts) do\n    "
    assert drop_suffix_repeats("{:ok, opts}", prefix, "\n    {:ok, opts}\n  end\n") == ""


def test_completion_equal_to_the_start_of_the_suffix_is_dropped() -> None:
    assert drop_suffix_repeats("\n    x + 1", "  def f(x) do", "\n    x + 1\n  end") == ""
    assert postprocess("bar)", "    foo(", "bar)\n") == PostprocessResult("", "repeats-suffix")


def test_closing_lines_repeat_only_at_the_same_indentation() -> None:
    raw = "if ok do\n      :yes\n    end"
    assert drop_suffix_repeats(raw, "  def f(ok) do\n    ", "\n  end\n") == raw
    assert drop_suffix_repeats('x\n  """', '  @doc """\n  ', '\n  """\n  def f') == "x"


def test_blank_lines_of_the_suffix_are_skipped() -> None:
    prefix = "  def f(x) do\n    "
    raw = "y = x * 2\n    log(y)\n    y"
    assert drop_suffix_repeats(raw, prefix, "\n\n    log(y)\n    y\n  end\n") == "y = x * 2"


def test_postprocess_reports_suffix_repeats() -> None:
    prefix = "  def init(opts) do\n    "
    result = postprocess(
        "state = Map.new(opts)\n    {:ok, state}\n  end", prefix, "\n    {:ok, state}\n  end\n"
    )
    assert result == PostprocessResult("state = Map.new(opts)", "repeats-suffix")


# -- rule 5: repetition loops ----------------------------------------------------------------------------


def test_line_repeated_three_times_keeps_the_first() -> None:
    assert cut_repetitions("foo()\n    foo()\n    foo()\n    foo()", "    ") == "foo()"


def test_block_of_lines_repeated_keeps_the_first() -> None:
    block = "IO.puts(a)\n    IO.puts(b)\n    "
    assert cut_repetitions("x = 1\n    " + block * 3, "    ") == "x = 1\n    IO.puts(a)\n    IO.puts(b)"


def test_two_copies_are_not_a_loop() -> None:
    raw = "assert_receive :tick\n    assert_receive :tick"
    assert cut_repetitions(raw, "    ") == raw


def test_pattern_repeated_within_a_line() -> None:
    raw = "Enum.map(Enum.map(Enum.map(Enum.map(Enum.map(list"
    assert cut_repetitions(raw, "    x = ") == "Enum.map("


def test_numbers_and_short_runs_are_not_loops() -> None:
    for raw in ("<<0, 0, 0, 0, 0, 0, 0, 0>>", '"aaaa"', "[:a, :b, :c, :d]"):
        assert cut_repetitions(raw, "    x = ") == raw


def test_postprocess_reports_repetition() -> None:
    result = postprocess("foo()\n    foo()\n    foo()\n    foo()", "  def f do\n    ", "\n  end\n")
    assert result == PostprocessResult("foo()", "repetition")


# -- rule 6: whitespace ----------------------------------------------------------------------------------


def test_trim_whitespace() -> None:
    assert trim_whitespace("x = 1  \n  y = 2\t\n\n") == "x = 1\n  y = 2"
    assert trim_whitespace("\n    x") == "\n    x"
    assert trim_whitespace("   \n\t") == ""


# -- rule 7: never parse worse ---------------------------------------------------------------------------


def test_open_if_gets_its_end() -> None:
    text, reason = guard_parse("if x > 0 do\n      :pos", "  def f(x) do\n    ", "\n  end\n")
    assert (text, reason) == ("if x > 0 do\n      :pos\n    end", "closed-block")


def test_open_fn_gets_end_and_paren() -> None:
    prefix = "  def f(list) do\n    "
    assert close_open_blocks("Enum.map(list, fn x ->\n      x * 2", prefix, "\n  end\n") == (
        "Enum.map(list, fn x ->\n      x * 2\n    end)"
    )
    assert close_open_blocks("x * 2", prefix, "\n  end\n") is None
    assert postprocess("Enum.map(list, fn x ->\n      x * 2", prefix, "\n  end\n") == PostprocessResult(
        "Enum.map(list, fn x ->\n      x * 2\n    end)", "closed-block"
    )


def test_broken_last_line_is_truncated() -> None:
    text, reason = guard_parse("x = 1\n    y = (2 +", "  def f(x) do\n    ", "\n  end\n")
    assert (text, reason) == ("x = 1", "truncated-parse")


def test_broken_single_line_is_dropped() -> None:
    assert guard_parse("* *", "    total = ", " + tax\n") == ("", "worse-parse")
    assert postprocess("* *", "    total = ", " + tax\n") == PostprocessResult("", "worse-parse")


def test_good_completion_is_untouched() -> None:
    assert guard_parse("a + b", MODULE_DEF, MODULE_DEF_END) == ("a + b", None)


def test_unclosed_prefix_blocks_do_not_make_body_worse() -> None:
    # Without any `end` in the document tree-sitter reports one ERROR with or without the completion.
    assert guard_parse("x * 2\n    end)", FN_CLOSURE, "") == ("x * 2\n    end)", None)
    assert postprocess("{:ok, v} -> v\n      :error -> nil", GENSERVER_CASE, "").reason == "ok"


def test_parse_check_uses_byte_offsets() -> None:
    prefix = '  def greet do\n    IO.puts("héllo ✓ wörld")\n    '
    assert guard_parse(':ok\n    "✓"', prefix, "\n  end\n") == (':ok\n    "✓"', None)
    assert guard_parse("(", prefix, "\n  end\n") == ("", "worse-parse")


# -- the stop check --------------------------------------------------------------------------------------


def _stop_point(prefix: str, suffix: str, raw: str, step: int = 1) -> int | None:
    """Length of the generated text when the stop check first says stop, feeding `step` chars a token."""
    check = make_stop_check(prefix, suffix)
    for end in range(step, len(raw) + step, step):
        if check(raw[:end]):
            return min(end, len(raw))
    return None


def test_stop_mid_line_at_newline() -> None:
    check = make_stop_check("    x = compute(", ", opts)\n")
    assert not check("input")
    assert not check("input, 1")
    assert check("input, 1\n")
    assert check("input, 1\n  more")  # stays stopped


def test_stop_when_the_cursor_block_closes() -> None:
    raw = "a + b\n  end\n\n  def sub(a, b) do\n"
    stop = _stop_point(MODULE_DEF, "", raw)
    assert stop == len("a + b\n  end\n")


def test_stop_at_the_end_the_suffix_already_has() -> None:
    raw = "a + b\n  end\n"
    stop = _stop_point(MODULE_DEF, MODULE_DEF_END, raw)
    assert stop is not None
    assert len("a + b\n  end") <= stop <= len(raw)


def test_stop_on_dedent_as_soon_as_the_word_is_known() -> None:
    raw = "a + b\n\n  def sub(a, b) do\n"
    assert _stop_point(MODULE_DEF, "", raw) == len("a + b\n\n  def ")


def test_stop_on_two_blank_lines() -> None:
    assert _stop_point(MODULE_DEF, MODULE_DEF_END, "x = 1\n\n\n    y") == len("x = 1\n\n\n")


def test_stop_on_a_repetition_loop() -> None:
    raw = "foo()\n    foo()\n    foo()\n    foo()\n"
    assert _stop_point("  def f do\n    ", "\n  end\n", raw) == len("foo()\n    foo()\n    foo()\n")


def test_stop_on_inline_repetition() -> None:
    raw = "Enum.map(Enum.map(Enum.map(Enum.map(Enum.map("
    assert _stop_point("  def f do\n    ", "\n  end\n", raw) == len("Enum.map(") * 4


def test_stop_on_special_token_split_across_tokens() -> None:
    check = make_stop_check("  def f do\n    ", "\n  end\n")
    assert not check("x <|endof")
    assert check("x <|endoftext|>")


def test_stop_when_the_next_line_is_repeated() -> None:
    raw = "state = Map.new(opts)\n    {:ok, state}\n"
    assert _stop_point("  def init(opts) do\n    ", "\n    {:ok, state}\n  end\n", raw) == len(raw)


def test_no_stop_inside_strings_keywords_and_balanced_blocks() -> None:
    raw = (
        'Logger.info("end of the do block")\n'
        "    result = if ok, do: :yes, else: :no\n"
        "    Enum.each(items, fn item ->\n"
        "      send(pid, {:end, item})\n"
        "    end)\n"
        "    result"
    )
    assert _stop_point("  def run(ok, items, pid) do\n    ", "\n  end\nend\n", raw) is None


def test_stop_check_restarts_for_a_new_generation() -> None:
    check = make_stop_check(MODULE_DEF, "")
    assert check("a + b\n  end\n")
    assert not check("x")  # not a continuation of the previous text: starts over
    assert not check("x * 2")


def test_stop_points_agree_with_postprocess() -> None:
    cases = [
        (MODULE_DEF, "", "a + b\n  end\n\n  def sub(a, b) do\n    a - b\n  end\n"),
        (GENSERVER_CASE, GENSERVER_CASE_END, "{:ok, v} -> v\n      :error -> nil\n    end\n  end\n"),
        (FN_CLOSURE, "", "x * 2\n    end)\n    |> Enum.sum()\n"),
        ("  def f do\n    ", "\n  end\n", "foo()\n    foo()\n    foo()\n    foo()\n    bar()\n"),
    ]
    for prefix, suffix, raw in cases:
        stop = _stop_point(prefix, suffix, raw)
        assert stop is not None and stop < len(raw)
        assert postprocess(raw[:stop], prefix, suffix).text == postprocess(raw, prefix, suffix).text


# -- properties ------------------------------------------------------------------------------------------

CONTEXTS = [
    (MODULE_DEF, MODULE_DEF_END),
    (MODULE_DEF, ""),
    (GENSERVER_CASE, GENSERVER_CASE_END),
    (FN_CLOSURE, "\n    end)\n  end\n"),
    ("    IO.inspect(", ")\n"),
    ("    x = compute(", ", opts)\n"),
    ('  def hi do\n    IO.puts("hello ', '")\n  end\n'),
    ('  @doc """\n  Adds ', '\n  """\n  def add(a, b), do: a + b\n'),
    ("defmodule M do\n  def a(x), do: x\n", "end\n"),
    ("", ""),
]

PIECES = [
    "do", "end", "fn", " -> ", "(", ")", "[", "]", "{", "}", "<<", ">>", '"', "'", '"""', "#", ":end",
    "do:", "\n", "\n    ", "\n  ", "  ", " ", "\t", "x", "foo", "1", ", ", " |> ", "=", "%{", " => ", "?a",
    "\\", "~r/", "/", "<|endoftext|>", "\r\n", "é", "Enum.map", "case x do", "if", "else", ";", "@doc",
]  # fmt: skip

raw_text = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
    st.text(alphabet=st.characters(codec="ascii"), max_size=60),
)


def _region_errors(prefix: str, middle: str, suffix: str) -> int:
    """ERROR/MISSING nodes in the edited region, as rule 7 defines it, from a fresh parse."""
    doc = (prefix + middle + suffix).encode("utf-8")
    return count_errors(make_parser().parse(doc).root_node, ParseGuard(prefix, suffix).region_start, len(doc))


@settings(max_examples=150, deadline=None)
@given(middle=raw_text, context=st.sampled_from(CONTEXTS))
def test_the_guard_counts_errors_incrementally_as_a_fresh_parse_does(middle: str, context: tuple[str, str]):
    prefix, suffix = context
    assert ParseGuard(prefix, suffix).errors(middle) == _region_errors(prefix, middle, suffix)


@settings(max_examples=150, deadline=None)
@given(raw=raw_text, context=st.sampled_from(CONTEXTS))
def test_postprocess_properties(raw: str, context: tuple[str, str]) -> None:
    prefix, suffix = context
    result = postprocess(raw, prefix, suffix)
    text = result.text
    assert isinstance(result.reason, str) and result.reason
    if text:
        assert text.strip()
        assert all(line == line.rstrip() for line in text.split("\n"))
        assert "<|endoftext|>" not in text
    if is_mid_line(prefix, suffix):
        assert "\n" not in text
    assert _region_errors(prefix, text, suffix) <= _region_errors(prefix, "", suffix)


@settings(max_examples=100, deadline=None)
@given(raw=raw_text, context=st.sampled_from(CONTEXTS), step=st.integers(1, 4))
def test_stopping_early_never_changes_the_result(raw: str, context: tuple[str, str], step: int) -> None:
    prefix, suffix = context
    stop = _stop_point(prefix, suffix, raw, step)
    if stop is not None:
        assert postprocess(raw[:stop], prefix, suffix).text == postprocess(raw, prefix, suffix).text


@settings(max_examples=100, deadline=None)
@given(raw=raw_text, seed=st.integers(0, 2**16))
def test_lexer_gives_the_same_tokens_however_text_is_split(raw: str, seed: int) -> None:
    whole = _Lexer().feed(raw, final=True)
    rnd = random.Random(seed)
    lexer, pieces, pos = _Lexer(), [], 0
    while pos < len(raw):
        size = rnd.randint(1, 5)
        pieces += lexer.feed(raw[pos : pos + size])
        pos += size
    pieces += lexer.feed("", final=True)
    assert pieces == whole


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_prefix_lexed_in_pieces_equals_lexed_at_once(data):
    """Typing appends to the prefix; lexing only the appended text must give the same state."""
    from lsp.completion import postprocess as pp

    text = data.draw(st.sampled_from([GENSERVER_CASE, MODULE_DEF, FN_CLOSURE, MODULE_DEF + 'x = "a #{b} c"\n  ']))
    cut = data.draw(st.integers(0, len(text)))
    pp._LEXED.clear()
    lexer, tracker = pp._lex_prefix(text)
    whole = (vars(lexer.clone()).keys(), [vars(e) for e in tracker.stack], tracker.logical, lexer.literal_depth)
    pp._LEXED.clear()
    pp._lex_prefix(text[:cut])
    lexer2, tracker2 = pp._lex_prefix(text)
    pieces = (vars(lexer2.clone()).keys(), [vars(e) for e in tracker2.stack], tracker2.logical, lexer2.literal_depth)
    assert pieces == whole
    completion = "do\n    :ok\n  end\n"
    assert [t for t in lexer.feed(completion, final=True)] == [t for t in lexer2.feed(completion, final=True)]


def _inline_repeat_one_end_at_a_time(line: str, low: int) -> int | None:
    """The rule as first written: try every end from `low` and, for each, every unit length."""
    for end in range(low, len(line) + 1):
        for unit in range(2, 17):
            times = max(4, -(-12 // unit))
            start = end - times * unit
            if start < 0:
                break
            pattern = line[start : start + unit]
            if any(c.isalpha() for c in pattern) and line[start + unit : end] == pattern * (times - 1):
                return start + unit
    return None


@settings(max_examples=300, deadline=None)
@given(
    line=st.lists(st.sampled_from(["ab", "a", "b", ", ", "x1", "1", "é", ".", "abc", " "]), max_size=40).map("".join),
    low=st.integers(1, 60),
)
def test_the_inline_repeat_scan_finds_what_checking_each_end_finds(line: str, low: int) -> None:
    assert _inline_repeat(line, low) == _inline_repeat_one_end_at_a_time(line, low)
