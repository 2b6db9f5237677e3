"""`Logger.warn` (deprecated since Elixir 1.15) → `Logger.warning`.

Before:
    Logger.warn("disk almost full")
After:
    Logger.warning("disk almost full")
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import replace


def rewrite(match: Match) -> list[Edit] | None:
    if not match.stdlib("Logger"):
        return None
    return [replace(match.node("name"), "warning")]


RULE = Rule(
    id="logger_warn",
    title="Logger.warn → Logger.warning",
    safety=Safety.SAFE,
    min_elixir=(1, 11),
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example('Logger.warn("disk almost full")', 'Logger.warning("disk almost full")'),
        Example(
            'def check(free) do\n  if free < 10 do\n    Logger.warn(fn -> "low: #{free}" end, unit: :mb)\n  end\nend',
            'def check(free) do\n  if free < 10 do\n    Logger.warning(fn -> "low: #{free}" end, unit: :mb)\n  end\nend',
        ),
        Example("message |> Logger.warn()", "message |> Logger.warning()"),
        Example('Logger.warn "no parens"', 'Logger.warning "no parens"'),
        # Already the new name; a user module aliased as Logger.
        Example('Logger.warning("x")', None),
        Example('alias MyApp.Logger\nLogger.warn("x")', None),
    ),
)
