"""Consecutive `alias` lines in alphabetical order (case-insensitive, as Credo's AliasOrder).

Before:
    alias MyApp.Repo
    alias MyApp.Accounts
After:
    alias MyApp.Accounts
    alias MyApp.Repo
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import Node, indentation, keyword_pairs, text
from lsp.idioms.single_helpers import alone_on_line, has_comment

STATEMENT_PARENTS = frozenset({"source", "do_block", "body"})


def module_and_name(source: bytes, node: Node | None) -> tuple[str, str] | None:
    """(module, the short name it binds) of a one-line `alias Mod` / `alias Mod, as: Name`."""
    if (
        node is None
        or node.type != "call"
        or node.parent is None
        or node.parent.type not in STATEMENT_PARENTS
    ):
        return None
    target = node.child_by_field_name("target")
    arguments = next((c for c in node.named_children if c.type == "arguments"), None)
    if target is None or text(source, target) != "alias" or arguments is None:
        return None
    if node.start_point.row != node.end_point.row or has_comment(node) or not alone_on_line(source, node):
        return None
    module, *rest = arguments.named_children
    if module.type != "alias":
        return None
    name = text(source, module).rsplit(".", 1)[-1]
    if rest:
        pairs = keyword_pairs(source, rest[0])
        if len(rest) != 1 or len(pairs) != 1 or pairs[0][0] != "as" or pairs[0][2].type != "alias":
            return None
        name = text(source, pairs[0][2])
    return text(source, module), name


def adjacent(source: bytes, upper: Node, lower: Node) -> bool:
    """`lower` is on the line right after `upper`, at the same indentation."""
    return source[upper.end_byte : lower.start_byte] == b"\n" + indentation(source, upper.start_byte).encode()


def alias_run(source: bytes, first: Node) -> list[tuple[Node, str, str]] | None:
    """The run of adjacent alias lines that starts at `first`, or None when `first` does not start one."""
    previous = first.prev_named_sibling
    if previous is not None and module_and_name(source, previous) and adjacent(source, previous, first):
        return None
    run = []
    node: Node | None = first
    while node is not None and (parsed := module_and_name(source, node)) is not None:
        if run and not adjacent(source, run[-1][0], node):
            break
        run.append((node, *parsed))
        node = node.next_named_sibling
    return run


def reorder_is_safe(run: list[tuple[Node, str, str]]) -> bool:
    """Order matters when two aliases bind one name, or one alias is written through another."""
    names = [name for _, _, name in run]
    if len(set(names)) != len(names):
        return False
    # Names are unique here, so a first segment equal to the alias's own name refers to no other line.
    return not any((first := module.split(".", 1)[0]) != name and first in names for _, module, name in run)


def rewrite(match: Match) -> list[Edit] | None:
    run = alias_run(match.source, match.node("finding"))
    if not run or len(run) < 2:
        return None
    ordered = sorted(run, key=lambda entry: entry[1].lower())
    if ordered == run or not reorder_is_safe(run):
        return None
    indent = indentation(match.source, run[0][0].start_byte)
    lines = [match.text(node) for node, _, _ in ordered]
    return [Edit(run[0][0].start_byte, run[-1][0].end_byte, f"\n{indent}".join(lines))]


RULE = Rule(
    id="alias_sort",
    title="Sort consecutive aliases alphabetically",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("alias MyApp.Repo\nalias MyApp.Accounts", "alias MyApp.Accounts\nalias MyApp.Repo"),
        Example(
            "defmodule MyApp.Web do\n  alias MyApp.Users\n  alias MyApp.Billing, as: Money\n  alias MyApp.API\n\n  alias Zed.B\n  alias Zed.A\nend",
            "defmodule MyApp.Web do\n  alias MyApp.API\n  alias MyApp.Billing, as: Money\n  alias MyApp.Users\n\n  alias Zed.A\n  alias Zed.B\nend",
        ),
        Example(
            "def run do\n  alias MyApp.Workers.Sync\n  alias MyApp.Workers.Async\n  alias MyApp.CLI\n  Sync.go(Async, CLI)\nend",
            "def run do\n  alias MyApp.CLI\n  alias MyApp.Workers.Async\n  alias MyApp.Workers.Sync\n  Sync.go(Async, CLI)\nend",
        ),
        # Already sorted, ignoring case (a case-sensitive sort would put ABD first).
        Example("alias MyApp.Abc\nalias MyApp.ABD", None),
        # `Accounts.User` is written through the `Accounts` alias: moving it first changes its meaning.
        Example("alias MyApp.Accounts\nalias Accounts.User", None),
        # Two aliases bind `Repo`: the later one wins, so their order matters.
        Example("alias Other.Repo\nalias MyApp.Repo", None),
        # A comment between aliases ends the run.
        Example("alias B\n# comment\nalias A", None),
    ),
)
