"""A `case` on `true`/`false` (either order, or `true`/`_`) → `if`/`else`.

Unsafe: a value other than `true`/`false` used to raise CaseClauseError (or, with `true`/`_`, take the
second branch, even for a truthy value like `1`); `if` judges it by truthiness instead.

Before:
    case valid?(order) do
      true -> ship(order)
      false -> reject(order)
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
    clause_head,
    condition_text,
    do_block_of,
    positional_args,
    stab_clauses,
    sub_blocks,
    target_name,
    two_way_if,
)
from lsp.idioms.nodes import is_pipe, text

# Clause patterns (in source order) → index of the clause taken when the subject is true.
THEN_CLAUSE = {("true", "false"): 0, ("false", "true"): 1, ("true", "_"): 0}


def rewrite(match: Match) -> list[Edit] | None:
    call = match.node("finding")
    do_block = do_block_of(call)
    if target_name(match.source, call) != "case" or do_block is None or sub_blocks(do_block):
        return None
    args, keywords = positional_args(call)
    if keywords is not None or len(args) > 1:
        return None
    if args:
        anchor, condition = call, condition_text(match.source, args[0])
    elif is_pipe(call.parent) and call.parent.child_by_field_name("right") == call:
        # `x |> case do ... end`: the pipe's left side is the subject.
        anchor = call.parent
        subject = anchor.child_by_field_name("left")
        condition = None if "\n" in text(match.source, subject) else text(match.source, subject)
    else:
        return None
    clauses = stab_clauses(do_block)
    if condition is None or clauses is None or len(clauses) != 2:
        return None
    heads = tuple(clause_head(match.source, c) for c in clauses)
    if any(h is None or h.type not in ("boolean", "identifier") for h in heads):
        return None
    then_index = THEN_CLAUSE.get(tuple(text(match.source, h) for h in heads))
    if then_index is None:
        return None
    edit = two_way_if(match.source, anchor, condition, do_block, clauses, then_index)
    return [edit] if edit is not None else None


RULE = Rule(
    id="case_boolean",
    title="case on true/false → if/else",
    safety=Safety.UNSAFE,
    risk="a non-boolean value no longer raises CaseClauseError (or takes the `_` branch): if judges it by truthiness",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "case valid?(order) do\n  true -> ship(order)\n  false -> reject(order)\nend",
            "if valid?(order) do\n  ship(order)\nelse\n  reject(order)\nend",
        ),
        Example(
            "def check(user) do\n"
            "  case admin?(user) do\n"
            "    false ->\n"
            "      # everyone else\n"
            "      :denied\n"
            "\n"
            "    true ->\n"
            "      log(user)\n"
            "      :granted\n"
            "  end\n"
            "end",
            "def check(user) do\n"
            "  if admin?(user) do\n"
            "    log(user)\n"
            "    :granted\n"
            "  else\n"
            "    # everyone else\n"
            "    :denied\n"
            "  end\n"
            "end",
        ),
        Example(
            "user |> active?() |> case do\n  true -> :ok\n  _ -> :inactive\nend",
            "if user |> active?() do\n  :ok\nelse\n  :inactive\nend",
        ),
        Example(
            "status = case x > 0 do true -> :pos; _ -> :neg end",
            "status = if x > 0 do\n  :pos\nelse\n  :neg\nend",
        ),
        # `false`/`_` is `x === false`, not truthiness; guards and other patterns are not booleans.
        Example("case x do\n  false -> 1\n  _ -> 2\nend", None),
        Example("case x do\n  true when y -> 1\n  false -> 2\nend", None),
        Example("case x do\n  :ok -> 1\n  _ -> 2\nend", None),
    ),
)
