"""A `cond` with one test and a catch-all → `if`/`else`.

Before:
    cond do
      balance > 0 -> :credit
      true -> :debit
    end
After:
    if balance > 0 do
      :credit
    else
      :debit
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
from lsp.idioms.nodes import Node, text

# Atoms that are falsy: a last clause guarded by them is not a catch-all.
FALSY_ATOMS = frozenset({":nil", ":false"})


def is_catch_all(source: bytes, node: Node) -> bool:
    if node.type == "boolean":
        return text(source, node) == "true"
    return node.type == "atom" and text(source, node) not in FALSY_ATOMS


def rewrite(match: Match) -> list[Edit] | None:
    call = match.node("finding")
    do_block = do_block_of(call)
    args, keywords = positional_args(call)
    if target_name(match.source, call) != "cond" or do_block is None or args or keywords is not None:
        return None
    clauses = stab_clauses(do_block)
    if clauses is None or len(clauses) != 2 or sub_blocks(do_block):
        return None
    test, last = (clause_head(match.source, c) for c in clauses)
    if test is None or last is None or not is_catch_all(match.source, last):
        return None
    condition = condition_text(match.source, test)
    if condition is None:
        return None
    edit = two_way_if(match.source, call, condition, do_block, clauses, then_index=0)
    return [edit] if edit is not None else None


RULE = Rule(
    id="cond_to_if",
    title="two-clause cond → if/else",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "cond do\n  balance > 0 -> :credit\n  true -> :debit\nend",
            "if balance > 0 do\n  :credit\nelse\n  :debit\nend",
        ),
        Example(
            "def label(user) do\n"
            "  cond do\n"
            "    # admins first\n"
            "    user.admin? ->\n"
            "      log(user)\n"
            "      \"admin\"\n"
            "\n"
            "    :else ->\n"
            "      \"member\"\n"
            "  end\n"
            "end",
            "def label(user) do\n"
            "  if user.admin? do\n"
            "    # admins first\n"
            "    log(user)\n"
            "    \"admin\"\n"
            "  else\n"
            "    \"member\"\n"
            "  end\n"
            "end",
        ),
        Example(
            "total =\n"
            "  cond do\n"
            "    Enum.empty?(items) -> 0\n"
            "    # sum the rest\n"
            "    true -> Enum.sum(items)\n"
            "  end",
            "total =\n"
            "  if Enum.empty?(items) do\n"
            "    0\n"
            "  else\n"
            "    # sum the rest\n"
            "    Enum.sum(items)\n"
            "  end",
        ),
        # Three clauses, or a last clause that is a real test (left alone on purpose, as in Styler).
        Example("cond do\n  a -> 1\n  b -> 2\n  true -> 3\nend", None),
        Example("cond do\n  a -> 1\n  b -> 2\nend", None),
        Example("cond do\n  a -> 1\n  :nil -> 2\nend", None),
    ),
)
