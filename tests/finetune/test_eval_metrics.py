"""Metrics of generated Elixir: each with code that must score and code that must not."""

from __future__ import annotations

import shutil

import pytest

from finetune.eval.metrics import (
    chrf,
    compiles,
    count_usage,
    edit_similarity,
    exact_match,
    formatted,
    sentence_chrf,
    static_metrics,
)
from finetune.eval.sandbox import Limits, make_runner
from lsp.syntax.parser import make_parser

IDIOMATIC = """defmodule Shop.Totals do
  def total({:ok, items}) when is_list(items) do
    items
    |> Enum.map(fn %{price: price, qty: qty} -> price * qty end)
    |> Enum.sum()
  end

  def total({:error, _reason} = error), do: error
end
"""

NAIVE = """defmodule Shop.Totals do
  def active(users) do
    Enum.filter(users, fn user -> user.active end) |> Enum.count()
  end

  def total(result) do
    if elem(result, 0) == :ok do
      Enum.sum(Enum.map(elem(result, 1), fn item -> item.price * item.qty end))
    else
      result
    end
  end
end
"""


def usage(code: str) -> tuple[int, int]:
    return count_usage(make_parser().parse(code.encode()).root_node)


def test_parses_and_counts_syntax_errors() -> None:
    assert static_metrics(IDIOMATIC).parses
    broken = static_metrics("defmodule A do\n  def f(x) do\n    x +\n  end\nend\n")
    assert not broken.parses and broken.syntax_errors >= 1
    unclosed = static_metrics("defmodule A do\n  def f(x) do\n    x\n")
    assert not unclosed.parses


def test_idiom_score_counts_the_rule_engines_findings_per_100_lines() -> None:
    clean, naive = static_metrics(IDIOMATIC), static_metrics(NAIVE)
    assert clean.idiom_findings == 0 and clean.idiom_per_100_lines == 0.0
    assert naive.idiom_findings >= 1  # filter |> count at least
    assert naive.idiom_per_100_lines == pytest.approx(100 * naive.idiom_findings / naive.lines, abs=1e-3)
    assert naive.lines == len([line for line in NAIVE.splitlines() if line.strip()])


@pytest.mark.parametrize(
    ("code", "pipes", "matches"),
    [
        ("x |> f() |> g()", 2, 0),
        ("{a, b} = pair", 0, 1),
        ("total = a + b", 0, 0),  # binding a variable is not destructuring
        ("with {:ok, v} <- fetch(x), do: v", 0, 1),
        ("case x do\n  {:ok, v} -> v\n  _ -> nil\nend", 0, 2),
        ("Enum.map(xs, fn {k, _} -> k end)", 0, 1),
        ("def f([h | t], %{a: a}), do: h", 0, 2),
        ("def f({:ok, x} = whole), do: x", 0, 1),  # one pattern, counted once
        ("def f(x) when is_integer(x), do: x", 0, 0),
        ("if x, do: y, else: z", 0, 0),
        ("cond do\n  x > 1 -> :big\n  true -> :small\nend", 0, 0),  # conditions, not patterns
    ],
)
def test_pipe_and_pattern_match_counts(code: str, pipes: int, matches: int) -> None:
    assert usage(code) == (pipes, matches)


def test_idiomatic_code_uses_more_pipes_and_patterns_than_naive_code() -> None:
    clean, naive = static_metrics(IDIOMATIC), static_metrics(NAIVE)
    assert clean.pipes > naive.pipes - 1 and clean.pattern_matches > naive.pattern_matches


def test_reference_metrics() -> None:
    assert exact_match("  x |> f()\n", "  x |> f()") and not exact_match("x |> g()", "x |> f()")
    assert edit_similarity("abc", "abc") == 1.0 and edit_similarity("", "") == 1.0
    assert edit_similarity("abc", "abd") == pytest.approx(2 / 3)
    assert edit_similarity("", "abc") == 0.0
    assert sentence_chrf("Enum.map(xs, & &1)", "Enum.map(xs, & &1)") == pytest.approx(100.0)
    near, far = sentence_chrf("Enum.map(list, & &1)", "Enum.map(xs, & &1)"), sentence_chrf("foo", "Enum.map(xs, & &1)")
    assert 0 <= far < near < 100
    assert chrf(["a |> b()", "c"], ["a |> b()", "c"]) == pytest.approx(100.0)
    assert chrf(["zzz"], ["a |> b()"]) < 10


@pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Debian's elixir (elixirc, mix) on PATH")
def test_compiles_and_formatted_run_the_real_tools_in_the_sandbox() -> None:
    run = make_runner(Limits(timeout_s=60))
    assert compiles(IDIOMATIC, run)[0]
    ok, output = compiles(IDIOMATIC.replace("def total({:error", "def total({:error, unused} = _e, x), do: x\n  def total({:error"), run)
    assert not ok and "unused" in output  # --warnings-as-errors: an unused variable fails
    assert formatted(IDIOMATIC, run)
    assert not formatted(IDIOMATIC.replace("    items\n", "    items   \n").replace("|> Enum.sum()", "|>Enum.sum( )"), run)
