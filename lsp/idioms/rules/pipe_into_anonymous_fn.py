"""Piping into an anonymous function call becomes `then/2` (Elixir 1.12+).

Before:
    a |> (fn x -> x * 2 end).() |> c()
After:
    a |> then(fn x -> x * 2 end) |> c()
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety


def rewrite(match: Match) -> list[Edit] | None:
    call, fun = match.node("finding"), match.node("fun")
    block = fun.parent
    # `(fn ... end).(extra)` passes more arguments than `then/2` can; a comment in the parentheses would go.
    if match.node("arguments").named_child_count or block.named_child_count != 1:
        return None
    return [Edit(call.start_byte, fun.start_byte, "then("), Edit(fun.end_byte, call.end_byte, ")")]


RULE = Rule(
    id="pipe_into_anonymous_fn",
    title="|> (fn x -> ... end).() → |> then(fn x -> ... end)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    min_elixir=(1, 12),
    examples=(
        Example("a |> (fn x -> x * 2 end).() |> c()", "a |> then(fn x -> x * 2 end) |> c()"),
        Example("total = prices |> Enum.sum() |> (&(&1 * 1.2)).()", "total = prices |> Enum.sum() |> then(&(&1 * 1.2))"),
        Example(
            "def load(path) do\n"
            "  path\n"
            "  |> File.read!()\n"
            "  |> (fn body ->\n"
            "    Jason.decode!(body)\n"
            "  end).()\n"
            "end",
            "def load(path) do\n"
            "  path\n"
            "  |> File.read!()\n"
            "  |> then(fn body ->\n"
            "    Jason.decode!(body)\n"
            "  end)\n"
            "end",
        ),
        # More arguments than then/2 takes; not piped; an ordinary fun variable.
        Example("x |> (fn a, b -> a + b end).(1)", None),
        Example("(fn x -> x end).(1)\nx |> fun.()", None),
    ),
)
