"""Start a pipe chain with a value: lift the first call's first argument in front of the chain.

Like Styler and Credo's PipeChainStart this fires on any chain, a single `|>` included; nested starts
are lifted in one go. Calls without arguments, macros and special forms (`case`, `if`, `for`, `with`,
`quote`, `unquote`, `from`, ...), anonymous-function calls, operators, `map[:k]`, sigils and literals
are left as they are.

Before:
    Enum.at(enum, 5) |> IO.inspect()
After:
    enum |> Enum.at(5) |> IO.inspect()
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import call_parts, replace
from lsp.idioms.pipes_helpers import chain_layout, first_item, is_pipeable_call, liftable_start, lifted_chain


def rewrite(match: Match) -> list[Edit] | None:
    start = match.node("finding")
    parts = liftable_start(match.source, start)
    if parts is None:
        return None
    layout = chain_layout(match.source, start.parent)
    if layout.mixed:
        return None
    calls = [parts]
    value = first_item(parts)
    # `f(g(x, 1), 2) |> h()` becomes `x |> g(1) |> f(2) |> h()` at once, so a second pass has nothing to do.
    while value is not None and value.type == "call":
        inner = call_parts(match.source, value)
        if inner is None or not is_pipeable_call(inner) or first_item(inner) is None:
            break
        calls.insert(0, inner)
        value = first_item(inner)
    if value is None:
        return None
    chain = lifted_chain(match.source, value, calls, start, vertical=layout.vertical)
    return [replace(start, chain)] if chain is not None else None


RULE = Rule(
    id="pipe_chain_start",
    title="f(x, y) |> g() → x |> f(y) |> g()",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("Enum.at(enum, 5) |> IO.inspect()", "enum |> Enum.at(5) |> IO.inspect()"),
        Example(
            "names = String.split(line, \",\") |> Enum.map(&String.trim/1) |> Enum.reject(&(&1 == \"\"))",
            "names = line |> String.split(\",\") |> Enum.map(&String.trim/1) |> Enum.reject(&(&1 == \"\"))",
        ),
        Example(
            "def total(order) do\n"
            "  Enum.filter(order.items, & &1.taxable)\n"
            "  |> Enum.map(& &1.price)\n"
            "  |> Enum.sum()\n"
            "end",
            "def total(order) do\n"
            "  order.items\n"
            "  |> Enum.filter(& &1.taxable)\n"
            "  |> Enum.map(& &1.price)\n"
            "  |> Enum.sum()\n"
            "end",
        ),
        Example(
            "def sum(xs), do: Enum.reduce(Enum.map(xs, &abs/1), 0, &+/2) |> div(2)",
            "def sum(xs), do: xs |> Enum.map(&abs/1) |> Enum.reduce(0, &+/2) |> div(2)",
        ),
        Example(
            "result =\n"
            "  Enum.reduce(items, %{}, fn item, acc ->\n"
            "    Map.update(acc, item, 1, &(&1 + 1))\n"
            "  end)\n"
            "  |> Map.to_list()",
            "result =\n"
            "  items\n"
            "  |> Enum.reduce(%{}, fn item, acc ->\n"
            "    Map.update(acc, item, 1, &(&1 + 1))\n"
            "  end)\n"
            "  |> Map.to_list()",
        ),
        Example("Integer.parse(a + b, 16) |> elem(0)", "(a + b) |> Integer.parse(16) |> elem(0)"),
        # Already starting with a value, a 0-arity call or a control-flow macro.
        Example("enum |> Enum.at(5) |> IO.inspect()\nSystem.os_time() |> div(1000)", None),
        Example("if(ok?, do: a, else: b) |> IO.inspect()\nfrom(u in User, select: u) |> Repo.all()", None),
        Example("map[:key] |> f()\n~w(a b)a |> Enum.map(&f/1)\nfun.(x, 1) |> g()", None),
    ),
)
