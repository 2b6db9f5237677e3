"""`if !!x` / `unless !!x` → `if x` / `unless x`: a condition is already judged by truthiness.

An inner `not` (`not not x`, `!not x`) raises on a non-boolean `x`, so it is only dropped over a
certainly boolean `x`.

Before:
    if !!user.confirmed_at do
      grant(user)
    end
After:
    if user.confirmed_at do
      grant(user)
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import condition_text, droppable_negation, negated_operand, read_conditional
from lsp.idioms.nodes import replace


def rewrite(match: Match) -> list[Edit] | None:
    cond = read_conditional(match.source, match.node("finding"))
    if cond is None:
        return None
    once = negated_operand(cond.condition)
    # The inner negation yields a boolean (or raises either way); the outer one may be `!` or `not`.
    twice = droppable_negation(match, once) if once is not None else None
    if twice is None:
        return None
    # `!!!x` keeps one `!`: strip exactly two negations, never an odd number.
    inner = condition_text(match.source, twice)
    if inner is None:
        return None
    return [replace(cond.condition, inner)]


RULE = Rule(
    id="double_negation_condition",
    title="if !!x → if x",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("if !!user.confirmed_at, do: grant(user)", "if user.confirmed_at, do: grant(user)"),
        Example(
            "defp maybe_grant(user) do\n"
            "  if !!user.confirmed_at do\n"
            "    grant(user)\n"
            "  else\n"
            "    deny(user)\n"
            "  end\n"
            "end",
            "defp maybe_grant(user) do\n"
            "  if user.confirmed_at do\n"
            "    grant(user)\n"
            "  else\n"
            "    deny(user)\n"
            "  end\n"
            "end",
        ),
        Example(
            "unless not not is_nil(opts[:quiet]) do\n  IO.puts(msg)\nend",
            "unless is_nil(opts[:quiet]) do\n  IO.puts(msg)\nend",
        ),
        Example("if not !x, do: :yes", "if x, do: :yes"),
        Example("if !!(a || b), do: :any", "if a || b, do: :any"),
        Example("if !!!x, do: :no", "if !x, do: :no"),
        # `!!x` outside a condition turns a value into a boolean: not a no-op there.
        Example("flag = !!x", None),
        Example("if !x, do: :no", None),
        # `not not x` raises on a non-boolean `x`.
        Example("if not not opts[:quiet], do: :quiet", None),
    ),
)
