"""`unless !c` / `unless not c` → `if c`: say the condition positively.

`not c` raises on a non-boolean `c`, so `not` is only dropped when `c` is certainly boolean (a comparison,
an `is_*` guard, a stdlib `?` function...); `!` is always dropped.

Before:
    unless not Map.has_key?(opts, :name) do
      raise ArgumentError, "a name is required"
    end
After:
    if Map.has_key?(opts, :name) do
      raise ArgumentError, "a name is required"
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import (
    condition_text,
    droppable_negation,
    negated_operand,
    read_conditional,
    rename_keyword,
)
from lsp.idioms.nodes import replace


def rewrite(match: Match) -> list[Edit] | None:
    cond = read_conditional(match.source, match.node("finding"), ("unless",))
    if cond is None or cond.has_else:
        return None  # with an else, unless_else swaps the branches first
    # `unless !!x` is double_negation_condition's: stripping one `!` would leave `if !x`.
    if negated_operand(cond.condition) is None or negated_operand(negated_operand(cond.condition)) is not None:
        return None
    operand = droppable_negation(match, cond.condition)
    if operand is None:
        return None
    positive = condition_text(match.source, operand)
    if positive is None:
        return None
    return [rename_keyword(cond, "if"), replace(cond.condition, positive)]


RULE = Rule(
    id="unless_negated",
    title="unless !c → if c",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "unless !valid?(user), do: save(user)",
            "if valid?(user), do: save(user)",
        ),
        Example(
            "def push_event(socket, event) do\n"
            "  unless not is_pid(socket.pid) do\n"
            "    # only live sockets get events\n"
            "    push(socket, event)\n"
            "  end\n"
            "end",
            "def push_event(socket, event) do\n"
            "  if is_pid(socket.pid) do\n"
            "    # only live sockets get events\n"
            "    push(socket, event)\n"
            "  end\n"
            "end",
        ),
        Example(
            "unless !(a and b) do\n  run()\nend",
            "if a and b do\n  run()\nend",
        ),
        Example(
            "unless(!Map.has_key?(opts, :name), do: raise(ArgumentError))",
            "if(Map.has_key?(opts, :name), do: raise(ArgumentError))",
        ),
        # Not negated, or with an else (unless_else's case).
        Example("unless valid?(user), do: reject(user)", None),
        Example("unless !valid?(user), do: save(user), else: reject(user)", None),
        # `not` over a value that may not be boolean raises today: dropping it would change that.
        Example("unless not connected?(socket), do: push(socket, event)", None),
        # Dropping the parentheses would let `do` bind to the paren-less call.
        Example("unless !(check user) do\n  run()\nend", None),
    ),
)
