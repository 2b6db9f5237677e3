"""`filter |> count` → `Enum.count/2`: one pass, no intermediate list.

Before:
    list |> Enum.filter(&valid?/1) |> Enum.count()
After:
    list |> Enum.count(&valid?/1)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.fusion import fused_pair


def rewrite(match: Match) -> list[Edit] | None:
    if not match.stdlib("Enum", "Stream"):
        return None
    pair = fused_pair(match.source, match.node("finding"), ("Enum", "Stream"), ("filter",))
    if pair is None or pair.outer_extra or len(pair.inner_extra) != 1:
        return None
    return [pair.replace_with(pair.call("Enum", "count", [pair.arg(pair.inner_extra[0])]))]


RULE = Rule(
    id="enum_filter_count",
    title="Enum.filter |> Enum.count → Enum.count/2",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "list |> Enum.filter(&valid?/1) |> Enum.count()",
            "list |> Enum.count(&valid?/1)",
        ),
        Example(
            "Enum.filter(users, fn u -> u.active end) |> Enum.count()",
            "Enum.count(users, fn u -> u.active end)",
        ),
        Example(
            "n = Enum.count(Enum.filter(xs, &(&1 > 2)))",
            "n = Enum.count(xs, &(&1 > 2))",
        ),
        Example(
            "xs |> Stream.filter(&odd?/1) |> Enum.count() |> IO.inspect()",
            "xs |> Enum.count(&odd?/1) |> IO.inspect()",
        ),
        # Already counting with a predicate; a map feeding count is not a filter.
        Example("xs |> Enum.map(&f/1) |> Enum.count(&odd?/1)", None),
        # Enum is the user's own module here.
        Example("alias MyApp.Enum\nxs |> Enum.filter(&f/1) |> Enum.count()", None),
    ),
)
