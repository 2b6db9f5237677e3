"""`filter |> List.first()` (or `Enum.at(0)`) → `Enum.find/2,3`: stops at the first match.

Before:
    users |> Enum.filter(&admin?/1) |> List.first()
After:
    users |> Enum.find(&admin?/1)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import fuse_to, fused, is_integer


def rewrite(match: Match) -> list[Edit] | None:
    pair = fused(match, "Enum", ("filter",), "List")
    if pair is None:
        return None
    extra = pair.outer_extra
    if pair.outer.module == "List" and pair.outer.name == "first" and len(extra) <= 1:
        return fuse_to(pair, "Enum", "find", extra)
    # Enum.at(list, 0, default) is the first element or the default, as find/3 is.
    at_zero = pair.outer.name == "at" and len(extra) in (1, 2) and is_integer(match.source, extra[0], 0)
    if pair.outer.module == "Enum" and at_zero:
        return fuse_to(pair, "Enum", "find", extra[1:])
    return None


RULE = Rule(
    id="enum_filter_first",
    title="Enum.filter |> List.first → Enum.find",
    safety=Safety.MOSTLY_SAFE,
    risk="the predicate no longer runs on the elements after the first match (their side effects or errors)",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "users |> Enum.filter(&admin?/1) |> List.first()",
            "users |> Enum.find(&admin?/1)",
        ),
        Example(
            "Enum.filter(xs, fn x -> x > 10 end) |> List.first(:none)",
            "Enum.find(xs, :none, fn x -> x > 10 end)",
        ),
        Example(
            "def first_even(xs), do: Enum.at(Enum.filter(xs, &(rem(&1, 2) == 0)), 0)",
            "def first_even(xs), do: Enum.find(xs, &(rem(&1, 2) == 0))",
        ),
        Example(
            "def pick(rows) do\n  rows\n  |> Enum.filter(fn row ->\n    row.valid\n  end)\n"
            "  |> Enum.at(0, %{})\nend",
            "def pick(rows) do\n  rows\n  |> Enum.find(%{}, fn row ->\n    row.valid\n  end)\nend",
        ),
        # Enum.at(1) is the second match; a Stream.filter is not a list for List.first.
        Example("xs |> Enum.filter(&ok?/1) |> Enum.at(1)", None),
        Example("xs |> Stream.filter(&ok?/1) |> List.first()", None),
    ),
)
