"""`Map.drop/2` / `Keyword.drop/2` with a one-element list literal → `delete/2`.

Before:
    Map.drop(params, ["password"])
    opts |> Keyword.drop([:timeout])
After:
    Map.delete(params, "password")
    opts |> Keyword.delete(:timeout)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import operator, text
from lsp.idioms.single_helpers import stdlib_call

# Keyword.delete/2 only accepts an atom key, where drop/2 accepts any list of keys. (On a list that is
# not a keyword list at all, e.g. `[1, 2]`, drop/2 raises and delete/2 returns it: outside Keyword's
# contract, so still counted as safe.)
ATOM_TYPES = frozenset({"atom", "quoted_atom", "boolean", "nil"})


def rewrite(match: Match) -> list[Edit] | None:
    module = match.text("module")
    call = stdlib_call(match, match.node("finding"), module, "drop", 2)
    if call is None or call.rest[0] != match.node("list"):
        return None
    key = match.node("key")
    # `[a | rest]` and `[k: v]` are not one plain key.
    if key.type in ("keywords", "comment") or (key.type == "binary_operator" and operator(key) == "|"):
        return None
    if module == "Keyword" and key.type not in ATOM_TYPES:
        return None
    return [call.rename("delete"), call.replace_last(match.source, text(match.source, key))]


RULE = Rule(
    id="map_drop_single_key",
    title="Map.drop(m, [k]) → Map.delete(m, k)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example('Map.drop(params, ["password"])', 'Map.delete(params, "password")'),
        Example("opts |> Keyword.drop([:timeout]) |> start()", "opts |> Keyword.delete(:timeout) |> start()"),
        Example(
            "def public(user) do\n  user\n  |> Map.drop([\n    :password_hash\n  ])\nend",
            "def public(user) do\n  user\n  |> Map.delete(:password_hash)\nend",
        ),
        Example("state = Map.drop(state, [{:pending, ref}])", "state = Map.delete(state, {:pending, ref})"),
        # A list tail, several keys, or a keyword list (whose element is a tuple) are not one key.
        Example("Map.drop(m, [key | rest])", None),
        Example("Map.drop(m, [:a, :b])", None),
        Example("Map.drop(m, [a: 1])", None),
        # Keyword.delete/2 needs an atom: a variable key may not be one.
        Example("Keyword.drop(opts, [key])", None),
    ),
)
