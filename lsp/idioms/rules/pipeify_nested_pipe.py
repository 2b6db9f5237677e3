"""A call whose first argument is a pipe chain joins the chain as its next step.

Enclosing calls that take the result as their first argument join too, up to the outermost place
where a chain needs no parentheses. Plain nested calls without a pipe, calls that are themselves a
pipe step, and macros (`if`, `case`, `unquote`, ...) are left alone.

Before:
    d(a |> b() |> c())
After:
    a |> b() |> c() |> d()
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import replace
from lsp.idioms.pipes_helpers import chain_layout, first_item, is_pipe_left, lifted_chain, pipeify_calls


def rewrite(match: Match) -> list[Edit] | None:
    source = match.source
    calls = pipeify_calls(source, match.node("finding"))
    if calls is None:
        return None
    value = first_item(calls[0])
    outermost = calls[-1].node
    vertical = False
    if is_pipe_left(outermost):
        layout = chain_layout(source, outermost.parent)
        if layout.mixed:
            return None
        vertical = layout.vertical
    if value is None:
        return None
    chain = lifted_chain(source, value, calls, outermost, vertical=vertical)
    return [replace(outermost, chain)] if chain is not None else None


RULE = Rule(
    id="pipeify_nested_pipe",
    title="d(a |> b()) → a |> b() |> d()",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("d(a |> b() |> c())", "a |> b() |> c() |> d()"),
        Example(
            "csv = Enum.join(rows |> Enum.map(&format/1), \"\\n\")",
            "csv = rows |> Enum.map(&format/1) |> Enum.join(\"\\n\")",
        ),
        Example(
            "total = Enum.sum(Enum.map(items |> Enum.filter(& &1.paid), & &1.price))",
            "total = items |> Enum.filter(& &1.paid) |> Enum.map(& &1.price) |> Enum.sum()",
        ),
        Example(
            "def report(list) do\n"
            "  Enum.join(\n"
            "    list\n"
            "    |> Enum.map(&to_string/1)\n"
            "    |> Enum.sort(),\n"
            "    \",\"\n"
            "  )\n"
            "end",
            "def report(list) do\n"
            "  list\n"
            "  |> Enum.map(&to_string/1)\n"
            "  |> Enum.sort()\n"
            "  |> Enum.join(\",\")\n"
            "end",
        ),
        Example(
            "if valid?(String.trim(input |> String.downcase())), do: :ok, else: :error",
            "if input |> String.downcase() |> String.trim() |> valid?(), do: :ok, else: :error",
        ),
        # No pipe inside; the call is itself a pipe step; `+` binds tighter than `|>`.
        Example("d(c(b(a)))\nx |> d(a |> b())", None),
        Example("n = length(xs |> Enum.uniq()) + 1\nif(a |> ok?(), do: 1)", None),
    ),
)
