"""`Enum.count(x) == 0` → `Enum.empty?(x)`: stops at the first element instead of counting all.

Before:
    if Enum.count(items) > 0, do: render(items)
After:
    if not Enum.empty?(items), do: render(items)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import contains_comment, measured_call, zero_comparison
from lsp.idioms.nodes import text


def rewrite(match: Match) -> list[Edit] | None:
    if not match.stdlib("Enum"):
        return None
    node = match.node("finding")
    test = zero_comparison(match.source, node)
    found = measured_call(match.source, test[0], "Enum", "count") if test else None
    if test is None or found is None or contains_comment(node):
        return None
    (measured, non_empty), (count, subject) = test, found
    if subject is None:
        # `a |> f() |> Enum.count() == 0` → `a |> f() |> Enum.empty?()`; negating a chain needs a rewrite
        # of the whole pipe, left to the user.
        if non_empty:
            return None
        head = match.source[measured.start_byte : count.start_byte].decode("utf-8")
        return [Edit(node.start_byte, node.end_byte, f"{head}Enum.empty?()")]
    check = f"Enum.empty?({text(match.source, subject)})"
    # `not` binds tighter than any binary operator, so the result needs no parentheses where it stands.
    return [Edit(node.start_byte, node.end_byte, f"not {check}" if non_empty else check)]


RULE = Rule(
    id="enum_count_zero",
    title="Enum.count(x) == 0 → Enum.empty?(x)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("if Enum.count(items) > 0, do: render(items)", "if not Enum.empty?(items), do: render(items)"),
        Example("done? = Enum.count(queue) == 0", "done? = Enum.empty?(queue)"),
        Example("0 != Enum.count(rows) && ready", "not Enum.empty?(rows) && ready"),
        Example(
            "def check(xs) do\n  if xs |> Enum.filter(&bad?/1) |> Enum.count() == 0 do\n    :ok\n  end\nend",
            "def check(xs) do\n  if xs |> Enum.filter(&bad?/1) |> Enum.empty?() do\n    :ok\n  end\nend",
        ),
        Example("map |> Enum.count() !== 0", "not Enum.empty?(map)"),
        # count/2 with a predicate, a non-zero bound, and a negated chain are left alone.
        Example("Enum.count(xs, &odd?/1) == 0", None),
        Example("Enum.count(xs) > 1", None),
        Example("xs |> Enum.map(&f/1) |> Enum.count() > 0", None),
    ),
)
