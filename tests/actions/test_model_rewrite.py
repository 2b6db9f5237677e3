"""The model rewrite's pure parts: target, prompt, answer extraction and the judge's every verdict."""

from __future__ import annotations

import shutil

import pytest

from lsp.actions.model_rewrite import (
    answer_complete,
    build_prompt,
    definitions,
    extract_answer,
    find_target,
    judge,
)
from lsp.idioms.elixir_check import ElixirChecker
from lsp.idioms.rules.enum_filter_count import RULE as FILTER_COUNT
from lsp.prompt import REWRITE_AFTER, REWRITE_END, render_rewrite_example
from lsp.syntax.parser import make_parser

SOURCE = """defmodule Shop.Stats do
  alias Shop.User

  @doc "Active users."
  def active_count(users) do
    users |> Enum.filter(& &1.active) |> Enum.count()
  end

  defp helper(x, y \\\\ 1) when x > 0, do: x + y
end
"""
DATA = SOURCE.encode()
TREE = make_parser().parse(DATA)
CURSOR = DATA.index(b"users |>")


@pytest.fixture(scope="module")
def checker():
    if shutil.which("elixir") is None:
        pytest.skip("needs Debian's elixir (make test installs it)")
    checker = ElixirChecker()
    yield checker
    checker.close()


def _target():
    target = find_target(TREE, DATA, CURSOR, CURSOR)
    assert target is not None
    return target


def test_target_is_the_enclosing_function_in_whole_lines():
    target = _target()
    assert target.label == "active_count/1"
    assert target.code.startswith("  def active_count(users) do\n") and target.code.endswith("  end\n")
    assert target.indent == "  "


def test_target_is_the_selection_when_there_is_one():
    start = DATA.index(b"users |>") + 3
    target = find_target(TREE, DATA, start, start + 5)
    assert target.label == "selection" and target.code == "    users |> Enum.filter(& &1.active) |> Enum.count()\n"


def test_no_target_outside_functions():
    assert find_target(TREE, DATA, DATA.index(b"alias"), DATA.index(b"alias")) is None


def test_definitions_read_guards_and_defaults():
    assert definitions(TREE.root_node, DATA) == [("active_count", 1), ("helper", 2)]


def test_prompt_carries_context_hints_and_dedented_code():
    text = build_prompt(TREE, DATA, _target(), "lib/stats.ex", [FILTER_COUNT.title]).text
    assert "# defmodule Shop.Stats do\n# alias Shop.User\n" in text
    assert '# @doc "Active users."' in text
    assert f"# - {FILTER_COUNT.title}\n" in text
    assert "\ndef active_count(users) do\n  users |>" in text
    assert text.endswith(f"{REWRITE_AFTER}\n")


def test_training_example_renders_the_same_prompt():
    from lsp.prompt import RewriteInput, render_rewrite_prompt

    inp = RewriteInput("lib/a.ex", "def f(x), do: x\n", ("defmodule A do",), ("hint",))
    prompt, target = render_rewrite_example(inp, "def f(x), do: x")
    assert prompt == render_rewrite_prompt(inp)
    assert target == f"def f(x), do: x\n{REWRITE_END}\n"


def test_answer_extraction_stops_at_markers_and_commentary():
    generated = "def f(x) do\n  x\nend\n\n# - more hints\n# - and more"
    assert extract_answer(generated) == "def f(x) do\n  x\nend\n"
    assert answer_complete(generated)
    assert extract_answer(f"def f(x), do: x\n{REWRITE_END}\njunk") == "def f(x), do: x\n"
    # Where the code itself has a column-0 comment, only the end marker ends the answer.
    assert extract_answer("# why\ndef f, do: 1\n# note\n", col0_comments_end=False) == "# why\ndef f, do: 1\n# note\n"
    assert not answer_complete("def f(x) do\n  # indented comment\n", col0_comments_end=True)


GOOD = "def active_count(users) do\n  Enum.count(users, & &1.active)\nend\n"


def test_judge_accepts_a_good_rewrite_as_minimal_edits(checker):
    verdict = judge(TREE, DATA, _target(), GOOD, [FILTER_COUNT], checker)
    assert verdict.ok, verdict.message
    assert len(verdict.edits) == 1
    edit = verdict.edits[0]
    new = DATA[: edit.start] + edit.text.encode() + DATA[edit.end :]
    assert b"    Enum.count(users, & &1.active)\n" in new
    assert new.count(b"\n") == DATA.count(b"\n")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "no code"),
        ("def active_count(users) do\n  users |> Enum.filter(& &1.active) |> Enum.count()\nend\n", "nothing to change"),
        ("def active_count(users) do\n  Enum.count(users, &&1.active)\nend\n", "does not parse"),
        ("def active(users) do\n  Enum.count(users, & &1.active)\nend\n", "lost active_count/1"),
        ("def active_count(users, x) do\n  Enum.count(users, & &1.active)\nend\n", "added active_count/2"),
        (
            "def active_count(users) do\n  _ = Enum.filter(users, & &1.ok) |> Enum.count()\n"
            "  users |> Enum.filter(& &1.active) |> Enum.count()\nend\n",
            "less idiomatic",
        ),
    ],
)
def test_judge_rejections_say_why(answer, reason):
    verdict = judge(TREE, DATA, _target(), answer, [FILTER_COUNT], None)
    assert not verdict.ok and verdict.edits == ()
    assert reason in verdict.message


def test_judge_rejects_what_elixir_rejects(checker):
    # Parses for tree-sitter, but the compiler knows `y` is unbound.
    source = b"defmodule Calc do\n  def f(x) do\n    x + 1\n  end\nend\n"
    tree = make_parser().parse(source)
    target = find_target(tree, source, source.index(b"x + 1"), source.index(b"x + 1"))
    verdict = judge(tree, source, target, "def f(x) do\n  y + 1\nend\n", [FILTER_COUNT], checker)
    assert not verdict.ok and "does not compile" in verdict.message and "y/0" in verdict.message
    assert judge(tree, source, target, "def f(x), do: x + 1\n", [FILTER_COUNT], checker).ok


def test_judge_rejects_a_rewrite_that_deletes_behaviour():
    source = (
        b"defmodule Report do\n  require Logger\n\n  def warn(orders) do\n    if orders != [] do\n      :ok\n"
        b"    else\n      Logger.warning(\"empty week\")\n      :empty\n    end\n  end\nend\n"
    )
    tree = make_parser().parse(source)
    target = find_target(tree, source, source.index(b":ok"), source.index(b":ok"))
    verdict = judge(tree, source, target, "def warn(orders) do\n  :ok\nend\n", [FILTER_COUNT], None)
    assert not verdict.ok and '"empty week"' in verdict.message and "Logger" in verdict.message
    assert ":empty" in verdict.message


def test_judge_allows_dropping_what_the_rules_drop():
    from lsp.idioms.registry import rule_by_id

    source = b"defmodule T do\n  def late?(a, b) do\n    DateTime.compare(a, b) == :gt\n  end\nend\n"
    tree = make_parser().parse(source)
    target = find_target(tree, source, source.index(b"DateTime"), source.index(b"DateTime"))
    rules = [rule_by_id("datetime_compare")]
    assert judge(tree, source, target, "def late?(a, b) do\n  DateTime.after?(a, b)\nend\n", rules, None).ok
    refused = judge(tree, source, target, "def late?(a, b) do\n  DateTime.after?(a, b)\nend\n", [FILTER_COUNT], None)
    assert not refused.ok and ":gt" in refused.message
