"""`unless ... else` → `if` with the branches swapped: no double negative to untangle.

Before:
    unless valid?(order) do
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
    else_is_nil,
    keeps_comments,
    read_conditional,
    rename_keyword,
    swap_branches,
)


def rewrite(match: Match) -> list[Edit] | None:
    cond = read_conditional(match.source, match.node("finding"), ("unless",))
    # An `else nil` is if_else_nil's to drop; swapping it in would give `if c, do: nil`.
    if cond is None or not cond.has_else or else_is_nil(cond):
        return None
    swapped = swap_branches(match.source, cond)
    if swapped is None:
        return None
    edits = [rename_keyword(cond, "if"), *swapped]
    return edits if keeps_comments(match.source, cond.call, edits) else None


RULE = Rule(
    id="unless_else",
    title="unless … else → if with the branches swapped",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "unless valid?(order), do: reject(order), else: ship(order)",
            "if valid?(order), do: ship(order), else: reject(order)",
        ),
        Example(
            "def handle(order) do\n"
            "  unless valid?(order) do\n"
            "    # not ready yet\n"
            "    log(order)\n"
            "    reject(order)\n"
            "  else\n"
            "    ship(order)\n"
            "  end\n"
            "end",
            "def handle(order) do\n"
            "  if valid?(order) do\n"
            "    ship(order)\n"
            "  else\n"
            "    # not ready yet\n"
            "    log(order)\n"
            "    reject(order)\n"
            "  end\n"
            "end",
        ),
        Example(
            "status = unless x > 0 do :negative else :positive end",
            "status = if x > 0 do :positive else :negative end",
        ),
        Example(
            "unless !ready?, do: wait(), else: go()",
            "if !ready?, do: go(), else: wait()",
        ),
        # No else: nothing to swap (unless_negated handles `unless !c`).
        Example("unless valid?(order) do\n  reject(order)\nend", None),
        # `else: nil` is dropped by if_else_nil instead.
        Example("unless done?, do: work(), else: nil", None),
    ),
)
