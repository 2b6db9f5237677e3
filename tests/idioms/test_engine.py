"""The engine: edits, incremental re-parse checks, fix-all to a fixed point, minimal hunks, shadowing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.engine import (
    apply_edits,
    check,
    checked_findings,
    find_findings,
    fix_all,
    minimal_edits,
    reparse,
    shadowed_modules,
)
from lsp.idioms.rules.enum_filter_count import RULE as FILTER_COUNT
from lsp.syntax.parser import make_parser

TWO = """defmodule A do
  def f(xs), do: xs |> Enum.filter(&odd?/1) |> Enum.count()

  # keep me
  def g(xs) do
    Enum.count(Enum.filter(xs, &even?/1))
  end
end
"""


def _tree(text: str):
    data = text.encode()
    return make_parser().parse(data), data


def test_apply_edits_in_any_order_and_refuses_overlaps():
    data = b"abcdef"
    assert apply_edits(data, [Edit(4, 5, "E"), Edit(0, 1, "A")]) == b"AbcdEf"
    with pytest.raises(ValueError):
        apply_edits(data, [Edit(0, 3, "x"), Edit(2, 4, "y")])


def test_reparse_matches_a_fresh_parse():
    tree, data = _tree(TWO)
    edits = [e for f in find_findings([FILTER_COUNT], tree, data) for e in f.edits]
    new_source, new_tree = reparse(tree, data, edits)
    assert str(new_tree.root_node) == str(make_parser().parse(new_source).root_node)


def _breaking_rule() -> Rule:
    """A rule whose rewrite leaves an unclosed call: the engine must not offer it."""

    def rewrite(match: Match) -> list[Edit]:
        node = match.node("finding")
        return [Edit(node.end_byte - 1, node.end_byte, "")]

    return Rule("enum_filter_count", "broken", Safety.SAFE, rewrite, (Example("x", None),))


def test_a_rewrite_that_breaks_the_parse_is_not_offered():
    tree, data = _tree(TWO)
    broken = _breaking_rule()
    raw = find_findings([broken], tree, data)
    assert raw, "the broken rule matches"
    assert not any(check(tree, data, f) for f in raw)
    assert checked_findings([broken], tree, data) == []
    assert fix_all([broken], tree, data).source == data


def test_fix_all_reaches_a_fixed_point_and_keeps_comments():
    tree, data = _tree(TWO)
    result = fix_all([FILTER_COUNT], tree, data)
    text = result.source.decode()
    assert result.applied == ("enum_filter_count", "enum_filter_count")
    assert "Enum.filter" not in text and "# keep me" in text
    again = fix_all([FILTER_COUNT], make_parser().parse(result.source), result.source)
    assert again.applied == () and again.source == result.source


def test_fix_all_within_a_range_only():
    tree, data = _tree(TWO)
    start = data.index(b"  def g")
    result = fix_all([FILTER_COUNT], tree, data, (start, len(data)))
    text = result.source.decode()
    assert "xs |> Enum.filter(&odd?/1) |> Enum.count()" in text
    assert "Enum.count(xs, &even?/1)" in text


def test_minimal_edits_touch_only_changed_lines():
    old = b"a\nb\nc\nd\n"
    new = b"a\nB\nc\nd\ne\n"
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    assert all(e.end - e.start <= 2 for e in edits)


@given(st.lists(st.sampled_from(["a\n", "b\n", "ü\n", "x y\n", "\n"]), max_size=12),
       st.lists(st.sampled_from(["a\n", "c\n", "ü\n", "z\n", "\n"]), max_size=12))
def test_minimal_edits_round_trip(old_lines, new_lines):
    old, new = "".join(old_lines).encode(), "".join(new_lines).encode()
    assert apply_edits(old, minimal_edits(old, new)) == new


def test_shadowed_modules_from_aliases():
    data = b"alias MyApp.Enum\nalias Foo.{Map, Bar}\nalias Baz, as: Keyword\nalias Other.Thing\n"
    assert {"Enum", "Map", "Keyword"} <= shadowed_modules(data)
    tree, data = _tree("alias MyApp.Enum\nxs |> Enum.filter(&f/1) |> Enum.count()\n")
    assert find_findings([FILTER_COUNT], tree, data) == []


def test_incremental_analysis_equals_a_full_one_after_edits():
    """Edits that add, break and remove findings; the cached analysis must always match a fresh one."""
    import random
    from pathlib import Path

    from lsp.config import IdiomSettings
    from lsp.idioms.engine import analysis_units, incremental_findings
    from lsp.idioms.registry import active_rules

    rules = active_rules(IdiomSettings(), (1, 14))
    text = (Path(__file__).parent / "corpus" / "user_controller.ex").read_text()
    snippets = [
        "    _ = xs |> Enum.filter(&odd?/1) |> Enum.count()\n",
        "    _ = Map.merge(m, %{a: 1})\n",
        "  alias Zed.Last\n",
        "  alias Aa.First\n",
        "    unless ok, do: 1, else: 2\n",
        "  def broken(x) do\n",
    ]
    rng = random.Random(7)
    parser = make_parser()
    cache: dict = {}
    for _ in range(25):
        lines = text.splitlines(keepends=True)
        at = rng.randrange(1, len(lines))
        if rng.random() < 0.6:
            lines.insert(at, rng.choice(snippets))
        else:
            del lines[at]
        text = "".join(lines)
        data = text.encode()
        tree = parser.parse(data)
        found, cache = incremental_findings(rules, tree, data, cache)
        want = sorted(checked_findings(rules, tree, data), key=lambda f: (f.start, f.end, f.rule_id))
        assert found == want
        units = analysis_units(tree.root_node, data)
        assert all(a < b for a, b in units) and units == sorted(units)
