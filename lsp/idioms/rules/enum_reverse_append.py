"""`Enum.reverse(a) ++ b` → `Enum.reverse(a, b)`: reverses onto the tail without a second copy.

Before:
    Enum.reverse(acc) ++ rest
After:
    Enum.reverse(acc, rest)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import reverse_append


def rewrite(match: Match) -> list[Edit] | None:
    # A list-literal tail is always safe: enum_reverse_concat handles it.
    return reverse_append(match, list_tail=False)


RULE = Rule(
    id="enum_reverse_append",
    title="Enum.reverse(a) ++ b → Enum.reverse(a, b)",
    safety=Safety.MOSTLY_SAFE,
    risk="if b is not a list (an iodata binary, a map), ++ built an improper list; reverse/2 enumerates b or raises",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("Enum.reverse(acc) ++ rest", "Enum.reverse(acc, rest)"),
        Example("result = Enum.reverse(left) ++ Enum.map(right, &f/1)", "result = Enum.reverse(left, Enum.map(right, &f/1))"),
        Example(
            "defp finish(acc, rest), do: {:ok, Enum.reverse(acc) ++ rest}",
            "defp finish(acc, rest), do: {:ok, Enum.reverse(acc, rest)}",
        ),
        Example(
            "defp merge([], acc, rest) do\n  Enum.reverse(acc) ++ (rest || [])\nend",
            "defp merge([], acc, rest) do\n  Enum.reverse(acc, rest || [])\nend",
        ),
        # A list literal is enum_reverse_concat's (safe) case; a reverse/2 already has its tail.
        Example("Enum.reverse(acc) ++ [x]", None),
        Example("Enum.reverse(acc, t) ++ rest", None),
        Example("alias My.Enum\nEnum.reverse(acc) ++ rest", None),
    ),
)
