"""`map |> join` → `Enum.map_join/3`: one pass, no intermediate list.

Before:
    names |> Enum.map(&String.upcase/1) |> Enum.join(", ")
After:
    names |> Enum.map_join(", ", &String.upcase/1)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import fuse_to, fused


def rewrite(match: Match) -> list[Edit] | None:
    pair = fused(match, "Enum", ("map",))
    if pair is None or len(pair.outer_extra) > 1:
        return None
    # join/2's separator comes before the mapper in map_join/3.
    return fuse_to(pair, "Enum", "map_join", pair.outer_extra)


RULE = Rule(
    id="enum_map_join",
    title="Enum.map |> Enum.join → Enum.map_join",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            'names |> Enum.map(&String.upcase/1) |> Enum.join(", ")',
            'names |> Enum.map_join(", ", &String.upcase/1)',
        ),
        Example(
            "Enum.map(ids, fn id -> \"##{id}\" end) |> Enum.join()",
            "Enum.map_join(ids, fn id -> \"##{id}\" end)",
        ),
        Example(
            'def csv(row), do: Enum.join(Enum.map(row, &to_string/1), ",")',
            'def csv(row), do: Enum.map_join(row, ",", &to_string/1)',
        ),
        Example(
            "def render(lines) do\n  lines\n  |> Enum.map(fn line ->\n    \"  \" <> line\n  end)\n"
            "  |> Enum.join(\"\\n\")\nend",
            "def render(lines) do\n  lines\n  |> Enum.map_join(\"\\n\", fn line ->\n    \"  \" <> line\n  end)\nend",
        ),
        # Joining a Stream.map or an already-mapped value: nothing to fuse.
        Example('xs |> Stream.map(&f/1) |> Enum.join(",")', None),
        Example('xs |> Enum.map(&f/1)\n# keep\n|> Enum.join(",")', None),
        Example('alias My.Enum\nxs |> Enum.map(&f/1) |> Enum.join(",")', None),
    ),
)
