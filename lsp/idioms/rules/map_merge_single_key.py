"""`Map.merge/2` with a one-key map literal → `Map.put/3`: no throwaway map.

Before:
    Map.merge(user, %{name: name})
    conn |> Map.merge(%{"id" => id})
After:
    Map.put(user, :name, name)
    conn |> Map.put("id", id)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import Node, operator
from lsp.idioms.single_helpers import key_value_args, single_keyword_pair, stdlib_call


def single_entry(match: Match, content: Node) -> Node | None:
    """The only `k: v` pair or `key => value` of a map's content (`%{m | k: v}` is an update: None)."""
    pair = single_keyword_pair(content)
    if pair is not None:
        return pair
    entries = content.named_children
    if len(entries) == 1 and entries[0].type == "binary_operator" and operator(entries[0]) == "=>":
        return entries[0]
    return None


def rewrite(match: Match) -> list[Edit] | None:
    call = stdlib_call(match, match.node("finding"), "Map", "merge", 2)
    if call is None or call.rest[0] != match.node("map"):
        return None
    entry = single_entry(match, match.node("content"))
    if entry is None:
        return None
    return [call.rename("put"), call.replace_last(match.source, key_value_args(match.source, entry))]


RULE = Rule(
    id="map_merge_single_key",
    title="Map.merge(m, %{k: v}) → Map.put(m, :k, v)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("Map.merge(user, %{name: name})", "Map.put(user, :name, name)"),
        Example('conn |> Map.merge(%{"id" => id}) |> render()', 'conn |> Map.put("id", id) |> render()'),
        Example(
            "def touch(record) do\n  record\n  |> Map.merge(%{\n    updated_at: DateTime.utc_now()\n  })\nend",
            "def touch(record) do\n  record\n  |> Map.put(:updated_at, DateTime.utc_now())\nend",
        ),
        Example('state = Map.merge(state, %{"a b": 1})', 'state = Map.put(state, :"a b", 1)'),
        # Two keys: a merge is the right call.
        Example("Map.merge(user, %{name: name, age: age})", None),
        # A struct literal, a map update and a variable map are not single-key literals.
        Example("Map.merge(user, %User{name: name})", None),
        Example("Map.merge(defaults, %{opts | a: 1})", None),
        Example("Map.merge(m, %{\n  # the name\n  name: name\n})", None),
        Example("alias MyApp.Map\nMap.merge(user, %{name: name})", None),
    ),
)
