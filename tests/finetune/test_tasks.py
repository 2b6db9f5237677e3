"""Stage 1 and 2 task generation on small, realistic Elixir files: rendered prompts must equal what the
server renders, FIM middles must sit on syntax-tree boundaries, and rewrite pairs must round-trip."""

from __future__ import annotations

import json
import textwrap

import pytest

from finetune.dataset.tasks import (
    DEFAULT_FIM_TOKENS,
    FimOptions,
    causal_samples,
    fim_samples,
    idiomatic_samples,
    implement_samples,
    pair_with_tests,
    stage2_samples,
    write_test_samples_for,
)
from finetune.dataset.tasks.common import count_tokens_by_chars, definitions, document, parse
from finetune.dataset.tasks.fim import Cut, candidate_cuts, prompt_input_for_cut
from finetune.dataset.tasks.idiomatic import (
    INVERSES,
    fix_all_rules,
    forward_pairs,
    hints_for,
    inverse_pairs,
)
from finetune.dataset.tasks.tests_for import matching_test_path
from finetune.records import Provenance, Record
from lsp.actions.model_rewrite import build_prompt, find_target
from lsp.completion.assemble import build_prompt_input
from lsp.config import ContextSettings
from lsp.idioms.engine import fix_all
from lsp.prompt import (
    PROMPT_FORMAT_VERSION,
    REWRITE_END,
    PromptInput,
    Snippet,
    render_completion_prompt,
    render_header,
)

CART = textwrap.dedent(
    '''\
    defmodule Shop.Cart do
      @moduledoc "A shopping cart: a list of items with quantities."
      alias Shop.Item

      @doc "Total price of the cart in cents."
      @spec total([Item.t()]) :: non_neg_integer()
      def total(items) do
        items
        |> Enum.map(fn item -> item.price * item.quantity end)
        |> Enum.sum()
      end

      @doc "Adds one item, bumping the quantity when it is already in the cart."
      def add(cart, %Item{} = item) do
        if Enum.any?(cart, &(&1.id == item.id)) do
          Enum.map(cart, fn existing ->
            if existing.id == item.id, do: %{existing | quantity: existing.quantity + 1}, else: existing
          end)
        else
          [item | cart]
        end
      end

      def remove(cart, id) do
        case Enum.split_with(cart, &(&1.id == id)) do
          {[], _rest} ->
            {:error, :not_found}

          {[_removed], rest} ->
            {:ok, rest}
        end
      end
    end
    '''
)

CART_TEST = textwrap.dedent(
    '''\
    defmodule Shop.CartTest do
      use ExUnit.Case, async: true
      alias Shop.{Cart, Item}

      setup do
        %{apple: %Item{id: 1, price: 50, quantity: 1}}
      end

      describe "total/1" do
        test "sums price times quantity", %{apple: apple} do
          assert Cart.total([%{apple | quantity: 3}]) == 150
        end

        test "is zero for an empty cart" do
          assert Cart.total([]) == 0
        end
      end

      test "add/2 bumps the quantity of a known item", %{apple: apple} do
        assert [%Item{quantity: 2}] = [apple] |> Cart.add(apple)
      end

      test "unrelated" do
        assert 1 + 1 == 2
      end
    end
    '''
)


def record(text: str, path: str = "lib/shop/cart.ex", package: str = "shop") -> Record:
    return Record("code", "elixir", text, Provenance("local", package, "0.1.0", path, "MIT"))


def assert_sample_shape(sample: dict, stage: int) -> None:
    assert set(sample) == {"stage", "task", "prompt", "completion", "text", "prompt_format", "provenance", "meta"}
    assert sample["stage"] == stage
    assert sample["prompt_format"] == PROMPT_FORMAT_VERSION
    assert sample["provenance"]["licence"] == "MIT"
    json.dumps(sample)  # plain JSON for HF datasets


# -- stage 1 ------------------------------------------------------------------------------------------------


def test_causal_sample_has_the_servers_file_header() -> None:
    [sample] = causal_samples(record(CART))
    assert_sample_shape(sample, 1)
    assert sample["prompt"] == ""
    assert sample["text"] == render_header(PromptInput(path="lib/shop/cart.ex", prefix="")) + CART
    assert sample["text"].startswith("# File: lib/shop/cart.ex\n")


