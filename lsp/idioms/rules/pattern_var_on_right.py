"""In a pattern, the variable goes on the right of `=`: `def foo(bar = %{})` → `def foo(%{} = bar)`.

Before:
    def update(params = %{"id" => id}), do: save(id, params)
    fn acc = %{} -> acc end
After:
    def update(%{"id" => id} = params), do: save(id, params)
    fn %{} = acc -> acc end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import Node, operator, replace
from lsp.idioms.single_helpers import has_comment, is_plain_variable

# Literal and structural patterns; a call, a variable, a pin or a nested `=` on the right is left alone.
PATTERN_TYPES = frozenset(
    {
        "map",
        "tuple",
        "list",
        "bitstring",
        "string",
        "charlist",
        "atom",
        "quoted_atom",
        "integer",
        "float",
        "char",
        "nil",
        "boolean",
        "sigil",
    }
)

# Calls whose stab clauses match patterns (cond and `after` clauses hold expressions instead).
PATTERN_CLAUSE_OWNERS = {
    "do_block": frozenset({"case", "receive", "for"}),
    "else_block": frozenset({"with", "try"}),
    "catch_block": frozenset({"try"}),
}


def is_pattern(node: Node) -> bool:
    if node.type in PATTERN_TYPES:
        return True
    # `"prefix" <> rest` matches a binary.
    if node.type != "binary_operator" or operator(node) != "<>":
        return False
    return node.child_by_field_name("left").type == "string"


def in_pattern_clause(match: Match) -> bool:
    clause_arguments = match.get("clause_arguments")
    if clause_arguments is None:
        return True  # a def head or a `<-`, which the query pinned down
    clause = clause_arguments.parent
    if clause.type != "stab_clause":
        clause = clause.parent
    owner = clause.parent
    if owner.type == "anonymous_function":
        return True
    callers = PATTERN_CLAUSE_OWNERS.get(owner.type)
    call = owner.parent if owner.type == "do_block" else owner.parent and owner.parent.parent
    if callers is None or call is None or call.type != "call":
        return False
    target = call.child_by_field_name("target")
    return target is not None and target.type == "identifier" and match.text(target) in callers


def rewrite(match: Match) -> list[Edit] | None:
    binding = match.node("finding")
    variable, pattern = binding.child_by_field_name("left"), binding.child_by_field_name("right")
    if not is_plain_variable(match.source, variable) or not is_pattern(pattern):
        return None
    if has_comment(binding) or not in_pattern_clause(match):
        return None
    return [replace(binding, f"{match.text(pattern)} = {match.text(variable)}")]


RULE = Rule(
    id="pattern_var_on_right",
    title="var = pattern → pattern = var (in patterns)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            'def update(params = %{"id" => id}), do: save(id, params)',
            'def update(%{"id" => id} = params), do: save(id, params)',
        ),
        Example(
            "defp handle(msg = {:data, _}, state) when is_map(state) do\n  {msg, state}\nend",
            "defp handle({:data, _} = msg, state) when is_map(state) do\n  {msg, state}\nend",
        ),
        Example(
            "case fetch(id) do\n  user = %User{} -> user\n  other -> other\nend",
            "case fetch(id) do\n  %User{} = user -> user\n  other -> other\nend",
        ),
        Example(
            "Enum.map(pairs, fn pair = {_, v} when v > 0 -> pair end)",
            "Enum.map(pairs, fn {_, v} = pair when v > 0 -> pair end)",
        ),
        Example(
            "with entry = [_ | _] <- lookup(key),\n     {:ok, value} <- decode(entry) do\n  value\nend",
            "with [_ | _] = entry <- lookup(key),\n     {:ok, value} <- decode(entry) do\n  value\nend",
        ),
        Example('for line = "#" <> _ <- lines, do: line', 'for "#" <> _ = line <- lines, do: line'),
        # A plain match in a `with` head and a `cond` condition are expressions, not patterns.
        Example("with user = load(id), {:ok, x} <- f(user), do: x", None),
        Example("cond do\n  x = 1 -> x\n  true -> 0\nend", None),
        # Already on the right; two variables.
        Example("def f(%{} = params, a = b), do: {params, a, b}", None),
    ),
)
