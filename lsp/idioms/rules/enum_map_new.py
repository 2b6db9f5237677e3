"""`map |> Map.new()` (or `MapSet.new`, `Keyword.new`, `Enum.into`) → the 2-arity constructor: one pass.

Before:
    users |> Enum.map(&{&1.id, &1}) |> Enum.into(%{})
After:
    users |> Map.new(&{&1.id, &1})
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import empty_collectable, fuse_to, fused

CONSTRUCTORS = ("Map", "MapSet", "Keyword")


def rewrite(match: Match) -> list[Edit] | None:
    pair = fused(match, "Enum", ("map",), *CONSTRUCTORS)
    if pair is None:
        return None
    if pair.outer.module in CONSTRUCTORS and pair.outer.name == "new" and not pair.outer_extra:
        return fuse_to(pair, pair.outer.module, "new")
    if pair.outer.module == "Enum" and pair.outer.name == "into" and len(pair.outer_extra) == 1:
        target = empty_collectable(match.source, pair.outer_extra[0])
        if target == "List":
            return None  # `Enum.map` alone already builds the list (enum_into_empty drops the into).
        if target is not None:
            return fuse_to(pair, target, "new")
        return fuse_to(pair, "Enum", "into", pair.outer_extra)
    return None


RULE = Rule(
    id="enum_map_new",
    title="Enum.map |> Map.new/Enum.into → Map.new/2, Enum.into/3",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "users |> Enum.map(&{&1.id, &1}) |> Enum.into(%{})",
            "users |> Map.new(&{&1.id, &1})",
        ),
        Example(
            "Enum.map(tags, &String.downcase/1) |> MapSet.new()",
            "MapSet.new(tags, &String.downcase/1)",
        ),
        Example(
            "def opts(pairs), do: Keyword.new(Enum.map(pairs, fn {k, v} -> {k, v * 2} end))",
            "def opts(pairs), do: Keyword.new(pairs, fn {k, v} -> {k, v * 2} end)",
        ),
        Example(
            "xs |> Enum.map(&String.trim/1) |> Enum.into(MapSet.new()) |> MapSet.size()",
            "xs |> MapSet.new(&String.trim/1) |> MapSet.size()",
        ),
        Example(
            "def index(rows, acc) do\n  rows\n  |> Enum.map(fn row ->\n    {row.id, row}\n  end)\n"
            "  |> Enum.into(acc)\nend",
            "def index(rows, acc) do\n  rows\n  |> Enum.into(acc, fn row ->\n    {row.id, row}\n  end)\nend",
        ),
        Example("Enum.into(Enum.map(xs, &{&1, true}), %{seen: false})", "Enum.into(xs, %{seen: false}, &{&1, true})"),
        # `into([])` is enum_into_empty's job; Map.new/1 already given a function is left alone.
        Example("xs |> Enum.map(&f/1) |> Enum.into([])", None),
        Example("xs |> Enum.map(&f/1) |> Map.new(&g/1)", None),
        Example("alias My.MapSet\nxs |> Enum.map(&f/1) |> MapSet.new()", None),
    ),
)
