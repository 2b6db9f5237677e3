"""`reverse |> concat` (or `Enum.reverse(a) ++ [..]`) → `Enum.reverse/2`: reverses onto the tail directly.

Before:
    acc |> Enum.reverse() |> Enum.concat(rest)
    Enum.reverse(acc) ++ [last]
After:
    acc |> Enum.reverse(rest)
    Enum.reverse(acc, [last])
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import pair_has_comment, reverse_append
from lsp.idioms.fusion import fused_pair


def rewrite(match: Match) -> list[Edit] | None:
    node = match.node("finding")
    if node.type == "binary_operator":
        # `++` with any other right side is enum_reverse_append's (mostly safe) case.
        return reverse_append(match, list_tail=True)
    if not match.stdlib("Enum"):
        return None
    # reverse/2 runs `Enum.to_list` on its tail, as concat/2 does: same list, same errors.
    pair = fused_pair(match.source, node, "Enum", ("reverse",))
    if pair is None or pair.inner_extra or len(pair.outer_extra) != 1 or pair_has_comment(pair, node):
        return None
    return [pair.replace_with(pair.call("Enum", "reverse", [pair.arg(pair.outer_extra[0])]))]


RULE = Rule(
    id="enum_reverse_concat",
    title="Enum.reverse |> Enum.concat → Enum.reverse/2",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("acc |> Enum.reverse() |> Enum.concat(rest)", "acc |> Enum.reverse(rest)"),
        Example("Enum.reverse(acc) |> Enum.concat(1..3)", "Enum.reverse(acc, 1..3)"),
        Example("def finish(acc, x), do: Enum.reverse(acc) ++ [x]", "def finish(acc, x), do: Enum.reverse(acc, [x])"),
        Example(
            "def flush(acc, tail) do\n  Enum.concat(Enum.reverse(acc), tail)\nend",
            "def flush(acc, tail) do\n  Enum.reverse(acc, tail)\nend",
        ),
        Example(
            "defp done(acc, line) do\n  Enum.reverse(acc) ++ [\n    line,\n    :eof\n  ]\nend",
            "defp done(acc, line) do\n  Enum.reverse(acc, [\n    line,\n    :eof\n  ])\nend",
        ),
        # `++ tail` with a non-list tail builds an improper list: that is enum_reverse_append (mostly safe).
        Example("Enum.reverse(acc) ++ tail", None),
        Example("xs |> Enum.reverse() |> Enum.concat()", None),
        Example("Enum.concat(Enum.reverse(a), b, c)", None),
    ),
)
