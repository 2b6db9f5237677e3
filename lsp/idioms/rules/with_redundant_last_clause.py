"""A `with` whose last clause's pattern is exactly its body → return that clause's right side.

Without an else, `{:ok, b} <- bar(a)` then `{:ok, b}` returns `bar(a)`'s value whether it matches or not.
Only for patterns that rebuild the very value they match (tuples, lists, variables, literals); a map
pattern matches a bigger map, so it is left alone.

Before:
    with {:ok, a} <- foo(),
         {:ok, b} <- bar(a) do
      {:ok, b}
    end
After:
    with {:ok, a} <- foo() do
      bar(a)
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import (
    can_shift,
    keeps_comments,
    read_with,
    shift,
    statement_or_operand,
)
from lsp.idioms.nodes import Node, indentation, operator, replace, text

# Node types of a pattern that, used as an expression, rebuilds exactly the value it matched.
REBUILDING_TYPES = frozenset(
    {"tuple", "list", "identifier", "atom", "integer", "string", "quoted_content", "boolean", "nil",
     "keywords", "pair", "keyword", "char", "charlist"}
)


def rebuilds_value(source: bytes, node: Node) -> bool:
    if node.type == "binary_operator":
        if operator(node) != "|":
            return False
    elif node.type not in REBUILDING_TYPES:
        return False
    if node.type == "identifier" and text(source, node).startswith("_"):
        return False
    return all(rebuilds_value(source, child) for child in node.named_children)


def tokens(source: bytes, node: Node) -> list[str]:
    if node.child_count == 0:
        return [text(source, node)]
    return [tok for child in node.children for tok in tokens(source, child)]


def rewrite(match: Match) -> list[Edit] | None:
    with_call = read_with(match.source, match.node("finding"))
    if with_call is None or with_call.else_clauses is not None or len(with_call.body) != 1:
        return None
    last = with_call.clauses[-1]
    if last.type != "binary_operator" or operator(last) != "<-":
        return None
    pattern, rhs = last.child_by_field_name("left"), last.child_by_field_name("right")
    body = with_call.body[0]
    if not rebuilds_value(match.source, pattern) or tokens(match.source, pattern) != tokens(match.source, body):
        return None
    if len(with_call.clauses) == 1:
        # Nothing left to match: the `with` is just its right side.
        edits = [replace(with_call.call, statement_or_operand(match.source, with_call.call, rhs))]
    else:
        old, new = indentation(match.source, rhs.start_byte), indentation(match.source, body.start_byte)
        if not can_shift(match.source, rhs, old, new):
            return None
        previous = with_call.clauses[-2]
        edits = [Edit(previous.end_byte, last.end_byte, ""), replace(body, shift(text(match.source, rhs), old, new))]
    return edits if keeps_comments(match.source, with_call.call, edits) else None


RULE = Rule(
    id="with_redundant_last_clause",
    title="with … {:ok, b} <- f() do {:ok, b} end → f() as the body",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "with {:ok, a} <- foo(),\n     {:ok, b} <- bar(a) do\n  {:ok, b}\nend",
            "with {:ok, a} <- foo() do\n  bar(a)\nend",
        ),
        Example(
            "with {:ok, a} <- foo(), {:ok, b} <- bar(a), do: {:ok, b}",
            "with {:ok, a} <- foo(), do: bar(a)",
        ),
        Example(
            "def load(id) do\n  with {:ok, user} <- fetch(id) do\n    {:ok, user}\n  end\nend",
            "def load(id) do\n  fetch(id)\nend",
        ),
        Example(
            "result = with [h | t] <- split(x), do: [h | t]",
            "result = split(x)",
        ),
        # An else may handle the non-matching value; a map pattern matches bigger maps.
        Example("with {:ok, b} <- bar(a) do\n  {:ok, b}\nelse\n  _ -> :error\nend", None),
        Example("with %{id: id} <- fetch() do\n  %{id: id}\nend", None),
        Example("with {:ok, a} <- foo(), {:ok, b} <- bar(a), do: {:ok, a}", None),
    ),
)
