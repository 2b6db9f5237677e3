"""Zero-arity definitions drop their empty parentheses: `def foo() do` → `def foo do`.

Before:
    def config(), do: @config
    defp now() do
      DateTime.utc_now()
    end
After:
    def config, do: @config
    defp now do
      DateTime.utc_now()
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import replace


def rewrite(match: Match) -> list[Edit] | None:
    parens = match.node("parens")
    # `( # note )` holds a comment; `def foo ()` is not the same shape.
    if parens.named_child_count or parens.start_byte != match.node("name").end_byte:
        return None
    return [replace(parens, "")]


RULE = Rule(
    id="zero_arity_def_parens",
    title="def foo() → def foo",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("def config(), do: @config", "def config, do: @config"),
        Example(
            "defmodule Clock do\n  defp now() do\n    DateTime.utc_now()\n  end\nend",
            "defmodule Clock do\n  defp now do\n    DateTime.utc_now()\n  end\nend",
        ),
        Example("defmacro debug?() do\n  quote do: false\nend", "defmacro debug? do\n  quote do: false\nend"),
        Example(
            "def run!(), do: :ok\ndefp helper(), do: run!()", "def run!, do: :ok\ndefp helper, do: run!()"
        ),
        # Not zero-arity; calls (not definitions) keep their parentheses.
        Example("def foo(x), do: x", None),
        Example("def foo, do: bar()", None),
        # A guard on a zero-arity head is left as written.
        Example("def debug?() when @env == :dev, do: true", None),
    ),
)
