"""A negated equality → the inequality operator: `not (a == b)` / `!(a == b)` → `a != b`.

Before:
    if !(status == :ok), do: retry()
    not (left === right)
After:
    if status != :ok, do: retry()
    left !== right
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import operator, replace
from lsp.idioms.single_helpers import has_comment

NEGATED = {"==": "!=", "===": "!=="}

# Operators binding looser than `!=`: the rewritten comparison can be their operand without parentheses.
LOOSER_OPERATORS = frozenset(
    {"=", "&&", "||", "&&&", "|||", "and", "or", "when", "<-", "\\\\", "::", "|", "=>"}
)


def rewrite(match: Match) -> list[Edit] | None:
    negation, comparison = match.node("finding"), match.node("comparison")
    if has_comment(negation):
        return None
    parent = negation.parent
    if parent is not None and parent.type == "binary_operator" and operator(parent) not in LOOSER_OPERATORS:
        return None
    if parent is not None and parent.type in ("unary_operator", "dot", "access_call"):
        return None
    left, right = comparison.child_by_field_name("left"), comparison.child_by_field_name("right")
    new_operator = NEGATED[operator(comparison)]
    return [replace(negation, f"{match.text(left)} {new_operator} {match.text(right)}")]


RULE = Rule(
    id="negated_equality",
    title="not (a == b) → a != b",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("if !(status == :ok), do: retry()", "if status != :ok, do: retry()"),
        Example("same? = not (left === right)", "same? = left !== right"),
        Example(
            "def changed?(old, new) do\n  if not (old.version == new.version) and old.id == new.id do\n    :changed\n  end\nend",
            "def changed?(old, new) do\n  if old.version != new.version and old.id == new.id do\n    :changed\n  end\nend",
        ),
        Example("Enum.reject(xs, fn x -> !(x == 0) end)", "Enum.reject(xs, fn x -> x != 0 end)"),
        Example("def f(x) when not (x == 0), do: x", "def f(x) when x != 0, do: x"),
        # `|>` binds tighter than `!=`: dropping the negation's parentheses would change the operands.
        Example("!(a == b) |> IO.inspect()", None),
        # Other comparisons have no negated operator of their own here.
        Example("not (a < b)", None),
    ),
)
