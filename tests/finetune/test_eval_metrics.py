"""Metrics of generated Elixir: each with code that must score and code that must not."""

from __future__ import annotations

import shutil

import pytest

from finetune.eval.metrics import (
    ToolMetrics,
    chrf,
    compiles,
    count_usage,
    edit_similarity,
    exact_match,
    formatted,
    sentence_chrf,
    static_metrics,
    tool_metrics,
)
from finetune.eval.sandbox import Limits, Runner, make_runner
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


needs_elixir = pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Debian's elixir (elixirc, mix) on PATH")


@needs_elixir
def test_compiles_and_formatted_run_the_real_tools_in_the_sandbox() -> None:
    run = make_runner(Limits(timeout_s=60))
    assert compiles(IDIOMATIC, run)[0]
    ok, output = compiles(IDIOMATIC.replace("def total({:error", "def total({:error, unused} = _e, x), do: x\n  def total({:error"), run)
    assert not ok and "unused" in output  # --warnings-as-errors: an unused variable fails
    assert formatted(IDIOMATIC, run)
    assert not formatted(IDIOMATIC.replace("    items\n", "    items   \n").replace("|> Enum.sum()", "|>Enum.sum( )"), run)


BATCH_LIMITS = Limits(timeout_s=60, cpu_s=60, output_chars=16384)
CLASH_FIRST = "defmodule Clash do\n  def only_here, do: 1\nend\n"
# Equal answers from `compiles`/`formatted` (one VM per file) and `tool_metrics` (one VM for all):
# the comment says what must hold in both.
SNIPPETS = [
    IDIOMATIC,  # compiles, formatted
    IDIOMATIC.replace("def total({:error, _reason}", "def total({:error, reason}"),  # unused variable
    "defmodule Caller do\n  def f(x), do: Missing.Mod.call(x)\nend\n",  # undefined remote call
    "defmodule Broken do\n  def f(x) do\n    x +\n  end\nend\n",  # syntax error
    "defmodule Loose do\n  def f( x ),do: x+1\nend\n",  # compiles, not formatted
    CLASH_FIRST,
    "defmodule UsesClash do\n  def f, do: Clash.only_here()\nend\n",  # Clash of another file: undefined
    "defmodule Clash do\n  def other, do: 2\nend\n",  # the same name again: no "redefining" warning
    "defmodule Boom do\n  raise \"at compile time\"\nend\n",
    "defmodule Halts do\n  System.halt(1)\nend\n",
    'defmodule Loud do\n  IO.puts("compiled")\n  IO.puts(:stderr, "C 0 1")\n  def f, do: :ok\nend\n',
]


def counting(run: Runner) -> tuple[Runner, list[int]]:
    """A runner that records how many files each sandbox run checked."""
    sizes: list[int] = []

    def counted(argv: list[str], files: dict[str, str]) -> tuple[int | None, str]:
        sizes.append(sum(name.endswith("code.ex") for name in files))
        return run(argv, files)

    return counted, sizes


@needs_elixir
def test_tool_metrics_in_one_vm_agree_with_one_vm_per_file() -> None:
    run = make_runner(BATCH_LIMITS)
    counted, sizes = counting(run)
    batched = tool_metrics(SNIPPETS, counted)
    per_file = [(compiles(code, run)[0], formatted(code, run)) for code in SNIPPETS]
    assert [(m.compiles, m.formatted) for m in batched] == per_file
    assert [ok for ok, _formatted in per_file] == [True, False, False, False, True, True, False, True, False,
                                                   False, True]
    assert [m.formatted for m in batched][:5] == [True, True, True, False, False]
    # The halting file costs one re-run of itself and one of those after it; all else is one VM.
    assert sizes == [len(SNIPPETS), 1, 1]
    errors = [m.error for m in batched]
    assert all(errors[i] == "" for i, m in enumerate(batched) if m.compiles)
    assert "unused" in errors[1] and "Missing.Mod.call/1 is undefined" in errors[2]
    assert "SyntaxError" in errors[3] and "Clash.only_here/0 is undefined" in errors[6]
    assert "RuntimeError" in errors[8] and "exited with code 1" in errors[9]
    assert all("\n" not in error and len(error) <= 100 for error in errors)


def expect(results: list[ToolMetrics], answers: list[tuple[bool, bool]]) -> None:
    assert [(m.compiles, m.formatted) for m in results] == answers


