"""A multi-alias → one `alias` per module, each on its own line.

Before:
    alias MyApp.{Accounts, Accounts.User}
After:
    alias MyApp.Accounts
    alias MyApp.Accounts.User
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import indentation, replace
from lsp.idioms.single_helpers import alone_on_line, has_comment

# Where a directive stands as a statement of its own (so it can become several lines).
STATEMENT_PARENTS = frozenset({"source", "do_block", "body"})


def rewrite(match: Match) -> list[Edit] | None:
    directive, names = match.node("finding"), match.node("names")
    base = match.node("base")
    if base.type == "identifier" and match.text(base) != "__MODULE__":
        return None
    if directive.parent is None or directive.parent.type not in STATEMENT_PARENTS:
        return None
    if has_comment(directive) or not alone_on_line(match.source, directive):
        return None
    entries = names.named_children
    if not entries or any(entry.type != "alias" for entry in entries):
        return None
    indent = indentation(match.source, directive.start_byte)
    lines = [f"alias {match.text(base)}.{match.text(entry)}" for entry in entries]
    return [replace(directive, f"\n{indent}".join(lines))]


RULE = Rule(
    id="alias_expand_multi",
    title="alias A.{B, C} → alias A.B + alias A.C",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("alias MyApp.{Accounts, Accounts.User}", "alias MyApp.Accounts\nalias MyApp.Accounts.User"),
        Example(
            "defmodule MyApp.Web do\n  alias MyApp.{\n    Repo,\n    Mailer\n  }\n\n  def go, do: Repo.all(Mailer)\nend",
            "defmodule MyApp.Web do\n  alias MyApp.Repo\n  alias MyApp.Mailer\n\n  def go, do: Repo.all(Mailer)\nend",
        ),
        Example("alias __MODULE__.{State}", "alias __MODULE__.State"),
        # Comments inside the braces would be lost; import/require/use keep their multi form.
        Example("alias MyApp.{\n  # storage\n  Repo,\n  Mailer\n}", None),
        Example("import MyApp.{Helpers, Views}", None),
        Example("alias MyApp.{Repo, Mailer}; Repo.all(Mailer)", None),
    ),
)
