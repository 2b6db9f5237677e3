"""`sort |> reverse` → `Enum.sort(:desc)` (and `sort_by(f) |> reverse` → `Enum.sort_by(f, :desc)`).

Before:
    scores |> Enum.sort() |> Enum.reverse()
After:
    scores |> Enum.sort(:desc)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import is_one_line, pair_has_comment
from lsp.idioms.fusion import fused_pair
from lsp.idioms.nodes import text, unwrap_parens

# The sorter argument → the one giving the reverse order (None: the default, ascending).
FLIPPED = {None: ":desc", ":asc": ":desc", ":desc": None}


def rewrite(match: Match) -> list[Edit] | None:
    if not match.stdlib("Enum"):
        return None
    outer = match.node("finding")
    pair = fused_pair(match.source, outer, "Enum", ("sort", "sort_by"))
    if pair is None or pair.outer_extra:
        return None
    keep = 1 if pair.inner.name == "sort_by" else 0  # sort_by's mapper stays
    if len(pair.inner_extra) not in (keep, keep + 1):
        return None
    sorter = pair.inner_extra[keep] if len(pair.inner_extra) > keep else None
    order = text(match.source, unwrap_parens(sorter)) if sorter is not None else None
    if order not in FLIPPED or pair_has_comment(pair, outer):
        return None
    flipped = FLIPPED[order]
    # `mix format` lays out a multi-line fn followed by another argument one argument per line.
    if flipped and keep and not is_one_line(match.source, pair.inner_extra[0]):
        return None
    args = [pair.arg(node) for node in pair.inner_extra[:keep]]
    return [pair.replace_with(pair.call("Enum", pair.inner.name, args + ([flipped] if flipped else [])))]


RULE = Rule(
    id="enum_sort_reverse",
    title="Enum.sort |> Enum.reverse → Enum.sort(:desc)",
    safety=Safety.MOSTLY_SAFE,
    risk="elements that compare equal (1 and 1.0, equal sort keys) keep their input order instead of reversing it",
    rewrite=rewrite,
    doc=__doc__,
    min_elixir=(1, 10),
    examples=(
        Example("scores |> Enum.sort() |> Enum.reverse()", "scores |> Enum.sort(:desc)"),
        Example("Enum.sort(xs, :desc) |> Enum.reverse() |> hd()", "Enum.sort(xs) |> hd()"),
        Example(
            "def newest(posts), do: Enum.reverse(Enum.sort_by(posts, & &1.inserted_at, :asc))",
            "def newest(posts), do: Enum.sort_by(posts, & &1.inserted_at, :desc)",
        ),
        Example(
            "def top(users) do\n  users\n  |> Enum.sort_by(& &1.score, :desc)\n  |> Enum.reverse()\n  |> Enum.take(3)\nend",
            "def top(users) do\n  users\n  |> Enum.sort_by(& &1.score)\n  |> Enum.take(3)\nend",
        ),
        Example(
            "if Enum.reverse(Enum.sort(xs)) == xs, do: :descending, else: :other",
            "if Enum.sort(xs, :desc) == xs, do: :descending, else: :other",
        ),
        # A custom comparator or a module sorter is not flipped; reverse/2 is something else.
        Example("xs |> Enum.sort(&(&1.age <= &2.age)) |> Enum.reverse()", None),
        Example("xs |> Enum.sort(Date) |> Enum.reverse()", None),
        Example("xs |> Enum.sort() |> Enum.reverse(tail)", None),
        Example("users\n|> Enum.sort_by(fn user ->\n  user.score\nend)\n|> Enum.reverse()", None),
    ),
)
