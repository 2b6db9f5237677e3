"""Stage 3: book sections in order with a difficulty score, and the pairs made from their examples."""

from __future__ import annotations

import json

import pytest

from finetune.dataset.curriculum import (
    WEIGHTS,
    constructs_in,
    curriculum,
    difficulty,
    iex_steps,
    ordered_sections,
    render_pair,
    section_pairs,
)
from finetune.records import Block, Provenance, Record
from lsp.prompt import PROMPT_FORMAT_VERSION, REWRITE_END

BOOK = "Learning Elixir"


def section(order: int, chapter: int, title: str, blocks: list[Block]) -> Record:
    text = "\n\n".join(block.text for block in blocks)
    meta = {"book": BOOK, "chapter": chapter, "chapter_title": f"Chapter {chapter}", "section": order,
            "section_title": title, "order": order}
    provenance = Provenance("books", BOOK, "2nd", f"ch{chapter}.md", "CC-BY-4.0")
    return Record("book", "markdown", text, provenance, meta, tuple(blocks))


BASICS = section(1, 1, "Basic types", [
    Block("prose", "Elixir has integers, floats and atoms. Try them in IEx:"),
    Block("code", "iex> 1 + 2\n3\niex> x = 5\n5\niex> x * 2\n10\niex> String.upcase(\n...>   \"hi\"\n...> )\n\"HI\"",
          "iex"),
    Block("prose", "Atoms are constants whose value is their own name."),
])

FUNCTIONS = section(2, 1, "Functions", [
    Block("prose", "Functions live in modules.\n\nHere is a module that greets people:"),
    Block("code", 'defmodule Greeter do\n  def hello(name), do: "Hello, #{name}!"\nend', "elixir"),
    Block("prose", "The function interpolates the name into a string and returns it."),
    Block("prose", "Exercise 2.1: write a function that doubles every number in a list."),
    Block("code", "def double_all(list), do: Enum.map(list, &(&1 * 2))", "elixir"),
    Block("prose", "This one does not parse and is left out:"),
    Block("code", "def broken(x) do\n  x +\n", "elixir"),
])

PROCESSES = section(3, 2, "Processes and GenServer", [
    Block("prose", "A counter kept in a process, with a client API:"),
    Block("code", (
        "defmodule Counter do\n"
        "  use GenServer\n\n"
        "  def start_link(initial), do: GenServer.start_link(__MODULE__, initial, name: __MODULE__)\n"
        "  def increment, do: GenServer.cast(__MODULE__, :increment)\n\n"
        "  @impl true\n"
        "  def init(count) when is_integer(count), do: {:ok, count}\n\n"
        "  @impl true\n"
        "  def handle_cast(:increment, count), do: {:noreply, count + 1}\n\n"
        "  def stats(events) do\n"
        "    for %{type: type} <- events, reduce: %{} do\n"
        "      acc -> Map.update(acc, type, 1, &(&1 + 1))\n"
        "    end\n"
        "    |> Enum.sort_by(fn {_type, n} -> -n end)\n"
        "  end\n\n"
        "  def loop do\n"
        "    receive do\n"
        "      {:ping, from} -> send(from, :pong)\n"
        "    end\n"
        "  end\n"
        "end"
    ), "elixir"),
    Block("code", "iex> pid = spawn(fn -> :ok end)\n#PID<0.108.0>\niex> Process.alive?(pid)\nfalse", "iex"),
])


def test_iex_sessions_split_into_inputs_and_outputs() -> None:
    steps = iex_steps(BASICS.blocks[1].text)
    assert [(s.input, s.output) for s in steps] == [
        ("1 + 2", "3"), ("x = 5", "5"), ("x * 2", "10"), ('String.upcase(\n  "hi"\n)', '"HI"'),
    ]
    assert iex_steps("iex(1)> :ok\n:ok\niex(2)> [1,\n...(2)> 2]\n[1, 2]")[1].input == "[1,\n2]"


def test_iex_pairs_ask_for_the_value_with_the_session_so_far() -> None:
    pairs = [p for p in section_pairs(BASICS) if p.task == "iex_eval"]
    assert [p.answer for p in pairs] == ["3", "5", "10", '"HI"']
    assert pairs[2].code == "iex> 1 + 2\n3\niex> x = 5\n5\niex> x * 2"
    assert pairs[3].code.endswith('iex> String.upcase(\n...>   "hi"\n...> )')
    prompt, completion = render_pair(BASICS, pairs[2])
    assert prompt == (
        f"# File: {BOOK}/1/1\n# Context:\n# {BOOK} / Chapter 1 / Basic types\n"
        "# Task: What does the last expression evaluate to in IEx?\n"
        "iex> 1 + 2\n3\niex> x = 5\n5\niex> x * 2\n# Answer:\n"
    )
    assert completion == f"10\n{REWRITE_END}\n"


