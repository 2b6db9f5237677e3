"""beam_docs against the installed Elixir (Code.fetch_docs in a real VM), plus its Markdown helpers."""

from __future__ import annotations

import shutil

import pytest

from finetune.records import Block, Record, Skipped
from finetune.sources import beam_docs

needs_elixir = pytest.mark.skipif(
    shutil.which("elixir") is None, reason="elixir is not installed (apt: elixir)"
)


@pytest.fixture(scope="module")
def dumped() -> list[Record | Skipped]:
    if shutil.which("elixir") is None:
        pytest.skip("elixir is not installed (apt: elixir)")
    return list(
        beam_docs.collect(
            apps=("elixir", "mix"), modules=["Enum", "String", "Enumerable.List", "Kernel.Utils", "Mix.Task"]
        )
    )


def by_module(items: list[Record | Skipped]) -> dict[str, Record]:
    return {item.meta["module"]: item for item in items if isinstance(item, Record)}


@needs_elixir
def test_enum_page_with_functions_and_doctests(dumped: list[Record | Skipped]) -> None:
    enum = by_module(dumped)["Enum"]
    assert (enum.kind, enum.language) == ("doc", "markdown")
    provenance = enum.provenance
    assert (provenance.source, provenance.package, provenance.path, provenance.licence) == (
        "beam_docs",
        "elixir",
        "lib/enum.ex",
        "Apache-2.0",
    )
    assert provenance.version.count(".") == 2 and provenance.url.endswith(f"/{provenance.version}/Enum.html")
    assert enum.text.startswith("# Enum\n\nFunctions for working with collections")
    assert "## Functions\n\n### all?(enumerable)\n\n" in enum.text
    assert "\n\n### map(enumerable, fun)\n\nReturns a list where each element" in enum.text
    functions = {(f["name"], f["arity"]): f for f in enum.meta["functions"]}
    assert len(functions) > 60
    mapping = functions[("map", 2)]
    assert mapping["kind"] == "function" and mapping["signature"] == "map(enumerable, fun)"
    assert {"input": "Enum.map([1, 2, 3], fn x -> x * 2 end)", "output": "[2, 4, 6]"} in mapping["examples"]
    assert functions[("reduce", 3)]["examples"]
    assert enum.meta["examples"][0] == {
        "input": "Enum.map([1, 2, 3], fn x -> x * 2 end)",
        "output": "[2, 4, 6]",
    }
    assert any(block.language == "iex" for block in enum.blocks)


@needs_elixir
def test_string_macros_and_sections(dumped: list[Record | Skipped]) -> None:
    modules = by_module(dumped)
    string = modules["String"]
    names = {f["name"] for f in string.meta["functions"]}
    assert {"split", "upcase", "valid?"} <= names
    assert sum(len(f["examples"]) for f in string.meta["functions"]) > 100
    task = modules["Mix.Task"]
    assert (task.provenance.package, task.provenance.path) == ("mix", "lib/mix/task.ex")
    kinds = {f["kind"] for f in task.meta["functions"]}
    assert "callback" in kinds and "## Callbacks" in task.text


@needs_elixir
def test_undocumented_and_hidden_modules_are_skipped(dumped: list[Record | Skipped]) -> None:
    skipped = {item.where: item.reason for item in dumped if isinstance(item, Skipped)}
    assert skipped == {
        "elixir:Enumerable.List": "no documentation",
        "elixir:Kernel.Utils": "hidden (@moduledoc false)",
    }


@needs_elixir
def test_all_of_elixirs_apps_in_one_vm() -> None:
    items = list(beam_docs.collect())
    records = [item for item in items if isinstance(item, Record)]
    assert {r.provenance.package for r in records} == set(beam_docs.ELIXIR_APPS)
    assert len(records) > 120
    assert {"Kernel", "GenServer", "ExUnit.Case", "EEx", "Logger", "IEx", "Mix.Project"} <= {
        r.meta["module"] for r in records
    }
    assert all(isinstance(item, Record) or item.reason for item in items)


