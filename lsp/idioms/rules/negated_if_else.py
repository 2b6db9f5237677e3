"""A negated `if` with an `else` → the positive condition with the branches swapped.

`not c` raises on a non-boolean `c`, so `if not c` is only rewritten when `c` is certainly boolean.

Before:
    if !valid?(order) do
      reject(order)
    else
      ship(order)
    end
After:
    if valid?(order) do
      ship(order)
    else
      reject(order)
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import (
    condition_text,
    droppable_negation,
    else_is_nil,
    keeps_comments,
    negated_operand,
    read_conditional,
    swap_branches,
)
from lsp.idioms.nodes import Node, replace

# `a != b` is `!(a == b)` for every term, `a !== b` is `!(a === b)`.
POSITIVE_OPERATORS = {"!=": "==", "!==": "==="}


def positive_condition(match: Match, condition: Node) -> Edit | None:
    if negated_operand(condition) is not None:
        # `!!x` is double_negation_condition's.
        if negated_operand(negated_operand(condition)) is not None:
            return None
        operand = droppable_negation(match, condition)
        positive = condition_text(match.source, operand) if operand is not None else None
        return replace(condition, positive) if positive is not None else None
    op = condition.child_by_field_name("operator") if condition.type == "binary_operator" else None
    if op is None or op.type not in POSITIVE_OPERATORS:
        return None
    return replace(op, POSITIVE_OPERATORS[op.type])


def rewrite(match: Match) -> list[Edit] | None:
    cond = read_conditional(match.source, match.node("finding"), ("if",))
    # With `else nil` the else goes first (if_else_nil), leaving an `if !c` without else alone.
    if cond is None or not cond.has_else or else_is_nil(cond):
        return None
    condition = positive_condition(match, cond.condition)
    swapped = swap_branches(match.source, cond)
    if condition is None or swapped is None:
        return None
    edits = [condition, *swapped]
    return edits if keeps_comments(match.source, cond.call, edits) else None


RULE = Rule(
    id="negated_if_else",
    title="if !c … else → if c with the branches swapped",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "if !valid?(order), do: reject(order), else: ship(order)",
            "if valid?(order), do: ship(order), else: reject(order)",
        ),
        Example(
            "def ship_or_reject(order) do\n"
            "  if not Enum.empty?(order.lines) do\n"
            "    reject(order)\n"
            "  else\n"
            "    # the happy path\n"
            "    ship(order)\n"
            "  end\n"
            "end",
            "def ship_or_reject(order) do\n"
            "  if Enum.empty?(order.lines) do\n"
            "    # the happy path\n"
            "    ship(order)\n"
            "  else\n"
            "    reject(order)\n"
            "  end\n"
            "end",
        ),
        Example(
            "label =\n  if count != 1 do\n    \"items\"\n  else\n    \"item\"\n  end",
            "label =\n  if count == 1 do\n    \"item\"\n  else\n    \"items\"\n  end",
        ),
        Example(
            "if a !== b, do: :different, else: :same",
            "if a === b, do: :same, else: :different",
        ),
        Example(
            "if !(user && user.admin?), do: deny(), else: allow()",
            "if user && user.admin?, do: allow(), else: deny()",
        ),
        # `not` raises on a non-boolean; a local predicate is not known to return one.
        Example("if not valid?(order), do: reject(order), else: ship(order)", None),
        # No else: nothing to swap.
        Example("if !valid?(order) do\n  reject(order)\nend", None),
        # Not negated; `else: nil` is if_else_nil's.
        Example("if a == b, do: :same, else: :different", None),
        Example("if !done?, do: work(), else: nil", None),
    ),
)