def test_causal_doc_page_names_its_module_and_long_files_are_split_with_headers() -> None:
    doc = Record("doc", "markdown", "# Enum\n\nFunctions for enumerables.\n", Provenance("beam_docs", "elixir",
                 "1.14.0", "Enum", "Apache-2.0"), meta={"module": "Enum"})
    [sample] = causal_samples(doc)
    assert sample["text"].startswith("# File: Enum\n# Context:\n# Documentation of Enum\n# Enum\n")
    long = "\n\n".join(f"def f{i}(x), do: x + {i}" for i in range(200))
    parts = list(causal_samples(record(long), max_chars=1000))
    assert len(parts) > 5
    header = "# File: lib/shop/cart.ex\n"
    assert all(part["text"].startswith(header) and len(part["text"]) <= 1000 + len(header) for part in parts)
    assert "\n\n".join(part["text"][len(header) :].rstrip("\n") for part in parts) == long


# -- FIM ----------------------------------------------------------------------------------------------------


def _named_spans(node) -> set[tuple[int, int]]:
    spans = set()
    stack = [node]
    while stack:
        current = stack.pop()
        spans.add((current.start_byte, current.end_byte))
        stack.extend(current.children)
    return spans


def test_fim_middles_are_ast_aligned() -> None:
    source = CART.encode()
    tree = parse(source)
    cuts = candidate_cuts(source, tree)
    assert all(cuts[kind] for kind in ("body", "block", "line", "rest_of_line"))
    spans = _named_spans(tree.root_node)
    leaf_starts = {start for start, _end in spans}
    for cut in cuts["line"]:
        assert (cut.start, cut.end) in spans, cut  # exactly one statement node
    for cut in cuts["rest_of_line"]:
        assert cut.start in leaf_starts and any(end == cut.end for _start, end in spans)
    ends = {end for _start, end in spans}
    for cut in cuts["body"] + cuts["block"]:
        middle = source[cut.start : cut.end]
        # Whole lines whose code starts where a node starts and ends where a node ends.
        assert source[cut.start - 1 : cut.start] == b"\n" and middle.endswith(b"\n")
        assert cut.start + len(middle) - len(middle.lstrip()) in leaf_starts
        assert cut.end - (len(middle) - len(middle.rstrip())) in ends
    bodies = {(d.body_start, d.body_end) for d in definitions(tree, source)}
    assert {(c.start, c.end) for c in cuts["body"]} == bodies
    assert (
        source[cuts["body"][0].start : cuts["body"][0].end].decode()
        == "    items\n    |> Enum.map(fn item -> item.price * item.quantity end)\n    |> Enum.sum()\n"
    )


def test_fim_prompts_equal_the_servers_for_the_buffer_without_the_middle() -> None:
    samples = list(fim_samples(record(CART), FimOptions(per_kind=3)))
    assert {s["task"] for s in samples} == {"fim", "prefix_completion"}
    assert {s["meta"]["cut"] for s in samples} == {"body", "block", "line", "rest_of_line"}
    source = CART.encode()
    for sample in samples:
        assert_sample_shape(sample, 2)
        start, end = sample["meta"]["start_byte"], sample["meta"]["end_byte"]
        assert sample["completion"] == source[start:end].decode()
        # What the server computes when the user's buffer lacks the middle and the cursor is at the cut.
        buffer = document("lib/shop/cart.ex", (source[:start] + source[end:]).decode())
        served, _ = build_prompt_input(buffer, "lib/shop/cart.ex", start, ContextSettings(), count_tokens_by_chars)
        fim = DEFAULT_FIM_TOKENS if sample["task"] == "fim" else None
        assert sample["prompt"] == render_completion_prompt(served, fim).text
        assert sample["text"] == sample["prompt"] + sample["completion"]
        if fim is not None:
            assert sample["prompt"].endswith("<fim_middle>") and "<fim_suffix>" in sample["prompt"]
            assert sample["meta"]["fim"] == {"prefix": "<fim_prefix>", "suffix": "<fim_suffix>",
                                             "middle": "<fim_middle>"}
        else:
            assert "<fim_" not in sample["prompt"]


def test_fim_uses_context_lines_when_the_window_is_short() -> None:
    source = CART.encode()
    cut = Cut("line", source.index(b"[item | cart]"), source.index(b"[item | cart]") + 13, "list")
    small = ContextSettings(prefix_tokens=20, anchor_lines=4)
    inp = prompt_input_for_cut("lib/shop/cart.ex", source, cut, small)
    assert "defmodule Shop.Cart do" in inp.context_lines
    assert "def add(cart, %Item{} = item)" in inp.context_lines
    assert inp.prefix.endswith("      ")


