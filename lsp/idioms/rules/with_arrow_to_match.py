"""In a `with` head, `_ <- rhs` → `rhs` and `var <- rhs` → `var = rhs`: these clauses always match.

Before:
    with {:ok, user} <- fetch_user(id),
         _ <- audit(user),
         token <- sign(user) do
      {:ok, token}
    end
After:
    with {:ok, user} <- fetch_user(id),
         audit(user),
         token = sign(user) do
      {:ok, token}
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import LOOSE_OPERATORS, keeps_comments, target_name
from lsp.idioms.nodes import operator


def rewrite(match: Match) -> list[Edit] | None:
    clause = match.node("finding")
    arguments = clause.parent
    if arguments is None or arguments.parent is None or target_name(match.source, arguments.parent) != "with":
        return None
    variable, rhs = match.node("variable"), match.node("rhs")
    # `x <- a when b` reads as `(x <- a) when b`; a right side made of such operators would re-associate.
    if rhs.type == "binary_operator" and operator(rhs) in LOOSE_OPERATORS:
        return None
    if match.text(variable) == "_":
        edit = Edit(clause.start_byte, rhs.start_byte, "")
    else:
        arrow = next(c for c in clause.children if c.type == "<-")
        edit = Edit(arrow.start_byte, arrow.end_byte, "=")
    return [edit] if keeps_comments(match.source, clause, [edit]) else None


RULE = Rule(
    id="with_arrow_to_match",
    title="with x <- rhs → x = rhs",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "with {:ok, user} <- fetch_user(id),\n"
            "     _ <- audit(user),\n"
            "     token <- sign(user) do\n"
            "  {:ok, token}\n"
            "end",
            "with {:ok, user} <- fetch_user(id),\n"
            "     audit(user),\n"
            "     token = sign(user) do\n"
            "  {:ok, token}\n"
            "end",
        ),
        Example(
            "with {:ok, a} <- parse(x), b <- a * 2, do: {:ok, b}",
            "with {:ok, a} <- parse(x), b = a * 2, do: {:ok, b}",
        ),
        Example(
            "def run(opts) do\n"
            "  with _ <- Logger.info(\"start\"),\n"
            "       {:ok, conn} <- connect(opts) do\n"
            "    conn\n"
            "  else\n"
            "    {:error, reason} -> raise reason\n"
            "  end\n"
            "end",
            "def run(opts) do\n"
            "  with Logger.info(\"start\"),\n"
            "       {:ok, conn} <- connect(opts) do\n"
            "    conn\n"
            "  else\n"
            "    {:error, reason} -> raise reason\n"
            "  end\n"
            "end",
        ),
        # Patterns can fail to match; `for` generators are not `with` clauses.
        Example("with {:ok, a} <- fetch(), ^a <- other(), do: a", None),
        Example("for x <- xs, y <- ys, do: {x, y}", None),
    ),
)