@needs_elixir
def test_formatted_judges_only_the_generated_lines_when_told_where_they_start() -> None:
    # A MultiPL-E-style skeleton that `mix format` would change (no blank line between the defs).
    prompt = "defmodule Skeleton do\n  def candidate(x), do: double(x)\n  def double(x) do\n    "
    tidy = prompt + "x * 2\n  end\nend\n"
    messy = prompt + "x*2\n  end\nend\n"
    start = prompt.count("\n")
    run = make_runner(BATCH_LIMITS)
    judged = tool_metrics([tidy, messy], run, generated_from=[start, start])
    assert [m.formatted for m in judged] == [True, False]
    # Without the start line the whole file is judged, as `mix format --check-formatted` does.
    assert [m.formatted for m in tool_metrics([tidy], run)] == [formatted(tidy, run)] == [False]


@needs_elixir
def test_a_hung_file_times_out_alone_in_the_same_vm() -> None:
    counted, sizes = counting(make_runner(BATCH_LIMITS))
    # What it spawns would halt the VM 1.5 s in, while the next hung file waits out its 1 s. External
    # funs only: unloading the file's code (which kills processes running it) leaves this one alive.
    spawns = ("defmodule Spawns do\n  spawn(Enum, :zip_with, [[&Process.sleep/1, &System.halt/1], [[1500], [3]], "
              "&:erlang.apply/2])\n  Process.sleep(:infinity)\nend\n")
    loops = "defmodule Loops do\n  Stream.repeatedly(fn -> :ok end) |> Stream.run()\nend\n"
    results = tool_metrics([IDIOMATIC, spawns, loops, NAIVE], counted, file_timeout_s=1.0)
    assert [m.compiles for m in results] == [True, False, False, True]
    assert results[1].error == results[2].error == "timed out after 1000 ms"
    assert sizes == [4]  # one VM: the timeout killed what the hung file spawned


@needs_elixir
def test_a_vm_halted_by_a_file_loses_no_other_answer() -> None:
    counted, sizes = counting(make_runner(BATCH_LIMITS))
    halts = "defmodule Quits do\n  System.halt(0)\nend\n"
    unused = "defmodule U do\n  def f(x), do: 1\nend\n"
    results = tool_metrics([IDIOMATIC, halts, unused, IDIOMATIC, halts], counted)
    # elixirc itself exits 0 on System.halt(0); a file that stops the checker counts as not compiling.
    expect(results, [(True, True), (False, True), (False, True), (True, True), (False, True)])
    assert results[1].error == "the VM exited with code 0 while compiling"
    assert "unused" in results[2].error
    assert sizes == [5, 1, 3, 1]


@needs_elixir
def test_a_halt_that_a_file_leaves_for_later_is_not_blamed_on_the_next() -> None:
    counted, sizes = counting(make_runner(BATCH_LIMITS))
    # It compiles (as with elixirc, which ends first); the OTP timer server halts the VM 0.5 s later.
    schedules = "defmodule Later do\n  :timer.apply_after(500, System, :halt, [4])\nend\n"
    loops = "defmodule Loops do\n  Stream.repeatedly(fn -> :ok end) |> Stream.run()\nend\n"
    results = tool_metrics([schedules, loops, IDIOMATIC], counted, file_timeout_s=1.0)
    assert [m.compiles for m in results] == [True, False, True]
    assert results[1].error == "timed out after 1000 ms"  # alone, it shows it did not halt the VM
    assert sizes == [3, 1, 1]


@needs_elixir
def test_output_cut_short_by_the_runner_only_costs_re_runs() -> None:
    counted, sizes = counting(make_runner(Limits(timeout_s=60, cpu_s=60, output_chars=150)))
    codes = [IDIOMATIC, SNIPPETS[1], SNIPPETS[4], IDIOMATIC, SNIPPETS[2], IDIOMATIC]
    results = tool_metrics(codes, counted, batch=6)
    expect(results, [(True, True), (False, True), (True, False), (True, True), (False, True), (True, True)])
    assert len(sizes) > 1 and sizes[0] == 6


@needs_elixir
def test_batches_are_cut_at_the_batch_size() -> None:
    counted, sizes = counting(make_runner(BATCH_LIMITS))
    assert tool_metrics([], counted) == [] and sizes == []
    expect(tool_metrics([IDIOMATIC] * 5, counted, batch=2), [(True, True)] * 5)
    assert sizes == [2, 2, 1]