def test_fim_is_deterministic_configurable_and_skips_broken_or_other_files() -> None:
    options = FimOptions(fim_tokens=None, prefix_only=True, kinds=("body",), per_kind=10)
    first = list(fim_samples(record(CART), options))
    assert first == list(fim_samples(record(CART), options))
    assert len(first) == 3 and {s["task"] for s in first} == {"prefix_completion"}
    custom = FimOptions(fim_tokens=DEFAULT_FIM_TOKENS.__class__("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
                        prefix_only=False, kinds=("line",), per_kind=1)
    [sample] = fim_samples(record(CART), custom)
    assert sample["prompt"].endswith("<|fim_middle|>")
    assert list(fim_samples(record("defmodule Broken do\n  def f(x) do\n    x +\n"))) == []
    erlang = Record("code", "erlang", "-module(a).\n", Provenance("otp", "stdlib", "25", "a.erl", "Apache-2.0"))
    assert list(fim_samples(erlang)) == []


# -- implement from @doc/@spec --------------------------------------------------------------------------------


def test_implement_from_doc_prompt_shows_context_doc_spec_and_head() -> None:
    samples = list(implement_samples(record(CART)))
    assert [s["meta"]["function"] for s in samples] == ["total/1", "add/2"]
    total = samples[0]
    assert_sample_shape(total, 2)
    assert total["task"] == "implement_from_doc"
    expected = (
        "# File: lib/shop/cart.ex\n"
        "# Context:\n"
        "# defmodule Shop.Cart do\n"
        "# alias Shop.Item\n"
        "# def add(cart, %Item{} = item)\n"
        "# def remove(cart, id)\n"
        '  @doc "Total price of the cart in cents."\n'
        "  @spec total([Item.t()]) :: non_neg_integer()\n"
        "  def total(items) do\n"
    )
    assert total["prompt"] == expected
    assert total["completion"] == (
        "    items\n    |> Enum.map(fn item -> item.price * item.quantity end)\n    |> Enum.sum()\n"
    )
    # The same text the server renders for that prompt input.
    inp = PromptInput("lib/shop/cart.ex", expected.split("# def remove(cart, id)\n")[1],
                      context_lines=("defmodule Shop.Cart do", "alias Shop.Item", "def add(cart, %Item{} = item)",
                                     "def remove(cart, id)"))
    assert render_completion_prompt(inp, None).text == expected


# -- write the test for ---------------------------------------------------------------------------------------


def test_test_paths_pair_only_within_a_project() -> None:
    assert matching_test_path("lib/shop/cart.ex") == "test/shop/cart_test.exs"
    assert matching_test_path("apps/shop/lib/shop/cart.ex") == "apps/shop/test/shop/cart_test.exs"
    assert matching_test_path("mix.exs") is None and matching_test_path("lib/a.erl") is None
    lib, test = record(CART), record(CART_TEST, "test/shop/cart_test.exs")
    other_project = record(CART_TEST, "test/shop/cart_test.exs", package="other")
    assert list(pair_with_tests([lib, other_project])) == []
    assert list(pair_with_tests([test, lib])) == [(lib, test)]


def test_write_test_pairs_functions_with_the_tests_that_call_them() -> None:
    lib, test = record(CART), record(CART_TEST, "test/shop/cart_test.exs")
    samples = list(write_test_samples_for([lib, test]))
    by_function = {s["meta"]["function"]: s for s in samples}
    assert set(by_function) == {"Shop.Cart.total/1", "Shop.Cart.add/2"}  # remove/2 has no test
    total = by_function["Shop.Cart.total/1"]
    assert_sample_shape(total, 2)
    assert total["meta"]["tests"] == ["sums price times quantity", "is zero for an empty cart"]
    head = CART_TEST[: CART_TEST.index('  describe "total/1"')]
    function = (
        "defmodule Shop.Cart do\n"
        '  @doc "Total price of the cart in cents."\n'
        "  @spec total([Item.t()]) :: non_neg_integer()\n"
        "  def total(items) do\n"
        "    items\n"
        "    |> Enum.map(fn item -> item.price * item.quantity end)\n"
        "    |> Enum.sum()\n"
        "  end\n"
        "end\n"
    )
    inp = PromptInput("test/shop/cart_test.exs", head, snippets=(Snippet("lib/shop/cart.ex", function),))
    assert total["prompt"] == render_completion_prompt(inp, None).text
    assert total["completion"].startswith('  test "sums price times quantity", %{apple: apple} do\n')
    assert 'test "is zero for an empty cart" do\n    assert Cart.total([]) == 0\n  end\n' in total["completion"]
    # A piped call counts its left side as the first argument: add/2.
    assert by_function["Shop.Cart.add/2"]["meta"]["tests"] == ["add/2 bumps the quantity of a known item"]


# -- make idiomatic -------------------------------------------------------------------------------------------

REPORT = textwrap.dedent(
    '''\
    defmodule Report.Csv do
      @moduledoc "CSV rendering."
      alias Report.Row

      @doc "One CSV line per row."
      @spec render([Row.t()]) :: String.t()
      def render(rows) do
        Enum.map_join(rows, "\\n", &line/1)
      end

      def line(%Row{cells: cells}) do
        cells |> Enum.map(&to_string/1) |> Enum.join(",")
      end

      def summary(rows) do
        active = Enum.count(rows, & &1.active)
        if active != 0, do: {:ok, active}
      end

      def index(rows) do
        if Enum.empty?(rows) do
          :empty
        else
          Map.new(rows)
        end
      end
    end
    '''
)


def test_forward_pairs_are_the_rule_engines_fix() -> None:
    source = REPORT.encode()
    [pair] = forward_pairs("lib/report/csv.ex", source, parse(source))
    assert pair.origin == "forward" and "enum_map_join" in pair.rules
    assert pair.after_code == "  def line(%Row{cells: cells}) do\n    Enum.map_join(cells, \",\", &to_string/1)\n  end\n"


def test_every_inverse_round_trips_through_fix_all() -> None:
    source = REPORT.encode()
    pairs = list(inverse_pairs("lib/report/csv.ex", source, parse(source)))
    origins = {pair.origin for pair in pairs}
    assert origins == {f"inverse:{rule}" for rule in INVERSES}
    fixed_original = fix_all(fix_all_rules(), parse(source), source).source
    for pair in pairs:
        assert pair.before_source != source
        result = fix_all(fix_all_rules(), parse(pair.before_source), pair.before_source)
        assert result.source == fixed_original, pair.origin
        assert pair.origin.removeprefix("inverse:") in result.applied


def test_an_inverse_that_would_not_round_trip_is_dropped() -> None:
    # `!=` inside a pipe: the negated form is one the rule refuses (the pipe binds tighter), so no pair.
    source = b"defmodule A do\n  def f(a, b) do\n    g(a != b)\n  end\nend\n"
    kept = list(inverse_pairs("lib/a.ex", source, parse(source), {"negated_equality": INVERSES["negated_equality"]}))
    assert len(kept) == 1
    piped = b"defmodule A do\n  def f(a, b) do\n    (a != b) |> IO.inspect()\n  end\nend\n"
    assert list(inverse_pairs("lib/a.ex", piped, parse(piped), {"negated_equality": INVERSES["negated_equality"]})) == []


def test_idiomatic_samples_render_the_servers_rewrite_prompt() -> None:
    samples = list(idiomatic_samples(record(REPORT, "lib/report/csv.ex", "report"), max_inverse_per_file=20))
    assert len(samples) >= 1 + len(INVERSES)
    source = REPORT.encode()
    pairs = list(forward_pairs("lib/report/csv.ex", source, parse(source)))
    pairs += list(inverse_pairs("lib/report/csv.ex", source, parse(source)))
    for sample, pair in zip(samples, pairs, strict=True):
        assert_sample_shape(sample, 2)
        assert sample["task"] == "make_idiomatic" and sample["meta"]["origin"] == pair.origin
        tree = parse(pair.before_source)
        target = find_target(tree, pair.before_source, pair.function_start, pair.function_start)
        hints = hints_for(tree, pair.before_source, target.start, target.end)
        assert sample["prompt"] == build_prompt(tree, pair.before_source, target, "lib/report/csv.ex", hints).text
        assert sample["completion"] == textwrap.dedent(pair.after_code) + REWRITE_END + "\n"
    render = next(s for s in samples if s["meta"]["origin"] == "inverse:enum_map_join")
    assert "# Before:\ndef render(rows) do\n  Enum.map(rows, &line/1) |> Enum.join(\"\\n\")\nend\n# After:\n" in render["prompt"]
    assert "# @spec render([Row.t()]) :: String.t()\n" in render["prompt"]
    assert "# - Enum.map |> Enum.join → Enum.map_join\n" in render["prompt"]


@pytest.mark.parametrize("task", ["fim", "prefix_completion", "implement_from_doc", "make_idiomatic"])
def test_stage2_samples_cover_the_per_file_tasks(task: str) -> None:
    tasks = {s["task"] for s in stage2_samples(record(CART + "\n" + REPORT))}
    assert task in tasks
