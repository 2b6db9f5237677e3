"""`if a, do: b, else: nil` and an empty `else` → drop the `else`: `if` already returns nil.

Before:
    if admin?(user) do
      :all
    else
      nil
    end
After:
    if admin?(user) do
      :all
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import drop_else, else_is_nil, keeps_comments, read_conditional


def rewrite(match: Match) -> list[Edit] | None:
    cond = read_conditional(match.source, match.node("finding"))
    if cond is None or not else_is_nil(cond):
        return None
    edit = drop_else(match.source, cond.call)
    if edit is None or not keeps_comments(match.source, cond.call, [edit]):
        return None
    return [edit]


RULE = Rule(
    id="if_else_nil",
    title="if … else nil → if without else",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("scope = if admin?(user), do: :all, else: nil", "scope = if admin?(user), do: :all"),
        Example(
            "def scope(user) do\n"
            "  if admin?(user) do\n"
            "    # admins see everything\n"
            "    :all\n"
            "  else\n"
            "    nil\n"
            "  end\n"
            "end",
            "def scope(user) do\n"
            "  if admin?(user) do\n"
            "    # admins see everything\n"
            "    :all\n"
            "  end\n"
            "end",
        ),
        Example("if ready? do\n  go()\nelse\nend", "if ready? do\n  go()\nend"),
        Example("unless done?, do: work(), else: nil", "unless done?, do: work()"),
        Example(
            "if valid?(x),\n  do: save(x),\n  else: nil",
            "if valid?(x),\n  do: save(x)",
        ),
        Example("if a do b else nil end", "if a do b end"),
        # A comment in the else would be lost; a non-nil else stays.
        Example("if a do\n  b\nelse\n  # nothing to do\n  nil\nend", None),
        Example("if a, do: b, else: :none", None),
    ),
)
