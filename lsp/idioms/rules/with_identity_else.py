"""Drop a `with`'s `else error -> error`: without an else, `with` returns the unmatched value anyway.

Before:
    with {:ok, user} <- fetch_user(id),
         {:ok, token} <- sign(user) do
      {:ok, token}
    else
      error -> error
    end
After:
    with {:ok, user} <- fetch_user(id),
         {:ok, token} <- sign(user) do
      {:ok, token}
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import clause_head, drop_else, expressions, keeps_comments, read_with
from lsp.idioms.nodes import Node, text


def is_identity(source: bytes, clause: Node) -> bool:
    head = clause_head(source, clause)
    body = clause.child_by_field_name("right")
    returned = expressions(body) if body is not None else []
    if head is None or head.type != "identifier" or len(returned) != 1 or returned[0].type != "identifier":
        return False
    name = text(source, head)
    return name != "_" and name == text(source, returned[0])


def rewrite(match: Match) -> list[Edit] | None:
    with_call = read_with(match.source, match.node("finding"))
    if with_call is None or with_call.else_clauses is None or len(with_call.else_clauses) != 1:
        return None
    if not is_identity(match.source, with_call.else_clauses[0]):
        return None
    edit = drop_else(match.source, with_call.call)
    if edit is None or not keeps_comments(match.source, with_call.call, [edit]):
        return None
    return [edit]


RULE = Rule(
    id="with_identity_else",
    title="with … else e -> e → with without else",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "with {:ok, user} <- fetch_user(id),\n"
            "     {:ok, token} <- sign(user) do\n"
            "  {:ok, token}\n"
            "else\n"
            "  error -> error\n"
            "end",
            "with {:ok, user} <- fetch_user(id),\n"
            "     {:ok, token} <- sign(user) do\n"
            "  {:ok, token}\n"
            "end",
        ),
        Example(
            "with {:ok, a} <- parse(x), do: a * 2, else: (other -> other)",
            "with {:ok, a} <- parse(x), do: a * 2",
        ),
        Example(
            "def run(x) do\n"
            "  with {:ok, a} <- parse(x),\n"
            "       # doubling cannot fail\n"
            "       b = a * 2 do\n"
            "    b\n"
            "  else\n"
            "    e -> e\n"
            "  end\n"
            "end",
            "def run(x) do\n"
            "  with {:ok, a} <- parse(x),\n"
            "       # doubling cannot fail\n"
            "       b = a * 2 do\n"
            "    b\n"
            "  end\n"
            "end",
        ),
        # Not the identity, or more than one else clause.
        Example("with {:ok, a} <- parse(x) do\n  a\nelse\n  e -> {:error, e}\nend", None),
        Example("with {:ok, a} <- parse(x) do\n  a\nelse\n  :timeout -> :retry\n  e -> e\nend", None),
        Example("with {:ok, a} <- parse(x) do\n  a\nelse\n  # keep this note\n  e -> e\nend", None),
    ),
)
