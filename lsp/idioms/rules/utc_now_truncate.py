"""`utc_now()` then `truncate(unit)` becomes `utc_now(unit)` (DateTime and NaiveDateTime, Elixir 1.15+).

Before:
    DateTime.utc_now() |> DateTime.truncate(:second)
After:
    DateTime.utc_now(:second)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import call_parts, replace
from lsp.idioms.pipes_helpers import is_pipe_right

# The precisions truncate/2 accepts; utc_now/1 gives the same precision for each.
UNITS = frozenset({":second", ":millisecond", ":microsecond"})


def rewrite(match: Match) -> list[Edit] | None:
    finding, now = match.node("finding"), match.node("now")
    module = match.text("module")
    if not match.stdlib(module) or match.text("unit") not in UNITS:
        return None
    # A piped `x |> DateTime.truncate(DateTime.utc_now(), :second)` is truncate/3, not this idiom.
    if finding.type == "call" and is_pipe_right(finding):
        return None
    parts = call_parts(match.source, now)
    if parts is None or parts.args or parts.keywords is not None or parts.do_block is not None:
        return None
    return [replace(finding, f"{module}.utc_now({match.text('unit')})")]


RULE = Rule(
    id="utc_now_truncate",
    title="DateTime.utc_now() |> DateTime.truncate(:second) → DateTime.utc_now(:second)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    min_elixir=(1, 15),
    examples=(
        Example("DateTime.utc_now() |> DateTime.truncate(:second)", "DateTime.utc_now(:second)"),
        Example("now = NaiveDateTime.truncate(NaiveDateTime.utc_now(), :millisecond)", "now = NaiveDateTime.utc_now(:millisecond)"),
        Example(
            "def stamp(attrs) do\n"
            "  Map.put(attrs, :inserted_at, DateTime.utc_now |> DateTime.truncate(:second))\n"
            "end",
            "def stamp(attrs) do\n"
            "  Map.put(attrs, :inserted_at, DateTime.utc_now(:second))\n"
            "end",
        ),
        Example(
            "stamp =\n"
            "  DateTime.utc_now()\n"
            "  |> DateTime.truncate(:second)\n"
            "  |> DateTime.to_iso8601()",
            "stamp =\n"
            "  DateTime.utc_now(:second)\n"
            "  |> DateTime.to_iso8601()",
        ),
        # A calendar argument, mixed modules, a unit only known at run time.
        Example("DateTime.utc_now(Calendar.ISO) |> DateTime.truncate(:second)", None),
        Example("NaiveDateTime.utc_now() |> DateTime.truncate(:second)\nDateTime.truncate(DateTime.utc_now(), unit)", None),
        Example("alias MyApp.DateTime\nDateTime.utc_now() |> DateTime.truncate(:second)", None),
    ),
)
