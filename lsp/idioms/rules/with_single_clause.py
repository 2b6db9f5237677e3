"""A `with` with a single `<-` clause and an `else` → `case`.

Mostly safe: a value no clause matches raises CaseClauseError instead of WithClauseError.

Before:
    with {:ok, user} <- fetch_user(id) do
      greet(user)
    else
      {:error, :not_found} -> :anonymous
    end
After:
    case fetch_user(id) do
      {:ok, user} -> greet(user)
      {:error, :not_found} -> :anonymous
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import Clause, clause_of, keeps_comments, piece, read_with, render_case
from lsp.idioms.nodes import operator, text


def rewrite(match: Match) -> list[Edit] | None:
    with_call = read_with(match.source, match.node("finding"))
    if with_call is None or with_call.else_clauses is None or len(with_call.clauses) != 1:
        return None
    clause = with_call.clauses[0]
    if clause.type != "binary_operator" or operator(clause) != "<-" or not with_call.body:
        return None
    pattern, subject = clause.child_by_field_name("left"), clause.child_by_field_name("right")
    if "\n" in text(match.source, clause):
        return None
    if with_call.keyword_form:
        body_nodes = list(with_call.body)
    else:
        do_block = next(c for c in with_call.call.named_children if c.type == "do_block")
        body_nodes = [c for c in do_block.named_children if not c.type.endswith("_block")]
    body = piece(match.source, body_nodes)
    # A one-line body fits on the clause's line; a longer one goes below it, as the formatter lays it out.
    single = len(with_call.body) == 1 and len(body_nodes) == 1 and "\n" not in text(match.source, body_nodes[0])
    clauses = [Clause(text(match.source, pattern), (body,), broken=not single)]
    for else_clause in with_call.else_clauses:
        rendered = clause_of(match.source, else_clause)
        if rendered is None:
            return None
        clauses.append(rendered)
    new_text = render_case(match.source, with_call.call, text(match.source, subject), clauses)
    if new_text is None:
        return None
    edit = Edit(with_call.call.start_byte, with_call.call.end_byte, new_text)
    return [edit] if keeps_comments(match.source, with_call.call, [edit]) else None


RULE = Rule(
    id="with_single_clause",
    title="with one <- and else → case",
    safety=Safety.MOSTLY_SAFE,
    risk="a value no clause matches raises CaseClauseError instead of WithClauseError",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "with {:ok, user} <- fetch_user(id) do\n"
            "  greet(user)\n"
            "else\n"
            "  {:error, :not_found} -> :anonymous\n"
            "end",
            "case fetch_user(id) do\n"
            "  {:ok, user} -> greet(user)\n"
            "  {:error, :not_found} -> :anonymous\n"
            "end",
        ),
        Example(
            "with :ok <- check(x), do: :passed, else: (:error -> :failed)",
            "case check(x) do\n  :ok -> :passed\n  :error -> :failed\nend",
        ),
        Example(
            "def save(params) do\n"
            "  with {:ok, changeset} <- validate(params) do\n"
            "    # persist it\n"
            "    Repo.insert(changeset)\n"
            "  else\n"
            "    {:error, reason} ->\n"
            "      log(reason)\n"
            "      {:error, reason}\n"
            "\n"
            "    other ->\n"
            "      other\n"
            "  end\n"
            "end",
            "def save(params) do\n"
            "  case validate(params) do\n"
            "    {:ok, changeset} ->\n"
            "      # persist it\n"
            "      Repo.insert(changeset)\n"
            "\n"
            "    {:error, reason} ->\n"
            "      log(reason)\n"
            "      {:error, reason}\n"
            "\n"
            "    other ->\n"
            "      other\n"
            "  end\n"
            "end",
        ),
        Example(
            "with {:ok, n} when n > 0 <- parse(s) do\n  n\nelse\n  _ -> 0\nend",
            "case parse(s) do\n  {:ok, n} when n > 0 -> n\n  _ -> 0\nend",
        ),
        # Two clauses, or no else (nothing to gain from a case).
        Example("with {:ok, a} <- f(), {:ok, b} <- g(a) do\n  b\nelse\n  _ -> nil\nend", None),
        Example("with {:ok, a} <- f() do\n  a\nend", None),
    ),
)