def test_missing_or_failing_elixir_is_reported() -> None:
    assert list(beam_docs.collect(elixir="no-such-elixir-binary")) == [
        Skipped("no-such-elixir-binary", "elixir executable not found")
    ]
    if shutil.which("false") is None:
        pytest.skip("no `false` executable to stand in for a failing VM")
    (failure,) = beam_docs.collect(elixir="false")
    assert isinstance(failure, Skipped) and failure.reason.startswith("elixir exited with 1")


def test_markdown_blocks_split_prose_code_and_iex() -> None:
    text = (
        "# Title\n\nSome prose.\n\n    iex> 1 + 1\n    2\n\nMore prose.\n\n```erlang\nok.\n```\n\n    x = 1\n"
    )
    assert beam_docs.markdown_blocks(text, indented_code_language="elixir") == (
        Block("prose", "# Title\n\nSome prose."),
        Block("code", "iex> 1 + 1\n2", "iex"),
        Block("prose", "More prose."),
        Block("code", "ok.", "erlang"),
        Block("code", "x = 1", "elixir"),
    )
    assert beam_docs.markdown_blocks("    x = 1\n")[0].language == ""
    assert beam_docs.markdown_title("Intro\n\n## Second\n") == "Second"


def test_doctest_examples_with_continuations_and_results() -> None:
    doc = (
        "Examples:\n\n"
        "    iex> list = [1, 2]\n"
        "    iex> Enum.map(list, fn x ->\n"
        "    ...>   x * 2\n"
        "    ...> end)\n"
        "    [2, 4]\n\n"
        "    iex> %{a: 1}\n"
        "    %{\n"
        "      a: 1\n"
        "    }\n\n"
        "Not code: iex> here.\n"
    )
    assert beam_docs.doctest_examples(doc) == [
        {"input": "list = [1, 2]", "output": ""},
        {"input": "Enum.map(list, fn x ->\n  x * 2\nend)", "output": "[2, 4]"},
        {"input": "%{a: 1}", "output": "%{\n  a: 1\n}"},
    ]


def test_module_record_from_a_dump_line() -> None:
    dump = {
        "app": "elixir",
        "module": "Demo",
        "source": "/build/elixir-1.14.0/lib/elixir/lib/demo.ex",
        "moduledoc": "A demo.",
        "deprecated": None,
        "entries": [
            {
                "kind": "macro",
                "name": "m",
                "arity": 1,
                "signature": "m(x)",
                "doc": "A macro.",
                "since": "1.1",
            },
            {
                "kind": "function",
                "name": "f",
                "arity": 0,
                "signature": "",
                "doc": None,
                "deprecated": "Use g/0",
            },
            {
                "kind": "function",
                "name": "a",
                "arity": 2,
                "signature": "a(x, y)",
                "doc": "    iex> a(1, 2)\n    3\n",
            },
        ],
    }
    record = beam_docs.module_record(dump, "1.14.0")
    assert isinstance(record, Record)
    assert record.text == (
        "# Demo\n\nA demo.\n\n## Functions\n\n### a(x, y)\n\n    iex> a(1, 2)\n    3\n\n### f/0\n\n"
        "> Deprecated: Use g/0\n\n## Macros\n\n### m(x)\n\nA macro.\n"
    )
    assert record.provenance.path == "lib/demo.ex"
    assert [(f["name"], f["since"], f["deprecated"]) for f in record.meta["functions"]] == [
        ("a", "", ""),
        ("f", "", "Use g/0"),
        ("m", "1.1", ""),
    ]
    assert record.meta["functions"][0]["examples"] == [{"input": "a(1, 2)", "output": "3"}]
    empty = {**dump, "moduledoc": None, "entries": [{**dump["entries"][1]}]}
    assert beam_docs.module_record(empty, "1.14.0") == Skipped("elixir:Demo", "no documentation")
