"""`Enum.into` an empty collectable → its constructor: `Map.new`, `MapSet.new`, `Enum.to_list`, `Enum.map`.

Before:
    Enum.into(pairs, %{})
    Enum.into(rows, [], &normalize/1)
After:
    Map.new(pairs)
    Enum.map(rows, &normalize/1)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import contains_comment, empty_collectable
from lsp.idioms.nodes import call_parts, is_pipe, replace

# (empty collectable, with a transform?) → the call that builds the same thing.
CONSTRUCTOR = {
    ("Map", False): "Map.new",
    ("Map", True): "Map.new",
    ("MapSet", False): "MapSet.new",
    ("MapSet", True): "MapSet.new",
    ("List", False): "Enum.to_list",
    ("List", True): "Enum.map",
}


def rewrite(match: Match) -> list[Edit] | None:
    node = match.node("finding")
    parts = call_parts(match.source, node)
    if parts is None or parts.keywords is not None or parts.do_block is not None or parts.arguments is None:
        return None
    piped = is_pipe(node.parent) and node.parent.child_by_field_name("right") == node
    args = parts.args if piped else parts.args[1:]
    if not parts.args or len(args) not in (1, 2):
        return None
    target = empty_collectable(match.source, args[0])
    if target is None or not match.stdlib("Enum", target):
        return None
    # Delete the collectable with the comma that separates it from its neighbour.
    index = parts.args.index(args[0])
    if index > 0:
        start, end = parts.args[index - 1].end_byte, args[0].end_byte
    elif len(parts.args) > 1:
        start, end = args[0].start_byte, parts.args[1].start_byte
    else:
        start, end = args[0].start_byte, args[0].end_byte
    if contains_comment(parts.arguments, start, end):
        return None
    target_node = node.child_by_field_name("target")
    return [replace(target_node, CONSTRUCTOR[target, len(args) == 2]), Edit(start, end, "")]


RULE = Rule(
    id="enum_into_empty",
    title="Enum.into(x, %{}) → Map.new(x), Enum.into(x, []) → Enum.to_list(x)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("m = Enum.into(pairs, %{})", "m = Map.new(pairs)"),
        Example("Enum.into(rows, [], &normalize/1)", "Enum.map(rows, &normalize/1)"),
        Example("stream |> Enum.into([])", "stream |> Enum.to_list()"),
        Example(
            "users |> Enum.into(%{}, fn u -> {u.id, u} end) |> Map.keys()",
            "users |> Map.new(fn u -> {u.id, u} end) |> Map.keys()",
        ),
        Example("def tags(xs), do: Enum.into(xs, MapSet.new())", "def tags(xs), do: MapSet.new(xs)"),
        Example(
            "def index(users) do\n  Enum.into(users, %{}, fn user ->\n    {user.id, user}\n  end)\nend",
            "def index(users) do\n  Map.new(users, fn user ->\n    {user.id, user}\n  end)\nend",
        ),
        Example("Enum.into(xs, Map.new(), &{&1, 1})", "Map.new(xs, &{&1, 1})"),
        # A non-empty target keeps its entries; an unknown target may be anything.
        Example("Enum.into(pairs, %{a: 1})", None),
        Example("Enum.into(pairs, acc)", None),
        Example("alias My.Enum\nEnum.into(pairs, %{})", None),
    ),
)
