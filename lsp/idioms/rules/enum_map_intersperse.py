"""`map |> intersperse` → `Enum.map_intersperse/3`: one pass, no intermediate list.

Before:
    items |> Enum.map(&render/1) |> Enum.intersperse(", ")
After:
    items |> Enum.map_intersperse(", ", &render/1)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import fuse_to, fused


def rewrite(match: Match) -> list[Edit] | None:
    pair = fused(match, "Enum", ("map",))
    if pair is None or len(pair.outer_extra) != 1:
        return None
    return fuse_to(pair, "Enum", "map_intersperse", pair.outer_extra)


RULE = Rule(
    id="enum_map_intersperse",
    title="Enum.map |> Enum.intersperse → Enum.map_intersperse",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    min_elixir=(1, 10),
    examples=(
        Example(
            'items |> Enum.map(&render/1) |> Enum.intersperse(", ")',
            'items |> Enum.map_intersperse(", ", &render/1)',
        ),
        Example(
            "Enum.map(cells, fn c -> [c, ?|] end) |> Enum.intersperse(?\\s)",
            "Enum.map_intersperse(cells, ?\\s, fn c -> [c, ?|] end)",
        ),
        Example(
            "def line(xs), do: Enum.intersperse(Enum.map(xs, &to_string/1), \" \")",
            "def line(xs), do: Enum.map_intersperse(xs, \" \", &to_string/1)",
        ),
        Example(
            "def rows(rows) do\n  rows\n  |> Enum.map(fn row ->\n    format(row)\n  end)\n"
            "  |> Enum.intersperse(\"\\n\")\nend",
            "def rows(rows) do\n  rows\n  |> Enum.map_intersperse(\"\\n\", fn row ->\n    format(row)\n  end)\nend",
        ),
        # intersperse of something that is not a map; Stream.map stays lazy.
        Example('xs |> Enum.filter(&f/1) |> Enum.intersperse(",")', None),
        Example('xs |> Stream.map(&f/1) |> Enum.intersperse(",")', None),
    ),
)