def test_exercises_write_and_explain_pairs_only_from_code_that_parses() -> None:
    pairs = list(section_pairs(FUNCTIONS))
    assert [(p.task, p.instruction) for p in pairs] == [
        ("write", "Here is a module that greets people:"),
        ("explain", "Explain what this code does."),
        ("exercise", "Exercise 2.1: write a function that doubles every number in a list."),
    ]
    assert pairs[0].answer == 'defmodule Greeter do\n  def hello(name), do: "Hello, #{name}!"\nend\n'
    assert pairs[1].code == pairs[0].answer
    assert pairs[1].answer == "The function interpolates the name into a string and returns it."
    assert pairs[2].answer == "def double_all(list), do: Enum.map(list, &(&1 * 2))\n"
    assert all("broken" not in p.answer + p.code for p in pairs)


def test_constructs_are_found_by_syntax_not_by_words() -> None:
    found = constructs_in(PROCESSES.blocks[1].text)
    assert {"otp", "receive", "comprehension", "pipes", "guards", "processes", "captures", "modules"} <= found
    assert constructs_in('IO.puts("case receive with")') == frozenset()


def test_difficulty_grows_through_the_book_and_is_documented_weights() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    ordered = ordered_sections([PROCESSES, BASICS, FUNCTIONS])
    assert [(record.meta["order"], position) for record, position in ordered] == [(1, 0.0), (2, 0.5), (3, 1.0)]
    scores = [difficulty(record, position) for record, position in ordered]
    assert scores[0].score < scores[1].score < scores[2].score
    assert scores[0].score >= 0.0 and scores[2].score <= 1.0
    # Same position: more constructs and more code make a section harder.
    assert difficulty(BASICS, 0.5).score < difficulty(PROCESSES, 0.5).score
    assert scores[2].constructs == tuple(sorted(scores[2].constructs)) and "otp" in scores[2].constructs


def test_curriculum_rows_in_book_order_with_pairs_after_their_section() -> None:
    other_book = Record("book", "markdown", "Intro.", Provenance("books", "Another Book", "", "a.md", "MIT"),
                        {"book": "Another Book", "order": 1}, (Block("prose", "Intro."),))
    rows = list(curriculum([PROCESSES, FUNCTIONS, other_book, BASICS]))
    sections = [row for row in rows if row["task"] == "book_section"]
    assert [(row["meta"]["book"], row["meta"]["order"]) for row in sections] == [
        ("Another Book", 1), (BOOK, 1), (BOOK, 2), (BOOK, 3)]
    assert [row["meta"]["curriculum_index"] for row in rows] == sorted(row["meta"]["curriculum_index"] for row in rows)
    for row in rows:
        json.dumps(row)
        assert row["stage"] == 3 and row["prompt_format"] == PROMPT_FORMAT_VERSION
        assert row["text"] == row["prompt"] + row["completion"] or row["task"] == "book_section"
    first = sections[1]
    assert first["prompt"] == "" and first["text"].startswith(f"# File: {BOOK}/1/1\n# Context:\n") and \
        first["text"].endswith(BASICS.text)
    tasks = [row["task"] for row in rows]
    assert tasks.count("iex_eval") == 4 + 1  # PID output is text, the alive? answer is `false`
    by_difficulty = list(curriculum([PROCESSES, FUNCTIONS, BASICS], by="difficulty"))
    scores = [row["meta"]["difficulty"]["score"] for row in by_difficulty if row["task"] == "book_section"]
    assert scores == sorted(scores)
    with pytest.raises(ValueError):
        list(curriculum([BASICS], by="random"))


def test_stdlib_doc_pages_become_a_book_with_evaluation_pairs():
    from finetune.dataset.curriculum import STDLIB_BOOK, curriculum, docs_as_book
    from finetune.records import Block, Provenance, Record

    def page(app: str, module: str) -> Record:
        blocks = (
            Block("prose", f"Functions of {module}."),
            Block("code", "iex> 1 + 2\n3", "iex"),
        )
        return Record("doc", "markdown", f"# {module}\n\nFunctions of {module}.\n", Provenance("beam_docs", app, "1.14.0", "lib/x.ex", "Apache-2.0"), {"module": module}, blocks)

    pages = [page("ex_unit", "ExUnit"), page("elixir", "Enum"), page("elixir", "Access")]
    book = list(docs_as_book(pages))
    assert [r.meta["section_title"] for r in book] == ["Access", "Enum", "ExUnit"]
    assert {r.meta["book"] for r in book} == {STDLIB_BOOK} and all(r.kind == "book" for r in book)
    rows = list(curriculum(book))
    assert any(row["task"] == "iex_eval" for row in rows), {row["task"] for row in rows}
