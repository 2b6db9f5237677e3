"""Two `Enum.map` in a row → one map with the functions composed: one pass, no intermediate list.

Before:
    names |> Enum.map(&String.trim/1) |> Enum.map(&String.upcase/1)
After:
    names |> Enum.map(fn x -> String.upcase(String.trim(x)) end)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import ATOM, Expr, apply_function, fresh_variable, fused, fused_fn_call


def rewrite(match: Match) -> list[Edit] | None:
    pair = fused(match, "Enum", ("map",))
    if pair is None or pair.outer.module != "Enum" or len(pair.outer_extra) != 1:
        return None
    first, second = pair.inner_extra[0], pair.outer_extra[0]
    # Only the first fn receives the element itself; the second's parameter stands for its result.
    variable = fresh_variable(match.source, [first, second], reusable=1)
    inner = apply_function(match.source, first, Expr(variable, ATOM))
    composed = apply_function(match.source, second, inner) if inner is not None else None
    if composed is None:
        return None
    edit = fused_fn_call(pair, "Enum", "map", variable, composed.text)
    return [edit] if edit is not None else None


RULE = Rule(
    id="enum_map_map",
    title="Enum.map |> Enum.map → one Enum.map",
    safety=Safety.MOSTLY_SAFE,
    risk="the two functions now run interleaved, element by element (their side effects reorder)",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "names |> Enum.map(&String.trim/1) |> Enum.map(&String.upcase/1)",
            "names |> Enum.map(fn x -> String.upcase(String.trim(x)) end)",
        ),
        Example(
            "Enum.map(prices, fn p -> p * 1.2 end) |> Enum.map(&Float.round(&1, 2))",
            "Enum.map(prices, fn p -> Float.round(p * 1.2, 2) end)",
        ),
        Example(
            "def double_inc(xs), do: Enum.map(Enum.map(xs, &(&1 + 1)), &(&1 * 2))",
            "def double_inc(xs), do: Enum.map(xs, fn x -> (x + 1) * 2 end)",
        ),
        Example(
            "def labels(users) do\n  users\n  |> Enum.map(& &1.name)\n  |> Enum.map(fn name -> \"<\" <> name <> \">\" end)\nend",
            "def labels(users) do\n  users\n  |> Enum.map(fn x -> \"<\" <> x.name <> \">\" end)\nend",
        ),
        # `v` is used twice: the first result is bound once by calling the fn instead of inlining it.
        Example(
            "xs |> Enum.map(&parse/1) |> Enum.map(fn v -> {v, v} end)",
            "xs |> Enum.map(fn x -> (fn v -> {v, v} end).(parse(x)) end)",
        ),
        # A multi-line function is not inlined; nor is a function computed by a call.
        Example("xs |> Enum.map(&f/1) |> Enum.map(fn v ->\n  g(v)\nend)", None),
        Example("xs |> Enum.map(&f/1) |> Enum.map(make_mapper(:upcase))", None),
    ),
)
