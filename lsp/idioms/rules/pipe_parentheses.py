"""Pipe steps get parentheses: `|> foo` and `|> Mod.fun` become `|> foo()` and `|> Mod.fun()`.

Only steps without arguments; `|> foo arg` (a call with arguments but no parentheses) is left to the
compiler's own warning.

Before:
    input |> String.trim |> parse
After:
    input |> String.trim() |> parse()
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety


def rewrite(match: Match) -> list[Edit] | None:
    step = match.node("finding")
    # The query's `.` anchor already rules out arguments; a do-block would follow the target too.
    if step.type == "call" and step.named_child_count != 1:
        return None
    # Replacing the step (not inserting at its end) makes the edit overlap a rule rewriting the whole pipe.
    return [Edit(step.start_byte, step.end_byte, f"{match.text(step)}()")]


RULE = Rule(
    id="pipe_parentheses",
    title="x |> f → x |> f()",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("input |> String.trim |> parse", "input |> String.trim() |> parse()"),
        Example("count = list |> length", "count = list |> length()"),
        Example(
            "def normalize(name) do\n"
            "  name\n"
            "  |> String.trim\n"
            "  |> String.downcase()\n"
            "  |> :erlang.binary_to_list\n"
            "end",
            "def normalize(name) do\n"
            "  name\n"
            "  |> String.trim()\n"
            "  |> String.downcase()\n"
            "  |> :erlang.binary_to_list()\n"
            "end",
        ),
        Example("def size(x), do: x |> Map.keys |> length", "def size(x), do: x |> Map.keys() |> length()"),
        # Already parenthesised; a field access outside a pipe is not a call.
        Example("x |> String.trim() |> f(1)\nname = user.name", None),
        Example("x |> fun.()\ny |> Enum.map(&f/1)", None),
    ),
)
